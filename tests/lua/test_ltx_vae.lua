-- LTX-Video's VAE (lua/zoe/arch/ltx_vae.lua) against ../shared/fixtures/ltx-tiny/vae_090, vae_091
-- and vae_095: diffusers' AutoencoderKLLTXVideo in the 0.9.0, 0.9.1 and 0.9.5 layouts on tiny
-- random configurations that keep the real 32x / 8x compression. Decode as LTXPipeline does
-- after denoising (unpack, denormalize, the decode noise and timestep of the conditioned
-- decoders, the 0.9.1 decoder's injected noise replayed from the fixture's draws), every up
-- block's output, and encode (mean, log-variance, normalized mean): 1e-4 relative error.
local t = require "testlib"
local zoe = require "zoe"
local ltx = require "zoe.arch.ltx"
local ltx_vae = require "zoe.arch.ltx_vae"
local T = zoe.tensor

local root = "../shared/fixtures/ltx-tiny/"
local fh = io.open(root .. "vae_090/config.json")
if not fh then
  t.skip("LTX-Video VAE", "../shared/fixtures/ltx-tiny is absent")
  t.done()
end
fh:close()
local close = t.close

local function load(dir)
  local f = assert(io.open(root .. dir .. "/config.json"))
  local cfg = zoe.json.decode(f:read("a"))
  f:close()
  return ltx_vae.new(cfg, zoe.load(root .. dir .. "/weights.safetensors")), zoe.load(root .. dir .. "/io.safetensors"), cfg
end

-- the fixture's injected noise, in call order
local function replay(F)
  local used = {}
  return function(name, h, w)
    local n = F["decoder_noise." .. name]
    assert(n, "the fixture has no draw " .. name)
    t.eq(n:shape(), {h, w}, name .. " shape")
    used[#used + 1] = name
    return n
  end, used
end

for _, dir in ipairs {"vae_090", "vae_091", "vae_095"} do
  t.test(dir .. ": decode as the pipeline does after denoising", function()
    local vae, F = load(dir)
    local z = ltx.unpack(F.latents_packed, {F.z:size(3), F.z:size(4), F.z:size(5)})
    close(z, F.z, 0, "unpacked")
    close(vae:denormalize(z), F.z_denormalized, 1e-6, "denormalized")
    local input = vae:denormalize(z)
    if F.decode_noise then
      local s = F.decode_noise_scale:view(-1, 1, 1, 1, 1)
      input = input * (1 - s) + F.decode_noise * s
    end
    close(input, F.decoder_input, 1e-6, "decoder input")
    local noise, used = replay(F)
    local stages, frames = {}, {}
    local out = vae:decode(F.decoder_input, {timestep = F.decode_timestep, noise = noise, chunk_bytes = 1,
      on_stage = function(p, x)
        stages[p] = stages[p] or {}
        table.insert(stages[p], x)
      end,
      on_frames = function(x) frames[#frames + 1] = x end})
    for i = 0, 3 do
      local ref = F[("decoder.up_blocks.%d_out"):format(i)]
      if ref then close(T.cat(stages[("decoder.up_blocks.%d."):format(i)], 3), ref, 1e-5, "up block " .. i) end
    end
    close(out, F.decoded, 1e-4, "decoded")
    t.ok(#frames > 1, "the frames came in chunks")
    t.eq(t.tensor_relerr(T.cat(frames, 3), out), 0, "the chunks are the video")
    for _, bytes in ipairs {2 ^ 12, 2 ^ 30} do -- the stream gives the same frames whatever its pieces
      -- (within rounding: the Winograd convolutions order their sums by the frames they get at once)
      close(vae:decode(F.decoder_input, {timestep = F.decode_timestep, noise = replay(F), chunk_bytes = bytes}), out, 1e-5,
        ("pieces of at most %d bytes"):format(bytes))
    end
    if dir == "vae_091" then
      t.eq(used, {"up_blocks.0.resnets.0.1", "up_blocks.0.resnets.0.2", "up_blocks.1.resnets.0.1",
                  "up_blocks.1.resnets.0.2", "up_blocks.2.resnets.0.1", "up_blocks.2.resnets.0.2"}, "draws in call order")
    end
  end)

  t.test(dir .. ": encode", function()
    local vae, F = load(dir)
    local mean, logvar = vae:encode(F.video)
    close(mean, F.encoded_mean, 1e-4, "encoded mean")
    close(logvar, F.encoded_logvar, 1e-4, "encoded logvar")
    close(vae:normalize(mean), F.encoded_mean_normalized, 1e-4, "normalized")
  end)
end

t.test("spatial tiles: decoded whole each and blended; a tile as big as the frame is the plain decode", function()
  local vae, F = load("vae_095")
  local z = T.randn({1, 8, 2, 3, 4}, {seed = 9})
  local plain = vae:decode(z, {timestep = {0.05}})
  t.eq(t.tensor_relerr(vae:decode(z, {timestep = {0.05}, tile = {3, 4}}), plain), 0, "one tile")
  local frames = {}
  local tiled = vae:decode(z, {timestep = {0.05}, tile = {2, 3}, overlap = 1, on_frames = function(c) frames[#frames + 1] = c end})
  t.eq(tiled:shape(), plain:shape(), "tiled shape")
  t.eq(t.tensor_relerr(T.cat(frames, 3), tiled), 0, "the frames given to the writer")
  local err = t.tensor_relerr(tiled, plain)
  t.ok(err > 0 and err < 1, ("tiles change the borders, not the picture: %.3g"):format(err))
end)

t.test("the 0.9.1 decoder's injected noise matters, and a conditioned decoder wants its timestep", function()
  local vae, F = load("vae_091")
  local zero = function(_, h, w) return T.zeros(h, w) end
  local out = vae:decode(F.decoder_input, {timestep = F.decode_timestep, noise = zero})
  t.ok(t.tensor_relerr(out, F.decoded) > 0.1, "zero noise moves the output")
  t.raises(function() vae:decode(F.decoder_input) end, "this decoder is timestep-conditioned: give opts.timestep")
end)

t.done()
