-- CogVideoX's VAE against diffusers' AutoencoderKLCogVideoX (../shared/fixtures/cogvideox-tiny/
-- vae): decode in latent-frame batches with the causal conv caches carried (5 latent frames:
-- batches {1,2,3} {4,5} -> 17 frames; 4: {1,2} {3,4} -> 16), encode in 8-frame batches (17
-- frames: 1-9, 10-17), mean and clamped logvar; spatial tiling (diffusers' tiled_decode: tile
-- sizes from the config, overlaps of 1/6 and 1/5, linear blending) against tools/cogvideox_torch.py
-- (tests/fixtures/cogvideox; the mirror matches every VAE output of the fixture exactly).
-- 1e-4 relative error.
local t = require "testlib"
local zoe = require "zoe"
local vae_mod = require "zoe.arch.cogvideox_vae"

local fx = require "cogvideox_fixtures"
fx.require_fixtures("CogVideoX VAE fixtures")
local root, close = fx.root, fx.close
local io_ = zoe.load(root .. "vae/io.safetensors")
local vae = vae_mod.new(fx.config("vae"), zoe.load(root .. "vae/weights.safetensors"))

t.test("frame batches as _decode and _encode cut them", function()
  local function flat(b)
    local out = {}
    for _, x in ipairs(b) do out[#out + 1] = x[1] .. "+" .. x[2] end
    return table.concat(out, " ")
  end
  t.eq(flat(vae_mod.batches(5, 2)), "1+3 4+2")
  t.eq(flat(vae_mod.batches(4, 2)), "1+2 3+2")
  t.eq(flat(vae_mod.batches(13, 2)), "1+3 4+2 6+2 8+2 10+2 12+2")
  t.eq(flat(vae_mod.batches(1, 2)), "1+1")
  t.eq(flat(vae_mod.batches(17, 8)), "1+9 10+8")
  t.eq(flat(vae_mod.batches(49, 8)), "1+9 10+8 18+8 26+8 34+8 42+8")
end)

t.test("the spatial norm op: GroupNorm(f) * up(y) + up(b), SiLU, frame 0 apart for odd counts", function()
  local T, nn = zoe.tensor, zoe.nn
  local w, b = T.randn({8}, {seed = 3}), T.randn({8}, {seed = 4})
  for _, case in ipairs {{5, 3}, {4, 2}, {1, 1}} do
    local tf, tz = case[1], case[2]
    local f = T.randn({1, 8, tf, 4, 6}, {seed = 1})
    local y, bb = T.randn({1, 8, tz, 2, 3}, {seed = 2}), T.randn({1, 8, tz, 2, 3}, {seed = 5})
    local function up(v)
      if tf > 1 and tf % 2 == 1 then
        return T.cat({nn.upsample_nearest(v:narrow(3, 1, 1), {1, 2, 2}),
                      nn.upsample_nearest(v:narrow(3, 2, tz - 1), {(tf - 1) // (tz - 1), 2, 2})}, 3)
      end
      return nn.upsample_nearest(v, {tf // tz, 2, 2})
    end
    local want = (nn.group_norm(f, 4, w, b, 1e-6) * up(y) + up(bb)):silu()
    close(nn.cogvideox_spatial_norm(f, y, bb, 4, w, b, {silu = true}), want, 1e-6, ("%d frames from %d"):format(tf, tz))
  end
  t.raises(function()
    nn.cogvideox_spatial_norm(T.zeros(1, 8, 4, 5, 6), T.zeros(1, 8, 2, 2, 3), T.zeros(1, 8, 2, 2, 3), 4)
  end, "does not upsample to f")
end)

t.test("decode: 5 latent frames -> 17 (odd first batch), streamed per batch", function()
  local seen = {}
  local out = vae:decode(io_.z, {on_frames = function(chunk) seen[#seen + 1] = chunk:size(3) end})
  close(out, io_.decoded, 1e-4, "decoded")
  t.eq(seen, {9, 8})
end)

t.test("decode: 4 latent frames -> 16 (even batches)", function()
  close(vae:decode(io_.z_even), io_.decoded_even, 1e-4, "decoded_even")
end)

t.test("encode: 17 frames in batches of 8 + 1 -> mean and clamped logvar", function()
  local mean, logvar = vae:encode(io_.video)
  close(mean, io_.encoded_mean, 1e-4, "encoded_mean")
  close(logvar, io_.encoded_logvar, 1e-4, "encoded_logvar")
end)

t.test("spatial tiling: 2 x 2 overlapping tiles blended as diffusers blends them", function()
  local V = zoe.load("tests/fixtures/cogvideox/variants.safetensors")
  local cfg = zoe.json.decode(io.open("tests/fixtures/cogvideox/variants.json"):read("a")).tiled.config
  local tiled = vae_mod.new(cfg, zoe.load(root .. "vae/weights.safetensors"))
  t.eq({tiled.tile_h, tiled.tile_w}, {48, 40})
  local out = tiled:decode(V["tiled.z"], {tiling = true})
  close(out, V["tiled.decoded"], 1e-4, "tiled decode")
  t.ok(fx.relerr(tiled:decode(V["tiled.z"], {tiling = false}), V["tiled.decoded"]) > 1e-3, "tiling changes the result")
  close(tiled:decode(V["tiled.z"], {tiling = "auto"}), out, 0, "auto tiles a latent larger than a tile")
end)

t.done()
