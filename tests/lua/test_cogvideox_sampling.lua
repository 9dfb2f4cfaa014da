-- CogVideoX's schedulers and dynamic guidance against diffusers (../shared/fixtures/cogvideox-tiny/
-- sampling): CogVideoXDDIMScheduler (2B: snr_shift 3) and CogVideoXDPMScheduler (5B: snr_shift 1,
-- its noise replayed from the fixture's per-step draws) on a toy model, 6 and 20 steps, every
-- step within 1e-5; the tables; and the pipeline's guided run (dynamic cfg, the transformer_2b
-- fixture model) step by step.
local t = require "testlib"
local zoe = require "zoe"
local guidance = require "zoe.guidance"
local T = zoe.tensor

local fx = require "cogvideox_fixtures"
fx.require_fixtures("CogVideoX sampling fixtures")
local S = zoe.load(fx.root .. "sampling/io.safetensors")
local CFG = fx.config("sampling")

local function settings(which)
  local c = CFG[which]
  return {kind = "vp_v", beta_start = c.beta_start, beta_end = c.beta_end, beta_schedule = c.beta_schedule,
          train_steps = c.num_train_timesteps, snr_shift = c.snr_shift_scale, zero_snr = c.rescale_betas_zero_snr}
end

t.test("alphas_cumprod after the SNR shift and the zero-terminal-SNR rescale", function()
  for _, which in ipairs {"ddim", "dpm"} do
    local acp = zoe.sched.tables.alphas_cumprod(settings(which))
    local want = S[which .. ".alphas_cumprod"]:totable()
    t.eq(#acp, 1000)
    for k = 1, 1000 do t.near(acp[k], want[k], 1e-12, ("%s[%d]"):format(which, k - 1)) end
    t.eq(acp[1000], 0, "zero terminal SNR")
    t.eq(S[which .. ".final_alpha_cumprod"]:totable()[1], 1)
  end
end)

-- v = 0.5 x + (t/1000) c, the fixture's toy model
local c = S["toy.c"]
local function toy(x, tt) return x * 0.5 + c * (tt / 1000) end

local function run(which, sampler, steps)
  local name = ("%s_%d"):format(which, steps)
  local spec = settings(which)
  spec.sampler, spec.schedule, spec.steps, spec.model, spec.x = sampler, "trailing", steps, toy, S["toy.noise"]
  local noise, draws = S[name .. ".noise"], {}
  if noise then
    spec.step_noise = function(i)
      draws[i] = (draws[i] or 0) + 1
      return noise[i]
    end
  end
  local it, r = zoe.sampler.steps(spec)
  local ts = S[name .. ".timesteps"]:totable()
  t.eq(r.timesteps, ts, name .. " timesteps")
  local lat, worst = S[name .. ".latents"], 0
  for state in it do
    local err = fx.relerr(state.x, lat[state.step])
    worst = math.max(worst, err)
    if err > 1e-5 then error(("%s step %d: relative error %.3g"):format(name, state.step, err)) end
  end
  if noise then
    for i, d in ipairs(S[name .. ".draws_per_step"]:totable()) do t.eq(draws[i], d, name .. " draws at step " .. i) end
  end
  print(("# %s: worst step %.3g"):format(name, worst))
end

t.test("CogVideoXDDIMScheduler, 6 steps (lands on t - 166, the last on alphas_cumprod[0])", function()
  run("ddim", "cogvideox_ddim", 6)
end)
t.test("CogVideoXDDIMScheduler, 20 steps (the last lands on final_alpha_cumprod)", function()
  run("ddim", "cogvideox_ddim", 20)
end)
t.test("CogVideoXDPMScheduler, 6 steps, noise replayed with its thrown-away draws", function()
  run("dpm", "cogvideox_dpm", 6)
end)
t.test("CogVideoXDPMScheduler, 20 steps (the last returns x0)", function()
  run("dpm", "cogvideox_dpm", 20)
end)

t.test("dynamic guidance: the scales the pipeline used", function()
  local fn = guidance.dynamic(6, 6)
  local ts, want = S["cfg.timesteps"]:totable(), S["cfg.guidance_scale"]:totable()
  for i, tt in ipairs(ts) do t.near(fn(i, nil, tt), want[i], 1e-12, "step " .. i) end
end)

t.test("the pipeline's guided run: model on [uncond; cond], dynamic cfg 6, DDIM, 6 steps", function()
  -- the transformer outputs are the fixture's (the transformer itself is checked in
  -- test_cogvideox.lua); the guidance and the steps are ours
  local out, calls = S["cfg.model_out"], 0
  local spec = settings("ddim")
  spec.sampler, spec.schedule, spec.steps, spec.x = "cogvideox_ddim", "trailing", 6, S["cfg.latents_init"][1]
  spec.cond, spec.uncond, spec.cfg = "cond", "uncond", guidance.dynamic(6, 6)
  spec.model_batch = function(xs, _, conds)
    calls = calls + 1
    t.eq(conds, {"cond", "uncond"})
    return T.stack({out[calls][2], out[calls][1]}, 1) -- ours is [cond; uncond]
  end
  local lat = S["cfg.latents"]
  for state in zoe.sampler.steps(spec) do
    fx.close(state.x, lat[state.step][1], 1e-5, "step " .. state.step)
  end
  t.eq(calls, 6)
end)

t.done()
