-- Wan2.1 against the official code: ../shared/fixtures/wan2.1-tiny holds tiny
-- configurations of the official classes with random weights under the official
-- names, their inputs and outputs (see its README). 1e-4 relative error.
local t = require "testlib"
local zoe = require "zoe"
local wan = require "zoe.arch.wan"
local t5 = require "zoe.arch.t5"
local wan_vae = require "zoe.arch.wan_vae"
local T = zoe.tensor

local fx = require "wan_fixtures"
fx.require_fixtures("Wan2.1 fixtures")
local root, config, relerr, close = fx.root, fx.config, fx.relerr, fx.close

t.test("umT5 encoder matches the official T5Encoder", function()
  local cfg, io_ = config("umt5"), zoe.load(root .. "umt5/io.safetensors")
  local enc = t5.encoder(cfg, zoe.load(root .. "umt5/weights.safetensors"))
  local out = enc(io_.ids, io_.mask)
  close(out, io_.out, 1e-4, "all positions")
  -- the real tokens alone give the same rows (padding is masked): Wan encodes only those
  local n = io_.mask:sum():item()
  local short = enc(io_.ids:narrow(2, 1, n), io_.mask:narrow(2, 1, n))
  close(short, io_.out:narrow(2, 1, n), 1e-4, "real tokens only")
end)

t.test("DiT matches the official WanModel", function()
  local cfg, io_ = config("dit"), zoe.load(root .. "dit/io.safetensors")
  local dit = wan.dit(cfg, zoe.load(root .. "dit/weights.safetensors"))
  close(dit(io_.x, io_.t, io_.context), io_.out, 1e-4, "dit")
end)

t.test("DiT runs cond and uncond as one batch with the same result", function()
  local cfg, io_ = config("dit"), zoe.load(root .. "dit/io.safetensors")
  local dit = wan.dit(cfg, zoe.load(root .. "dit/weights.safetensors"))
  local null = T.zeros(3, cfg.text_dim)
  local kv = dit.cross_kv({io_.context, null})
  local both = dit.forward({io_.x, io_.x}, io_.t, kv)
  close(both[1], io_.out, 1e-4, "cond in a batch")
  close(both[2], dit(io_.x, io_.t, null), 1e-5, "uncond in a batch")
end)
t.test("DiT sampling with guidance (UniPC, 6 steps, shift 5, cfg 5) matches Wan step by step", function()
  local cfg = config("dit")
  local dit = wan.dit(cfg, zoe.load(root .. "dit/weights.safetensors"))
  local S = zoe.load(root .. "sampling/dit_sampling.safetensors")
  local kv = dit.cross_kv({S.context, S.context_null}) -- cond and uncond, once per prompt
  local function model_batch(xs, tt)
    local out = dit.forward({xs[1], xs[2]}, tt, kv)
    return T.stack(out, 1)
  end
  local it, run = zoe.sampler.steps{model_batch = model_batch, kind = "flow", sampler = "unipc",
    schedule = "flow", steps = 6, shift = 5, x = S.noise, cond = S.context, uncond = S.context_null, cfg = 5}
  t.eq(run.timesteps, S.timesteps:totable(), "timesteps")
  local worst = 0
  for state in it do
    local err = relerr(state.x, S.latents[state.step])
    worst = math.max(worst, err)
    if err > 1e-4 then error(("step %d: relative error %.3g"):format(state.step, err)) end
  end
  print(("# worst step error %.3g"):format(worst))
end)

t.test("VAE decode (one latent frame at a time, with the feature cache) and encode match WanVAE_", function()
  local io_ = zoe.load(root .. "vae/io.safetensors")
  local vae = wan_vae.new(config("vae"), zoe.load(root .. "vae/weights.safetensors"))
  local seen = 0
  local video = vae:decode(io_.z, io_.latent_mean, io_.latent_std, {on_frames = function(c) seen = seen + c:size(3) end})
  t.eq(seen, 9, "frames streamed chunk by chunk")
  close(video, io_.decoded, 1e-4, "decode")
  close(vae:encode(io_.video, io_.latent_mean, io_.latent_std), io_.encoded_mu, 1e-4, "encode")
end)

-- (The VAE stays in f32: its 30 convolutions in bf16 drift to 6e-2 on these random weights,
-- so the pipeline asks for bf16 only around the text encoder and the DiT.)
t.test("the bf16 paths of the DiT (every product on the bf16 kernel) and umT5 (bf16 weights) stay within 1e-2", function()
  local before = zoe.gemm_backend()
  zoe.gemm_backend("zoe-avx512bf16") -- stays "openblas" on a CPU without AVX512-BF16
  local ok, err = pcall(function()
    local io_ = zoe.load(root .. "dit/io.safetensors")
    local dit = wan.dit(config("dit"), zoe.load(root .. "dit/weights.safetensors"))
    close(dit(io_.x, io_.t, io_.context), io_.out, 1e-2, "dit in bf16")
  end)
  zoe.gemm_backend("auto")
  if not ok then error(err, 0) end
  -- umT5 with its bf16 .pth weights on the bf16 kernel, against the same weights in f32 products
  -- (no attention scaling makes these random weights sensitive: the rounding of the weights
  -- alone moves the output by 2e-2, so the reference has the same rounded weights)
  local u = zoe.load(root .. "umt5/io.safetensors")
  local enc = t5.encoder(config("umt5"), zoe.load(root .. "umt5/weights-bf16.pth"))
  zoe.gemm_backend("openblas")
  local want = enc(u.ids, u.mask)
  zoe.gemm_backend("auto") -- its linears on the bf16 kernel, attention in f32, as a run does
  ok, err = pcall(close, enc(u.ids, u.mask), want, 1e-2, "umt5 bf16 weights on the bf16 kernel")
  zoe.gemm_backend("auto")
  if not ok then error(err, 0) end
  t.ok(before, "the backend was named")
end)
t.done()
