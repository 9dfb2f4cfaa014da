-- CogVideoX's VAE (diffusers' AutoencoderKLCogVideoX) from the C blocks, with diffusers' weight
-- names, run exactly as its _decode and _encode run it:
--   decode: latent frames in batches of 2 (the first takes 2 + F mod 2), every causal conv
--     carrying its last 2 input frames into the next batch. GroupNorm statistics cover a
--     batch's frames, so the batching is part of the result, not only of the memory.
--   encode: pixel frames in batches of 8 (the first takes 8 + F mod 8), caches carried too.
-- Causal convs pad time by repeating the first frame ("first"); the decoder's norms are
-- SpatialNorm3D: GroupNorm(f) * conv_y(zq) + conv_b(zq) with the latent zq brought to f's size
-- by nearest interpolation (the first frame apart when f has an odd frame count > 1); the
-- 1x1x1 convs run on the latent and are upsampled inside one C pass with the SiLU after
-- (runtime/nn/cogvideox/spatial_norm.c), which is the same numbers.
--
--   local vae = cogvideox_vae.new(cfg, w)     cfg: the folder's vae/config.json
--   vae:decode(z [1, C, F, h, w] or [C, F, h, w], {on_frames = fn(chunk), tiling = true | false})
--     -> video [.., 3, T, 8h, 8w] (no scaling: the caller divides by the scaling factor)
--   vae:encode(video) -> mean, logvar (logvar clamped to [-30, 20]), as latent_dist's
-- Spatial tiling (tiling = true, or "auto": when the latent is larger than one tile) follows
-- diffusers' tiled_decode: tiles of half the config's sample size with overlaps of 1/6 (rows)
-- and 1/5 (columns), each decoded through all frame batches, blended linearly, then cropped.
local zoe = require "zoe"
local util = require "zoe.arch.util"
local T, nn = zoe.tensor, zoe.nn

local M = {}
M.__index = M

local function dims(x) return table.unpack(x:shape()) end

function M.new(cfg, w)
  cfg = require("zoe.arch.cogvideox").config(cfg)
  util.need(w, "decoder.conv_in.conv.weight", "cogvideox.vae")
  local self = setmetatable({cfg = cfg, w = w}, M)
  self.channels = cfg.block_out_channels or {128, 256, 256, 512}
  self.layers = cfg.layers_per_block or 3
  self.groups = cfg.norm_num_groups or 32
  self.eps = cfg.norm_eps or 1e-6
  self.latent = cfg.latent_channels or 16
  self.time_levels = math.floor(math.log(cfg.temporal_compression_ratio or 4, 2) + 0.5)
  self.scaling_factor = cfg.scaling_factor or 1.15258426
  self.tile_h, self.tile_w = (cfg.sample_height or 480) // 2, (cfg.sample_width or 720) // 2
  return self
end

-- ---------------------------------------------------------------- layers

