-- LTX-Video's VAE (diffusers' AutoencoderKLLTXVideo) from the C blocks, with diffusers'
-- weight names, in the three layouts its releases use: 0.9.0 (conv downsampling, plain
-- decoder), 0.9.1 (a timestep-conditioned decoder that injects noise in its resnets,
-- residual depth-to-space upsampling) and 0.9.5 (space-to-depth downsampling blocks, the
-- 0.9.1 decoder without noise). 32x in space, 8x in time; the encoder is causal (the
-- first frame repeated in front), the decoder is not (first and last frames repeated).
--
--   local vae = ltx_vae.new(cfg, w)             cfg: the diffusers config.json, decoded
--   vae:decode(z [B, C, F, h, w], {timestep = {t, ...} or number, noise = fn}) -> [B, 3, 8(F-1)+1, 32h, 32w]
--   vae:encode(video [B, 3, 8k+1, H, W]) -> mean, logvar [B, C, k+1, H/32, W/32]
--   vae:denormalize(z), vae:normalize(z)         with latents_mean / latents_std / scaling_factor
--
-- noise(name, h, w) gives the decoder's injected spatial noise [h, w] (0.9.1), in the
-- reference's call order, named "up_blocks.0.resnets.0.1" (after conv1) / ".2" (after conv2).
local zoe = require "zoe"
local util = require "zoe.arch.util"
local ltx = require "zoe.arch.ltx"
local num = require "zoe.numeric"
local T, nn = zoe.tensor, zoe.nn

local M = {}
M.__index = M

local function dims(x) return table.unpack(x:shape()) end

-- ---------------------------------------------------------------- layers

