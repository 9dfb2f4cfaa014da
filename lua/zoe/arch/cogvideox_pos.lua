-- CogVideoX's position tables, computed as diffusers computes them (models/embeddings.py), with
-- float32 roundings where it rounds:
--   sincos_3d   get_3d_sincos_pos_embed (2B): [temporal D/4 | spatial 3D/4], the spatial part
--               [w coordinate | h coordinate] (its meshgrid puts w first), each 1-D block
--               [sin(pos w_i) | cos(pos w_i)], w_i = 10000^(-i/(d/2)), positions index/scale
--               (float32), the sines in float64, the table then float32
--   rope_3d     CogVideoXPipeline._prepare_rotary_positional_embeddings (5B and 1.5): head_dim
--               split [t Dh/4 | h 3Dh/8 | w 3Dh/8], each frequency twice in a row; 1.0 places
--               the grid in the base size's crop region (fractional positions off the base size),
--               1.5 takes integer positions ("slice")
local zoe = require "zoe"
local num = require "zoe.numeric"
local T = zoe.tensor

local M = {}
local f32 = num.f32

-- python's round(): halves to even
local function round(x)
  local f = math.floor(x)
  local d = x - f
  if d > 0.5 or (d == 0.5 and f % 2 == 1) then return f + 1 end
  return f
end

-- rows [n, d] of [sin(pos w) | cos(pos w)] for positions 0..n-1 divided by 'scale'
local function sincos_1d(d, n, scale)
  local rows = {}
  for k = 0, n - 1 do
    local x = f32(k / scale)
    local row = {}
    for i = 0, d // 2 - 1 do
      local a = x * (1 / 10000 ^ (i / (d / 2)))
      row[i + 1] = math.sin(a)
      row[d // 2 + i + 1] = math.cos(a)
    end
    rows[k + 1] = row
  end
  return T.tensor(rows)
end

-- the 2B table [F * Hp * Wp, D] for a latent grid of F x Hp x Wp patches
function M.sincos_3d(D, F, Hp, Wp, spatial_scale, temporal_scale)
  if D % 4 ~= 0 then error(("cogvideox: sincos positions need a width divisible by 4, got %d"):format(D), 3) end
  local ds, dt = 3 * D // 4, D // 4
  local t = sincos_1d(dt, F, temporal_scale):view(F, 1, 1, dt):expand(F, Hp, Wp, dt)
  local w = sincos_1d(ds // 2, Wp, spatial_scale):view(1, 1, Wp, ds // 2):expand(F, Hp, Wp, ds // 2)
  local h = sincos_1d(ds // 2, Hp, spatial_scale):view(1, Hp, 1, ds // 2):expand(F, Hp, Wp, ds // 2)
  return T.cat({t, w, h}, 4):view(F * Hp * Wp, D)
end

-- torch.linspace(a, b, n) in float32 (its two halves counted from either end)
local function linspace32(a, b, n)
  a, b = f32(a), f32(b)
  local out = {}
  if n == 1 then return {a} end
  local step = f32((b - a) / (n - 1))
  for i = 0, n - 1 do
    out[i + 1] = i < n // 2 and f32(a + step * i) or f32(b - step * (n - 1 - i))
  end
  return out
end

local function range(n)
  local out = {}
  for i = 1, n do out[i] = i - 1 end
  return out
end

-- cos and sin rows [#positions, d] of get_1d_rotary_pos_embed (use_real, interleaved)
local function rope_1d(d, positions)
  local freqs = {}
  for j = 0, d // 2 - 1 do freqs[j + 1] = f32(1 / f32(10000 ^ f32(2 * j / d))) end
  local c, s = {}, {}
  for k, x in ipairs(positions) do
    local cr, sr = {}, {}
    for j, fr in ipairs(freqs) do
      local a = f32(x * fr)
      cr[2 * j - 1], cr[2 * j] = math.cos(a), math.cos(a)
      sr[2 * j - 1], sr[2 * j] = math.sin(a), math.sin(a)
    end
    c[k], s[k] = cr, sr
  end
  return T.tensor(c), T.tensor(s)
end

-- the crop region of a grid inside the base size (get_resize_crop_region_for_grid)
local function crop_region(gh, gw, base_w, base_h)
  local th, tw = base_h, base_w
  local rh, rw
  if gh / gw > th / tw then
    rh, rw = th, math.tointeger(round(th / gh * gw))
  else
    rw, rh = tw, math.tointeger(round(tw / gw * gh))
  end
  local top, left = round((th - rh) / 2.0), round((tw - rw) / 2.0)
  return {top, left}, {top + rh, left + rw}
end

-- cos, sin [Lv, head_dim] for 'frames' latent frames at a pixel size (VAE stride 8)
function M.rope_3d(cfg, frames, height, width)
  local dh, p, pt = cfg.attention_head_dim, cfg.patch_size, cfg.patch_size_t
  local gh, gw = height // (8 * p), width // (8 * p)
  local base_w, base_h = cfg.sample_width // p, cfg.sample_height // p
  local tpos, hpos, wpos
  if not pt then
    local start, stop = crop_region(gh, gw, base_w, base_h)
    hpos = linspace32(start[1], stop[1] * (gh - 1) / gh, gh)
    wpos = linspace32(start[2], stop[2] * (gw - 1) / gw, gw)
    tpos = linspace32(0, frames * (frames - 1) / frames, frames)
  else
    frames = (frames + pt - 1) // pt
    tpos, hpos, wpos = range(frames), range(gh), range(gw)
  end
  local dt, dsp = dh // 4, dh // 8 * 3
  local tc, ts = rope_1d(dt, tpos)
  local hc, hs = rope_1d(dsp, hpos)
  local wc, ws = rope_1d(dsp, wpos)
  local function combine(a, b, c)
    local n = frames * gh * gw
    return T.cat({a:view(frames, 1, 1, dt):expand(frames, gh, gw, dt), b:view(1, gh, 1, dsp):expand(frames, gh, gw, dsp),
                  c:view(1, 1, gw, dsp):expand(frames, gh, gw, dsp)}, 4):view(n, dt + 2 * dsp)
  end
  return combine(tc, hc, wc), combine(ts, hs, ws)
end

return M