-- CogVideoXCausalConv3d: 'first' padding (the first frame repeated kt-1 times, or the cache of
-- the last batch), spatial zero padding; the cache keeps the last kt-1 frames it saw.
local function causal_conv(cache, key, x, w, b)
  local co, ci, kt, kh, kw = dims(w)
  if kt == 1 then return nn.conv3d(x, w, b, {padding = {(kh - 1) // 2, (kw - 1) // 2}, causal_pad = 0}) end
  local prev = cache[key]
  local n, c, t, h, wd = dims(x)
  if not prev then prev = x:narrow(3, 1, 1):expand(n, c, kt - 1, h, wd):contiguous() end
  local y = nn.conv3d(x, w, b, {padding = {(kh - 1) // 2, (kw - 1) // 2}, causal_pad = kt - 1, prev = prev})
  if t >= kt - 1 then cache[key] = x:narrow(3, t - kt + 2, kt - 1):contiguous()
  else cache[key] = T.cat({prev, x}, 3):narrow(3, t + 1, kt - 1):contiguous() end
  return y, co, ci
end

-- SpatialNorm3D (then SiLU when 'silu'): GroupNorm(f) * conv_y(zq) + conv_b(zq), the 1x1x1
-- convs on the latent, nearest-upsampled inside the C op as it goes (nn.cogvideox_spatial_norm)
function M:spatial_norm(pre, f, zq, silu)
  local w = self.w
  local y = nn.conv3d(zq, w[pre .. "conv_y.conv.weight"], w[pre .. "conv_y.conv.bias"], {padding = {0, 0}, causal_pad = 0})
  local b = nn.conv3d(zq, w[pre .. "conv_b.conv.weight"], w[pre .. "conv_b.conv.bias"], {padding = {0, 0}, causal_pad = 0})
  local gw, gb = w[pre .. "norm_layer.weight"], w[pre .. "norm_layer.bias"]
  return nn.cogvideox_spatial_norm(f:contiguous(), y, b, self.groups, gw:to("f32"), gb:to("f32"), {eps = 1e-6, silu = silu})
end

-- CogVideoXResnetBlock3D; zq: the decoder's latent (spatial norms), nil in the encoder
function M:resnet(cache, pre, x, zq)
  local w = self.w
  local function norm_silu(name, v) -- the norm, then SiLU
    if zq then return self:spatial_norm(pre .. name .. ".", v, zq, true) end
    return nn.group_norm(v, self.groups, w[pre .. name .. ".weight"], w[pre .. name .. ".bias"], self.eps):silu()
  end
  local h = norm_silu("norm1", x)
  h = causal_conv(cache, pre .. "conv1", h, w[pre .. "conv1.conv.weight"], w[pre .. "conv1.conv.bias"])
  h = norm_silu("norm2", h)
  h = causal_conv(cache, pre .. "conv2", h, w[pre .. "conv2.conv.weight"], w[pre .. "conv2.conv.bias"])
  local sc = w[pre .. "conv_shortcut.weight"]
  if sc then x = nn.conv3d(x, sc, w[pre .. "conv_shortcut.bias"], {padding = {0, 0}, causal_pad = 0}) end
  return h:add_(x)
end

-- a 2-D conv [Cout, Cin, kh, kw] on every frame of x [N, C, T, H, W], as a 1 x kh x kw conv3d
local function frame_conv(x, w, b, stride, pad)
  local co, ci, kh, kw = dims(w)
  if stride == 1 then
    return nn.conv3d(x, w:view(co, ci, 1, kh, kw), b, {padding = {pad, pad}, causal_pad = 0})
  end
  local n, c, t, h, wd = dims(x)
  local y = nn.conv2d(x:transpose(2, 3):reshape(n * t, c, h, wd), w, b, {stride = {stride, stride}, padding = {0, 1, 0, 1}})
  local _, c2, h2, w2 = dims(y)
  return y:view(n, t, c2, h2, w2):transpose(2, 3):contiguous()
end

-- CogVideoXUpsample3D: nearest x2 (in time too when compressing it: frame 0 alone when the
-- count is odd), then a 3x3 conv on every frame
local function upsample(x, w, b, time)
  local t = x:size(3)
  if time and t > 1 and t % 2 == 1 then
    x = T.cat({nn.upsample_nearest(x:narrow(3, 1, 1), {1, 2, 2}), nn.upsample_nearest(x:narrow(3, 2, t - 1), {2, 2, 2})}, 3)
  elseif time and t > 1 then
    x = nn.upsample_nearest(x, {2, 2, 2})
  else
    x = nn.upsample_nearest(x, {1, 2, 2})
  end
  return frame_conv(x, w, b, 1, 1)
end

-- CogVideoXDownsample3D: pairs of frames averaged when compressing time (frame 0 kept when
-- the count is odd), then a 3x3 conv of stride 2 on every frame, padded right and bottom
local function downsample(x, w, b, time)
  local n, c, t, h, wd = dims(x)
  if time and t > 1 then
    local odd = t % 2
    local rest = x:narrow(3, 1 + odd, t - odd):reshape(n, c, (t - odd) // 2, 2, h, wd)
    local pooled = (rest:select(4, 1) + rest:select(4, 2)) * 0.5
    x = odd == 1 and T.cat({x:narrow(3, 1, 1), pooled}, 3) or pooled
  end
  return frame_conv(x, w, b, 2)
end

-- ---------------------------------------------------------------- decoder

-- One batch of latent frames z [N, C, Tz, h, w] through the decoder, caches carried in 'cache'.
function M:decode_batch(cache, z)
  local w, nup = self.w, #self.channels
  local x = causal_conv(cache, "conv_in", z, w["decoder.conv_in.conv.weight"], w["decoder.conv_in.conv.bias"])
  for i = 0, 1 do x = self:resnet(cache, ("decoder.mid_block.resnets.%d."):format(i), x, z) end
  for i = 0, nup - 1 do
    local pre = ("decoder.up_blocks.%d."):format(i)
    for r = 0, self.layers do x = self:resnet(cache, pre .. ("resnets.%d."):format(r), x, z) end
    if i < nup - 1 then
      x = upsample(x, w[pre .. "upsamplers.0.conv.weight"], w[pre .. "upsamplers.0.conv.bias"], i < self.time_levels)
    end
  end
  x = self:spatial_norm("decoder.norm_out.", x, z, true)
  return causal_conv(cache, "conv_out", x, w["decoder.conv_out.conv.weight"], w["decoder.conv_out.conv.bias"])
end

-- the frame batches of _decode / _encode: {first, count} (1-based), the first batch taking the
-- remainder
local function batches(frames, size)
  local n, rem, out = math.max(frames // size, 1), frames % size, {}
  for i = 0, n - 1 do
    local s = size * i + (i == 0 and 0 or rem)
    local e = math.min(size * (i + 1) + rem, frames)
    out[#out + 1] = {s + 1, e - s}
  end
  return out
end
M.batches = batches

-- z [N, C, F, h, w] -> video, every frame batch in order; on_batch(chunk) sees each
local function decode_frames(self, z, on_batch)
  local cache, chunks = {}, {}
  for _, b in ipairs(batches(z:size(3), 2)) do
    local out = self:decode_batch(cache, z:narrow(3, b[1], b[2]))
    if on_batch then on_batch(out) end
    chunks[#chunks + 1] = out
  end
  return #chunks == 1 and chunks[1] or T.cat(chunks, 3)
end

-- diffusers' blend_v / blend_h: b's first rows (columns) fade in from a's last ones, in place
local function blend(a, b, dim, extent)
  extent = math.min(a:size(dim), b:size(dim), extent)
  local na = a:size(dim)
  for y = 0, extent - 1 do
    local r = y / extent
    local bs = b:narrow(dim, y + 1, 1)
    bs:copy_(a:narrow(dim, na - extent + y + 1, 1) * (1 - r) + bs * r)
  end
  return b
end

-- diffusers' tiled_decode: tiles of tile_h x tile_w pixels, overlapping, each decoded through
-- every frame batch, blended and cropped, then joined
-- the latent tile size and the steps between tiles (diffusers' tile_latent_min_* and overlaps)
function M:tile_steps()
  local up = 2 ^ (#self.channels - 1)
  local lh, lw = math.floor(self.tile_h / up), math.floor(self.tile_w / up)
  return lh, lw, math.floor(lh * (1 - 1 / 6)), math.floor(lw * (1 - 1 / 5))
end

function M:decode_tiled(z)
  local _, _, _, h, wd = dims(z)
  local lh, lw, step_h, step_w = self:tile_steps()
  if step_h < 1 or step_w < 1 then
    error(("cogvideox.vae: tiles of %dx%d pixels are too small to overlap"):format(self.tile_w, self.tile_h), 3)
  end
  local blend_h, blend_w = math.floor(self.tile_h * (1 / 6)), math.floor(self.tile_w * (1 / 5))
  local keep_h, keep_w = self.tile_h - blend_h, self.tile_w - blend_w
  local rows = {}
  for i = 0, h - 1, step_h do
    local row = {}
    for j = 0, wd - 1, step_w do
      local tile = z:narrow(4, i + 1, math.min(lh, h - i)):narrow(5, j + 1, math.min(lw, wd - j))
      row[#row + 1] = decode_frames(self, tile:contiguous())
    end
    rows[#rows + 1] = row
  end
  local out_rows = {}
  for r, row in ipairs(rows) do
    local parts = {}
    for c, tile in ipairs(row) do
      if r > 1 then tile = blend(rows[r - 1][c], tile, 4, blend_h) end
      if c > 1 then tile = blend(row[c - 1], tile, 5, blend_w) end
      parts[c] = tile:narrow(4, 1, math.min(keep_h, tile:size(4))):narrow(5, 1, math.min(keep_w, tile:size(5)))
    end
    out_rows[r] = T.cat(parts, 5)
  end
  return T.cat(out_rows, 4)
end

function M:decode(z, opts)
  opts = opts or {}
  local unbatched = z:dim() == 4
  if unbatched then z = z:unsqueeze(1) end
  if z:size(2) ~= self.latent then
    error(("cogvideox.vae: latent has %d channels, the VAE takes %d"):format(z:size(2), self.latent), 2)
  end
  local on = opts.on_frames
  local tiling = opts.tiling
  if tiling == "auto" then
    local lh, lw, step_h, step_w = self:tile_steps()
    tiling = step_h >= 1 and step_w >= 1 and (z:size(4) > lh or z:size(5) > lw)
  end
  local video
  if tiling then
    video = self:decode_tiled(z)
    if on then on(unbatched and video[1] or video) end
  else
    video = decode_frames(self, z, on and function(chunk) on(unbatched and chunk[1] or chunk) end)
  end
  return unbatched and video[1] or video
end

-- ---------------------------------------------------------------- encoder

function M:encode_batch(cache, x)
  local w, n = self.w, #self.channels
  x = causal_conv(cache, "conv_in", x, w["encoder.conv_in.conv.weight"], w["encoder.conv_in.conv.bias"])
  for i = 0, n - 1 do
    local pre = ("encoder.down_blocks.%d."):format(i)
    for r = 0, self.layers - 1 do x = self:resnet(cache, pre .. ("resnets.%d."):format(r), x) end
    if i < n - 1 then
      x = downsample(x, w[pre .. "downsamplers.0.conv.weight"], w[pre .. "downsamplers.0.conv.bias"], i < self.time_levels)
    end
  end
  for i = 0, 1 do x = self:resnet(cache, ("encoder.mid_block.resnets.%d."):format(i), x) end
  x = nn.group_norm(x, self.groups, w["encoder.norm_out.weight"], w["encoder.norm_out.bias"], 1e-6):silu()
  return causal_conv(cache, "conv_out", x, w["encoder.conv_out.conv.weight"], w["encoder.conv_out.conv.bias"])
end

-- video [N, 3, F, H, W] (or [3, F, H, W]) in [-1, 1] -> mean, logvar [.., C, F', H/8, W/8]
function M:encode(video)
  local unbatched = video:dim() == 4
  if unbatched then video = video:unsqueeze(1) end
  local cache, chunks = {}, {}
  for _, b in ipairs(batches(video:size(3), 8)) do
    chunks[#chunks + 1] = self:encode_batch(cache, video:narrow(3, b[1], b[2]))
  end
  local h = #chunks == 1 and chunks[1] or T.cat(chunks, 3)
  local mean = h:narrow(2, 1, self.latent):contiguous()
  local logvar = h:narrow(2, self.latent + 1, self.latent):clamp(-30, 20)
  if unbatched then return mean[1], logvar[1] end
  return mean, logvar
end

return M
