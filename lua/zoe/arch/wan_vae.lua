-- Wan2.1's causal 3-D VAE (wan/modules/vae.py, WanVAE_) from the C blocks, run
-- the official way: the decoder takes one latent frame at a time and each causal
-- conv keeps the last input frames it saw (the feature cache), the encoder takes
-- chunks of 1, 4, 4, ... frames. Weights keep their official names.
--
--   local vae = wan_vae.new(cfg, w)
--   vae:decode(z, mean, std, {on_frames = fn(chunk), tile =, overlap =}) -> video [1, 3, 1 + 4(T'-1), 8h, 8w]
--   vae:encode(video, mean, std, {tile =, overlap =}) -> the normalized mean [1, z_dim, T', h, w]
-- z and video may also come without the batch dim. on_frames receives each decoded
-- chunk as it is made (a writer can stream them), before they are joined. tile = {h, w}
-- (latent pixels for a decode, video pixels for an encode) cuts a larger frame into tiles
-- overlapping by 'overlap' (default M.OVERLAP latent pixels) that go through whole, then
-- are blended (zoe.arch.tiling): the peak no longer grows with the frame, but no chunk is
-- streamed before the last tile is done.
local zoe = require "zoe"
local util = require "zoe.arch.util"
local tiling = require "zoe.arch.tiling"
local T, nn = zoe.tensor, zoe.nn

local M = {}
M.__index = M

-- The overlap of tiles, in latent pixels (8 video pixels each), when none is given.
M.OVERLAP = 8
M.MARGIN = 3

local function shape(x) return table.unpack(x:shape()) end

-- A causal conv (kernel 3 in time, or 1) with the feature cache under 'key':
-- the cache holds the last 2 input frames, as the official CausalConv3d usage does.
local function cached_conv(cache, key, x, w, b, opts)
  local prev = cache[key]
  local t = x:size(3)
  local keep
  if t >= 2 then
    keep = x:narrow(3, t - 1, 2)
  elseif prev then
    keep = T.cat({prev:narrow(3, prev:size(3), 1), x}, 3)
  else
    keep = x
  end
  local y = nn.conv3d(x, w, b, {padding = opts.padding, causal_pad = opts.causal_pad, prev = prev})
  cache[key] = keep:contiguous()
  return y
end

-- [B, C, T, H, W] -> per frame through fn([B*T, C, H, W]) -> [B, C', T, H', W']
local function per_frame(x, fn)
  local b, c, t, h, w = shape(x)
  local y = fn(x:transpose(2, 3):reshape(b * t, c, h, w))
  local _, c2, h2, w2 = shape(y)
  return y:view(b, t, c2, h2, w2):transpose(2, 3):contiguous()
end

-- x [B, 2C, T, H, W] -> [B, C, 2T, H, W]: frame 2j from the first half, 2j+1 from the second
local function interleave(x)
  local b, c2, t, h, w = shape(x)
  local c = c2 // 2
  return x:view(b, 2, c, t, h, w):permute(1, 3, 4, 2, 5, 6):reshape(b, c, 2 * t, h, w)
end

local function head(self, cache, key, x, pre)
  x = nn.channel_rms_norm(x, 2, self.w[pre .. "0.gamma"]):silu()
  return cached_conv(cache, key, x, self.w[pre .. "2.weight"], self.w[pre .. "2.bias"], {padding = {1, 1}, causal_pad = 2})
end

-- The layers of Encoder3d/Decoder3d as the official constructors lay them out.
local function layout(cfg, decoder)
  local mult, nres = cfg.dim_mult, cfg.num_res_blocks
  local tdown = cfg.temperal_downsample or {false, true, true}
  local layers, k = {}, 0
  local dims = {}
  if decoder then
    dims[1] = cfg.dim * mult[#mult]
    for i = #mult, 1, -1 do dims[#dims + 1] = cfg.dim * mult[i] end
  else
    dims[1] = cfg.dim
    for i = 1, #mult do dims[#dims + 1] = cfg.dim * mult[i] end
  end
  for i = 1, #dims - 1 do
    local nblocks = decoder and nres + 1 or nres
    for _ = 1, nblocks do
      layers[#layers + 1] = {kind = "res", index = k}
      k = k + 1
    end
    if i ~= #mult then
      local temporal = tdown[i] -- the decoder mirrors the encoder
      if decoder then temporal = tdown[#tdown - i + 1] end
      local mode = (decoder and "up" or "down") .. (temporal and "3d" or "2d")
      layers[#layers + 1] = {kind = mode, index = k}
      k = k + 1
    end
  end
  if cfg.attn_scales and #cfg.attn_scales > 0 then
    error("wan.vae: attention inside the resolution levels (attn_scales) is not supported", 3)
  end
  return layers
end

function M.new(cfg, w)
  util.need(w, "decoder.conv1.weight", "wan.vae")
  local self = setmetatable({cfg = cfg, w = w, z_dim = cfg.z_dim, roles = {},
                             dec_layers = layout(cfg, true), enc_layers = layout(cfg, false)}, M)
  -- where each splits into its part at the latent's size and the rest (decode_low, encode_high)
  self.dec_split = 0
  while self.dec_layers[self.dec_split + 1] and self.dec_layers[self.dec_split + 1].kind == "res" do
    self.dec_split = self.dec_split + 1
  end
  self.enc_split = 0
  for i, layer in ipairs(self.enc_layers) do
    if layer.kind ~= "res" then self.enc_split = i end
  end
  return self
end

-- The weights of a residual block and of an attention block under the prefix 'pre', by
-- the roles nn.vae_resblock and nn.vae_attention take; a missing weight is named as the
-- checkpoint names it.
function M.resblock_roles(w, pre)
  local function need(name) return util.need(w, pre .. name, "wan.vae") end
  return {norm1 = need("residual.0.gamma"), conv1 = need("residual.2.weight"), conv1_bias = w[pre .. "residual.2.bias"],
          norm2 = need("residual.3.gamma"), conv2 = need("residual.6.weight"), conv2_bias = w[pre .. "residual.6.bias"],
          shortcut = w[pre .. "shortcut.weight"], shortcut_bias = w[pre .. "shortcut.bias"]}
end

function M.attention_roles(w, pre)
  local function need(name) return util.need(w, pre .. name, "wan.vae") end
  return {norm = need("norm.gamma"), qkv = need("to_qkv.weight"), qkv_bias = w[pre .. "to_qkv.bias"],
          proj = need("proj.weight"), proj_bias = w[pre .. "proj.bias"]}
end

-- A block's roles, made once per block.
local function block(self, pre, attention)
  local r = self.roles[pre]
  if not r then
    r = attention and M.attention_roles(self.w, pre) or M.resblock_roles(self.w, pre)
    self.roles[pre] = r
  end
  return r
end

local function batched(x)
  if x:dim() == 4 then return x:unsqueeze(1), true end
  return x, false
end

-- per-channel constants as [1, C, 1, 1, 1]
local function channels(v)
  if type(v) == "table" then v = T.tensor(v) end
  return v:view(1, -1, 1, 1, 1)
end

-- ---------------------------------------------------------------- decoder

-- The decoder in two parts: 'low' at the latent's own size (conv1, the middle block, whose
-- attention spans the whole frame, and the residual blocks before the first upsample),
-- 'high' from the first upsample to the head. A tiled decode runs 'low' whole and cuts only
-- 'high': the attention sees the frame as it would untiled, and what tiling changes is the
-- reach of the convolutions at a tile's border.
function M:decode_low(cache, x)
  local w = self.w
  x = cached_conv(cache, "conv1", x, w["decoder.conv1.weight"], w["decoder.conv1.bias"], {padding = {1, 1}, causal_pad = 2})
  local c
  x, c = nn.vae_resblock(x, block(self, "decoder.middle.0."), cache["middle.0"])
  cache["middle.0"] = c
  x = nn.vae_attention(x, block(self, "decoder.middle.1.", true))
  x, c = nn.vae_resblock(x, block(self, "decoder.middle.2."), cache["middle.2"])
  cache["middle.2"] = c
  for i = 1, self.dec_split do
    local pre = ("decoder.upsamples.%d."):format(self.dec_layers[i].index)
    x, c = nn.vae_resblock(x, block(self, pre), cache[pre])
    cache[pre] = c
  end
  return x
end

function M:decode_high(cache, x)
  local w = self.w
  local c
  for i = self.dec_split + 1, #self.dec_layers do
    local layer = self.dec_layers[i]
    local pre = ("decoder.upsamples.%d."):format(layer.index)
    if layer.kind == "res" then
      x, c = nn.vae_resblock(x, block(self, pre), cache[pre])
      cache[pre] = c
    else
      if layer.kind == "up3d" then
        local prev = cache[pre]
        if prev == nil then
          cache[pre] = "first" -- the first chunk passes without the time conv (one frame)
        else
          local t = x:size(3)
          local keep
          if t >= 2 then keep = x:narrow(3, t - 1, 2)
          elseif prev ~= "first" then keep = T.cat({prev:narrow(3, prev:size(3), 1), x}, 3)
          else keep = T.cat({T.zeros(table.unpack(x:shape())), x}, 3) end
          local y = nn.conv3d(x, w[pre .. "time_conv.weight"], w[pre .. "time_conv.bias"],
            {padding = {0, 0}, causal_pad = 2, prev = prev ~= "first" and prev or nil})
          cache[pre] = keep:contiguous()
          x = interleave(y)
        end
      end
      -- the 2-D upsample conv on every frame: a 1x3x3 conv3d over the 5-D tensor (no copies)
      local rw = w[pre .. "resample.1.weight"]
      local co, ci, kh, kw = table.unpack(rw:shape())
      x = nn.conv3d(nn.upsample_nearest(x, {1, 2, 2}), rw:view(co, ci, 1, kh, kw), w[pre .. "resample.1.bias"],
        {padding = {1, 1}, causal_pad = 0})
    end
  end
  return head(self, cache, "head", x, "decoder.head.")
end

function M:decode_chunk(cache, x) return self:decode_high(cache, self:decode_low(cache, x)) end

-- Whether opts asks for tiles and x (last two dims: its frame) is larger than one.
local function wants_tiles(x, opts)
  local nd = x:dim()
  return opts and opts.tile and (x:size(nd - 1) > opts.tile[1] or x:size(nd) > opts.tile[2])
end

-- 'frames' [B, C, T, h, w] through fn(cache, one frame) frame by frame with one cache, joined
local function frame_by_frame(frames, fn)
  local cache, out = {}, {}
  for i = 1, frames:size(3) do out[i] = fn(cache, frames:narrow(3, i, 1):contiguous()) end
  return T.cat(out, 3)
end

function M:decode(z, mean, std, opts)
  local unbatched
  z, unbatched = batched(z)
  if z:size(2) ~= self.z_dim then
    error(("wan.vae: latent has %d channels, the VAE takes %d"):format(z:size(2), self.z_dim), 2)
  end
  if mean then z = z * channels(std) + channels(mean) end
  local x = nn.conv3d(z, self.w["conv2.weight"], self.w["conv2.bias"], {padding = {0, 0}, causal_pad = 0})
  local video
  if wants_tiles(x, opts) then
    local mid = frame_by_frame(x, function(cache, f) return self:decode_low(cache, f) end)
    x = nil
    video = tiling.map(mid, function(m)
      return frame_by_frame(m, function(cache, f) return self:decode_high(cache, f) end)
    end, {tile = opts.tile, overlap = opts.overlap or M.OVERLAP, margin = opts.margin or M.MARGIN, scale = 8})
    if opts.on_frames then -- the chunks an untiled decode streams: the first frame, then 4 a latent frame
      local t = 1
      while t <= video:size(3) do
        local n = t == 1 and 1 or 4
        local chunk = video:narrow(3, t, n)
        opts.on_frames(unbatched and chunk[1] or chunk)
        t = t + n
      end
    end
  else
    local cache, chunks = {}, {}
    for i = 1, x:size(3) do
      local out = self:decode_chunk(cache, x:narrow(3, i, 1))
      if opts and opts.on_frames then opts.on_frames(unbatched and out[1] or out) end
      chunks[i] = out
    end
    video = T.cat(chunks, 3)
  end
  return unbatched and video[1] or video
end

-- ---------------------------------------------------------------- encoder

-- The encoder in two parts, mirroring the decoder: 'high' from conv1 to the last
-- downsample, 'low' at the latent's size (the residual blocks after it, the middle block,
-- the head). A tiled encode cuts only 'high' and blends its features.
function M:encode_high(cache, x)
  local w = self.w
  x = cached_conv(cache, "conv1", x, w["encoder.conv1.weight"], w["encoder.conv1.bias"], {padding = {1, 1}, causal_pad = 2})
  local c
  for i = 1, self.enc_split do
    local layer = self.enc_layers[i]
    local pre = ("encoder.downsamples.%d."):format(layer.index)
    if layer.kind == "res" then
      x, c = nn.vae_resblock(x, block(self, pre), cache[pre])
      cache[pre] = c
    else
      x = per_frame(x, function(f)
        return nn.conv2d(f, w[pre .. "resample.1.weight"], w[pre .. "resample.1.bias"],
          {stride = {2, 2}, padding = {0, 1, 0, 1}})
      end)
      if layer.kind == "down3d" then
        local prev = cache[pre]
        cache[pre] = x:narrow(3, x:size(3), 1):contiguous()
        if prev then -- the first chunk keeps its one frame; later ones halve in time
          x = nn.conv3d(T.cat({prev, x}, 3), w[pre .. "time_conv.weight"], w[pre .. "time_conv.bias"],
            {stride = {2, 1, 1}, padding = {0, 0}, causal_pad = 0})
        end
      end
    end
  end
  return x
end

function M:encode_low(cache, x)
  local c
  for i = self.enc_split + 1, #self.enc_layers do
    local pre = ("encoder.downsamples.%d."):format(self.enc_layers[i].index)
    x, c = nn.vae_resblock(x, block(self, pre), cache[pre])
    cache[pre] = c
  end
  x, c = nn.vae_resblock(x, block(self, "encoder.middle.0."), cache["middle.0"])
  cache["middle.0"] = c
  x = nn.vae_attention(x, block(self, "encoder.middle.1.", true))
  x, c = nn.vae_resblock(x, block(self, "encoder.middle.2."), cache["middle.2"])
  cache["middle.2"] = c
  return head(self, cache, "head", x, "encoder.head.")
end

function M:encode_chunk(cache, x) return self:encode_low(cache, self:encode_high(cache, x)) end

function M:encode(video, mean, std, opts)
  local unbatched
  video, unbatched = batched(video)
  local t = video:size(3)
  if video:size(2) ~= 3 or (t - 1) % 4 ~= 0 then
    error(("wan.vae: video must be [3, 4n+1 frames, H, W], got %s"):format(table.concat(video:shape(), "x")), 2)
  end
  -- chunks of 1, 4, 4, ... frames, each one latent frame
  local function chunks_through(v, fn)
    local cache = {}
    local out = {fn(cache, v:narrow(3, 1, 1))}
    for i = 1, (t - 1) // 4 do out[#out + 1] = fn(cache, v:narrow(3, 2 + 4 * (i - 1), 4)) end
    return T.cat(out, 3)
  end
  local enc
  if wants_tiles(video, opts) then
    local feat = tiling.map(video, function(v)
      return chunks_through(v, function(cache, f) return self:encode_high(cache, f) end)
    end, {tile = opts.tile, overlap = opts.overlap or 8 * M.OVERLAP, margin = opts.margin or 8 * M.MARGIN,
          scale = 1 / 8, align = 8})
    enc = frame_by_frame(feat, function(cache, f) return self:encode_low(cache, f) end)
  else
    enc = chunks_through(video, function(cache, f) return self:encode_chunk(cache, f) end)
  end
  local out = nn.conv3d(enc, self.w["conv1.weight"], self.w["conv1.bias"], {padding = {0, 0}, causal_pad = 0})
  local mu = out:narrow(2, 1, self.z_dim)
  if mean then mu = (mu - channels(mean)) / channels(std) end
  return unbatched and mu[1] or mu
end

return M