-- LTXVideoCausalConv3d: spatial zero padding k//2; in time the first frame repeated k-1
-- times in front (causal), or the first and the last (k-1)//2 times at each end.
local function conv(x, w, b, causal, stride)
  local k, kh, kw = w:size(3), w:size(4), w:size(5)
  local opts = {padding = {kh // 2, kw // 2}, stride = stride}
  if k > 1 then
    local B, C, F, H, W = dims(x)
    local pad = causal and k - 1 or (k - 1) // 2
    opts.causal_pad = pad
    opts.prev = x:narrow(3, 1, 1):expand(B, C, pad, H, W):contiguous()
    if not causal then x = T.cat({x, x:narrow(3, F, 1):expand(B, C, pad, H, W)}, 3) end
  end
  return nn.conv3d(x, w, b, opts)
end

-- RMSNorm over the channels (dim 2), no weight, eps 1e-8
local function channel_norm(self, x)
  local c = x:size(2)
  self.ones[c] = self.ones[c] or T.ones(c)
  return nn.channel_rms_norm(x, 2, self.ones[c])
end

-- LayerNorm over the channels (dim 2), affine
local function channel_layer_norm(x, w, b, eps)
  return nn.layer_norm(x:permute(1, 3, 4, 5, 2), w, b, eps):permute(1, 5, 2, 3, 4):contiguous()
end

-- [B, C*8, F, H, W] -> [B, C, 2F, 2H, 2W], channel c*8 + t*4 + h*2 + w (the upsampler's order)
local function depth_to_space(x)
  local B, C8, F, H, W = dims(x)
  local C = C8 // 8
  return x:view(B, C, 2, 2, 2, F, H, W):permute(1, 2, 6, 3, 7, 4, 8, 5):reshape(B, C, 2 * F, 2 * H, 2 * W)
end

-- [B, C, F*st, H*sh, W*sw] -> [B, C*st*sh*sw, F, H, W], channel order (c, t, h, w)
local function space_to_depth(x, s)
  local B, C, F, H, W = dims(x)
  local f, h, w = F // s[1], H // s[2], W // s[3]
  return x:view(B, C, f, s[1], h, s[2], w, s[3]):permute(1, 2, 4, 6, 8, 3, 5, 7):reshape(B, C * s[1] * s[2] * s[3], f, h, w)
end

-- the per-batch timestep embedding of a block (PixArtAlphaCombinedTimestepSizeEmbeddings): [B, n]
local function time_embed(w, prefix, ts)
  local s = ltx.timestep_features(ts, 256)
  local e = nn.linear(s, w[prefix .. "timestep_embedder.linear_1.weight"], w[prefix .. "timestep_embedder.linear_1.bias"])
  return nn.linear(e:silu(), w[prefix .. "timestep_embedder.linear_2.weight"], w[prefix .. "timestep_embedder.linear_2.bias"])
end

-- LTXVideoResnetBlock3d under 'p'; temb [B, 4C] (timestep-conditioned decoders), noise(name, h, w)
function M:resnet(x, p, causal, temb, noise)
  local w = self.w
  local B, C = x:size(1), x:size(2)
  local h = channel_norm(self, x)
  local mod
  if temb then
    local sst = util.need(w, p .. "scale_shift_table", "ltx.vae")
    mod = temb:view(B, 4, C, 1, 1, 1) + sst:view(1, 4, C, 1, 1, 1)
    h = nn.modulate(h, mod:select(2, 1), mod:select(2, 2))
  end
  h = conv(h:silu(), w[p .. "conv1.conv.weight"], w[p .. "conv1.conv.bias"], causal)
  local name = p:gsub("^decoder%.", "")
  local scale1 = w[p .. "per_channel_scale1"]
  if scale1 then
    local hh, ww = h:size(4), h:size(5)
    h = h + (noise(name .. "1", hh, ww):view(1, hh, ww) * scale1):view(1, -1, 1, hh, ww)
  end
  h = channel_norm(self, h)
  if mod then h = nn.modulate(h, mod:select(2, 3), mod:select(2, 4)) end
  h = conv(h:silu(), w[p .. "conv2.conv.weight"], w[p .. "conv2.conv.bias"], causal)
  local scale2 = w[p .. "per_channel_scale2"]
  if scale2 then
    local hh, ww = h:size(4), h:size(5)
    h = h + (noise(name .. "2", hh, ww):view(1, hh, ww) * scale2):view(1, -1, 1, hh, ww)
  end
  if w[p .. "norm3.weight"] then
    x = channel_layer_norm(x, w[p .. "norm3.weight"], w[p .. "norm3.bias"], self.cfg.resnet_norm_eps or 1e-6)
  end
  if w[p .. "conv_shortcut.conv.weight"] then
    x = conv(x, w[p .. "conv_shortcut.conv.weight"], w[p .. "conv_shortcut.conv.bias"], causal)
  end
  return h + x
end

-- LTXVideoDownsampler3d (0.9.5): the first stride_t - 1 frames repeated in front; the
-- space-to-depth of a causal conv plus the space-to-depth of the input averaged in groups.
function M:downsample(x, p, s, cout)
  if s[1] > 1 then x = T.cat({x:narrow(3, 1, s[1] - 1), x}, 3) end
  local r = space_to_depth(x, s)
  local B, Cs, F, H, W = dims(r)
  r = r:view(B, cout, Cs // cout, F, H, W):mean(3)
  local w = self.w
  return space_to_depth(conv(x, w[p .. "conv.conv.weight"], w[p .. "conv.conv.bias"], true), s) + r
end

-- ---------------------------------------------------------------- the model

local DOWN_STRIDES = {spatial = {1, 2, 2}, temporal = {2, 1, 1}, spatiotemporal = {2, 2, 2}}

function M.new(cfg, w)
  util.need(w, "decoder.conv_in.conv.weight", "ltx.vae")
  local self = setmetatable({cfg = cfg, w = w, ones = {}, latent_channels = cfg.latent_channels or 128,
                             patch = cfg.patch_size or 4}, M)
  if (cfg.patch_size_t or 1) ~= 1 then error("ltx.vae: a temporal patch size other than 1 is not supported", 2) end
  return self
end

-- the latent statistics as [1, C, 1, 1, 1]
function M:stats()
  local C = self.latent_channels
  return self.w["latents_mean"]:view(1, C, 1, 1, 1), self.w["latents_std"]:view(1, C, 1, 1, 1)
end

-- LTXPipeline._denormalize_latents: z * std / scaling_factor + mean, per channel
function M:denormalize(z)
  local mean, std = self:stats()
  return z * std * (1 / (self.cfg.scaling_factor or 1)) + mean
end

-- LTXPipeline._normalize_latents: (z - mean) * scaling_factor / std
function M:normalize(z, scaling_factor)
  local mean, std = self:stats()
  return (z - mean) * (scaling_factor or self.cfg.scaling_factor or 1) / std
end

local function times(t, B)
  if type(t) == "number" then
    local ts = {}
    for b = 1, B do ts[b] = t end
    return ts
  end
  if T.is_tensor(t) then return t:totable() end
  return t
end

-- ---------------------------------------------------------------- decoder

-- The decoder is not causal (each conv sees the frame after as well), yet it runs as a
-- stream: each stage takes chunks of frames and gives back the frames it can finish,
-- keeping what it still needs (a conv its last two input frames; a residual its pending
-- shortcut frames), and flush() ends the video (the last frame repeated, as the reference
-- pads it). A 704x512x161 clip then never holds more than a few frames per stage, and the
-- writer gets frames as they come; every frame is computed as in one piece.

-- a stage: {push = fn(x) -> y or nil, flush = fn() -> y or nil}
local function conv_stream(w, b)
  local tail -- the last two input frames (the first one repeated at the start)
  local function run(x, prev)
    return nn.conv3d(x, w, b, {padding = {w:size(4) // 2, w:size(5) // 2}, causal_pad = prev:size(3), prev = prev})
  end
  local st = {}
  function st.push(x)
    local prev = tail or x:narrow(3, 1, 1)
    local n = x:size(3)
    -- the last two frames of prev and x: what the next call needs before its own
    tail = n >= 2 and x:narrow(3, n - 1, 2):contiguous() or T.cat({prev:narrow(3, prev:size(3), 1), x}, 3)
    if prev:size(3) + n < 3 then return nil end
    return run(x, prev)
  end
  function st.flush()
    if not tail then return nil end
    local last = tail:narrow(3, 2, 1)
    return run(last:contiguous(), tail)
  end
  return st
end

-- frames waiting for their partner (a shortcut for a resnet's output)
local function queue()
  local q = {chunks = {}}
  function q.put(x) q.chunks[#q.chunks + 1] = x end
  function q.take(n) -- the first n frames, in order
    local parts, got = {}, 0
    while got < n do
      local c = q.chunks[1]
      local k = math.min(c:size(3), n - got)
      parts[#parts + 1] = c:narrow(3, 1, k)
      got = got + k
      if k == c:size(3) then table.remove(q.chunks, 1) else q.chunks[1] = c:narrow(3, k + 1, c:size(3) - k) end
    end
    return #parts == 1 and parts[1] or T.cat(parts, 3)
  end
  return q
end

-- two stages one after the other: flush() of the first goes through the second's push
local function chain(a, b)
  return {
    push = function(x)
      local y = a.push(x)
      return y and b.push(y) or nil
    end,
    flush = function()
      local y = a.flush()
      local parts = {y and b.push(y), b.flush()}
      if parts[1] and parts[2] then return T.cat(parts, 3) end
      return parts[1] or parts[2]
    end,
  }
end

-- a pointwise stage
local function map(fn) return {push = fn, flush = function() return nil end} end

-- LTXVideoResnetBlock3d (the decoder's, not causal) under 'p' as a stage
function M:resnet_stream(p, temb, noise)
  local w = self.w
  local mod
  local name = p:gsub("^decoder%.", "")
  local noises = {}
  local function injected(h, i) -- the spatial noise of this resnet (drawn once, at first use) times its scale
    local scale = w[p .. "per_channel_scale" .. i]
    if not scale then return h end
    local hh, ww = h:size(4), h:size(5)
    noises[i] = noises[i] or (noise(name .. i, hh, ww):view(1, hh, ww) * scale):view(1, -1, 1, hh, ww)
    return h + noises[i]
  end
  local function modulation(C, B)
    if not temb then return nil end
    mod = mod or temb:view(B, 4, C, 1, 1, 1) + util.need(w, p .. "scale_shift_table", "ltx.vae"):view(1, 4, C, 1, 1, 1)
    return mod
  end
  local function pre(x, i) -- RMS norm, the timestep's shift and scale, SiLU
    local h = channel_norm(self, x)
    local m = modulation(x:size(2), x:size(1))
    if m then h = nn.modulate(h, m:select(2, 2 * i - 1), m:select(2, 2 * i)) end
    return h:silu()
  end
  local inner = chain(
    chain(map(function(x) return pre(x, 1) end), conv_stream(w[p .. "conv1.conv.weight"], w[p .. "conv1.conv.bias"])),
    chain(map(function(h) return pre(injected(h, 1), 2) end), conv_stream(w[p .. "conv2.conv.weight"], w[p .. "conv2.conv.bias"])))
  local shortcut = queue()
  local eps = self.cfg.resnet_norm_eps or 1e-6
  local function add(h)
    if not h then return nil end
    return injected(h, 2) + shortcut.take(h:size(3))
  end
  return {
    push = function(x)
      local s = x
      if w[p .. "norm3.weight"] then s = channel_layer_norm(s, w[p .. "norm3.weight"], w[p .. "norm3.bias"], eps) end
      if w[p .. "conv_shortcut.conv.weight"] then
        s = nn.conv3d(s, w[p .. "conv_shortcut.conv.weight"], w[p .. "conv_shortcut.conv.bias"])
      end
      shortcut.put(s)
      return add(inner.push(x))
    end,
    flush = function() return add(inner.flush()) end,
  }
end

-- LTXVideoUpsampler3d as a stage: depth-to-space of the conv (each frame becomes two), the
-- video's first frame dropped; with residual, plus the input's own depth-to-space, tiled
function M:upsample_stream(p, residual, factor)
  local w = self.w
  local conv = conv_stream(w[p .. "conv.conv.weight"], w[p .. "conv.conv.bias"])
  local res, first_out, first_res = queue(), true, true
  local function out(h)
    if not h then return nil end
    h = depth_to_space(h)
    if first_out then
      first_out = false
      h = h:narrow(3, 2, h:size(3) - 1)
      if h:size(3) == 0 then return nil end
    end
    if not residual then return h end
    -- the input's depth-to-space repeated 8/factor times along the channels, added by broadcasting
    local r = res.take(h:size(3))
    local B, C, F, H, W = dims(h)
    local reps = 8 // factor
    return (h:view(B, reps, C // reps, F, H, W) + r:unsqueeze(2)):view(B, C, F, H, W)
  end
  return {
    push = function(x)
      if residual then
        local r = depth_to_space(x)
        if first_res then
          first_res = false
          r = r:narrow(3, 2, r:size(3) - 1)
        end
        if r:size(3) > 0 then res.put(r) end
      end
      return out(conv.push(x))
    end,
    flush = function() return out(conv.flush()) end,
  }
end

-- Decodes z [B, C, F, h, w] (or [C, F, h, w]) to [B, 3, 8(F-1)+1, 32h, 32w]:
-- opts.timestep (the timestep-conditioned decoders), opts.noise(name, h, w) (the 0.9.1
-- decoder's injected noise; default: self.generator's draws), opts.on_frames(chunk)
-- (each chunk of frames as it is finished), opts.chunk_bytes (the largest piece a stage gets
-- at once, 128 MB), opts.on_stage(name, chunk) (each up block's output chunks),
-- opts.tile = {h, w} (latent pixels) and opts.overlap (2): spatial tiles, each decoded whole
-- and blended (zoe.arch.tiling; each tile draws its own injected noise, as diffusers'
-- tiled_decode does); a tiled decode gives its frames to on_frames once every tile is done.
function M:decode(z, opts)
  local tile = opts and opts.tile
  local nd = z:dim()
  if not (tile and (z:size(nd - 1) > tile[1] or z:size(nd) > tile[2])) then return self:decode_stream(z, opts) end
  local inner = {}
  for k, v in pairs(opts) do inner[k] = v end
  inner.tile, inner.on_frames = nil, nil
  local video = require("zoe.arch.tiling").map(z, function(zt) return self:decode_stream(zt, inner) end,
    {tile = tile, overlap = math.min(opts.overlap or M.OVERLAP, math.max(tile[1], tile[2]) - 1), scale = self.patch * 8})
  if opts.on_frames then
    local T_ = video:size(nd - 2)
    for f = 1, T_, 8 do opts.on_frames(video:narrow(nd - 2, f, math.min(8, T_ - f + 1))) end
  end
  return video
end

-- The overlap of spatial tiles in latent pixels (64 video pixels, as diffusers' tiled_decode)
M.OVERLAP = 2

function M:decode_stream(z, opts)
  opts = opts or {}
  local cfg, w = self.cfg, self.w
  local unbatched = z:dim() == 4
  if unbatched then z = z:unsqueeze(1) end
  local B = z:size(1)
  if z:size(2) ~= self.latent_channels then
    error(("ltx.vae: latent has %d channels, the VAE takes %d"):format(z:size(2), self.latent_channels), 2)
  end
  if cfg.decoder_causal then error("ltx.vae: a causal decoder is not supported (no release has one)", 2) end
  local conditioned = cfg.timestep_conditioning
  local ts
  if conditioned then
    if opts.timestep == nil then error("ltx.vae: this decoder is timestep-conditioned: give opts.timestep", 2) end
    local mult = w["decoder.timestep_scale_multiplier"]:item()
    ts = {}
    for b, t in ipairs(times(opts.timestep, B)) do ts[b] = num.f32(num.f32(t) * mult) end
  end
  -- the 0.9.1 decoder's injected noise: from self.generator (set by whoever seeds the decode)
  local noise = opts.noise or function(_, h, wd)
    return self.generator and self.generator:randn({h, wd}) or T.randn({h, wd})
  end
  local function temb(prefix)
    return conditioned and time_embed(w, prefix .. "time_embedder.", ts) or nil
  end
  local stages = {conv_stream(w["decoder.conv_in.conv.weight"], w["decoder.conv_in.conv.bias"])}
  local function add(st) stages[#stages + 1] = st end
  local te = temb("decoder.mid_block.")
  for i = 0, 64 do
    local p = ("decoder.mid_block.resnets.%d."):format(i)
    if not w[p .. "conv1.conv.weight"] then break end
    add(self:resnet_stream(p, te, noise))
  end
  local nblocks = #(cfg.decoder_block_out_channels or cfg.block_out_channels)
  local factors, residuals = cfg.upsample_factor or {}, cfg.upsample_residual or {}
  for i = 0, nblocks - 1 do
    local p = ("decoder.up_blocks.%d."):format(i)
    local j = nblocks - i -- config lists run encoder-side first; the decoder walks them reversed
    if w[p .. "conv_in.conv1.conv.weight"] then
      if conditioned then error("ltx.vae: a widening up block in a timestep-conditioned decoder is not supported", 2) end
      add(self:resnet_stream(p .. "conv_in.", nil, noise))
    end
    te = temb(p)
    if w[p .. "upsamplers.0.conv.conv.weight"] then add(self:upsample_stream(p .. "upsamplers.0.", residuals[j], factors[j] or 1)) end
    for r = 0, 64 do
      local rp = ("%sresnets.%d."):format(p, r)
      if not w[rp .. "conv1.conv.weight"] then break end
      add(self:resnet_stream(rp, te, noise))
    end
    if opts.on_stage then add(map(function(x) opts.on_stage(p, x) return x end)) end
  end
  local last
  if conditioned then
    local C = cfg.decoder_block_out_channels[1] // (factors[1] or 1)
    last = time_embed(w, "decoder.time_embedder.", ts):view(B, 2, C, 1, 1, 1) + w["decoder.scale_shift_table"]:view(1, 2, C, 1, 1, 1)
  end
  add(map(function(x)
    x = channel_norm(self, x)
    if last then x = nn.modulate(x, last:select(2, 1), last:select(2, 2)) end
    return x:silu()
  end))
  add(conv_stream(w["decoder.conv_out.conv.weight"], w["decoder.conv_out.conv.bias"]))
  local p = self.patch
  add(map(function(x) -- un-patchify: channel c*16 + pw*4 + ph
    local _, _, F, H, W = dims(x)
    x = x:view(B, 3, p, p, F, H, W):permute(1, 2, 5, 6, 4, 7, 3):reshape(B, 3, F, H * p, W * p)
    if opts.on_frames then opts.on_frames(unbatched and x[1] or x) end
    return x
  end))
  -- Each stage gets its input in pieces of at most chunk_bytes (at least a frame): the small
  -- latent-side stages take a whole clip at once (their weights are the big ones, and each
  -- call widens and transforms them), the full-resolution ones a few frames at a time.
  local out, budget = {}, opts.chunk_bytes or 128 * 2 ^ 20
  local function feed(k, x)
    if not x then return end
    if k > #stages then
      out[#out + 1] = x
      return
    end
    local T_ = x:size(3)
    local per = math.max(1, budget // (x:numel() // T_ * 4))
    for f = 1, T_, per do
      local piece = per >= T_ and x or x:narrow(3, f, math.min(per, T_ - f + 1))
      feed(k + 1, stages[k].push(piece))
    end
  end
  feed(1, z)
  for k = 1, #stages do feed(k + 1, stages[k].flush()) end
  local video = #out == 1 and out[1] or T.cat(out, 3)
  return unbatched and video[1] or video
end

-- ---------------------------------------------------------------- encoder

-- video [B, 3, 8k+1, H, W] in [-1, 1] -> the posterior's mean and log-variance [B, C, k+1, H/32, W/32]
function M:encode(video)
  local cfg, w = self.cfg, self.w
  local unbatched = video:dim() == 4
  if unbatched then video = video:unsqueeze(1) end
  local B, C, F, H, W = dims(video)
  local p = self.patch
  if C ~= 3 or H % p ~= 0 or W % p ~= 0 then
    error(("ltx.vae: video must be [3, frames, H, W] with H and W multiples of %d, got %s"):format(p,
      table.concat(video:shape(), "x")), 2)
  end
  local causal = cfg.encoder_causal ~= false
  -- patchify: channel c*16 + pw*4 + ph
  local x = video:view(B, 3, F, H // p, p, W // p, p):permute(1, 2, 7, 5, 3, 4, 6):reshape(B, 3 * p * p, F, H // p, W // p)
  x = conv(x, w["encoder.conv_in.conv.weight"], w["encoder.conv_in.conv.bias"], causal)
  local types = cfg.down_block_types or {}
  local is095 = types[#types] == "LTXVideo095DownBlock3D"
  local chans = cfg.block_out_channels
  local nblocks = #chans - (is095 and 1 or 0)
  for i = 0, nblocks - 1 do
    local pre = ("encoder.down_blocks.%d."):format(i)
    for r = 0, 64 do
      local rp = ("%sresnets.%d."):format(pre, r)
      if not w[rp .. "conv1.conv.weight"] then break end
      x = self:resnet(x, rp, causal)
    end
    if is095 then
      if (cfg.spatio_temporal_scaling or {})[i + 1] then
        local kind = cfg.downsample_type[i + 1]
        local s = DOWN_STRIDES[kind]
        if kind == "conv" or not s then error(("ltx.vae: down block %d: downsample_type '%s' is not supported"):format(i, tostring(kind)), 2) end
        x = self:downsample(x, pre .. "downsamplers.0.", s, chans[i + 2])
      end
    else
      if w[pre .. "downsamplers.0.conv.weight"] then
        x = conv(x, w[pre .. "downsamplers.0.conv.weight"], w[pre .. "downsamplers.0.conv.bias"], causal, {2, 2, 2})
      end
      if w[pre .. "conv_out.conv1.conv.weight"] then x = self:resnet(x, pre .. "conv_out.", causal) end
    end
  end
  for r = 0, 64 do
    local rp = ("encoder.mid_block.resnets.%d."):format(r)
    if not w[rp .. "conv1.conv.weight"] then break end
    x = self:resnet(x, rp, causal)
  end
  x = channel_norm(self, x)
  x = conv(x:silu(), w["encoder.conv_out.conv.weight"], w["encoder.conv_out.conv.bias"], causal)
  local c = self.latent_channels
  local mean = x:narrow(2, 1, c)
  local logvar = x:narrow(2, c + 1, 1):clamp(-30, 20):expand(B, c, x:size(3), x:size(4), x:size(5))
  if unbatched then return mean[1], logvar[1] end
  return mean, logvar
end

return M
