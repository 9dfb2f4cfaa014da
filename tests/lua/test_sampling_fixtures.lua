-- Schedules and samplers step by step against PyTorch runs of the published algorithms
-- (tests/fixtures/samplers.lua, made by tools/fixtures/make_sampler_fixtures.py: k-diffusion's
-- samplers and schedules, ComfyUI's table schedules, diffusers' DDIM and UniPC, Wan's flow
-- sigmas) on toy models. Latents within 1e-5 relative error at every step.
local t = require "testlib"
local zoe = require "zoe"
local T = zoe.tensor
local F = dofile("tests/fixtures/samplers.lua")

local function fx(name)
  local e = assert(F[name], "no fixture " .. name)
  return T.tensor(e.data):view(e.shape)
end

local function flat(x)
  local n = x:numel()
  return x:reshape(n):totable()
end

local function same_list(got, name, tol)
  local ref = assert(F[name], "no fixture " .. name).data
  t.eq(#got, #ref, name .. " length")
  for i = 1, #ref do t.near(got[i], ref[i], tol or 1e-12, ("%s[%d]"):format(name, i)) end
end

-- ---- schedules ----

t.test("DDPM noise table (SD's scaled_linear betas) and k-diffusion's sigma_to_t", function()
  local tbl = zoe.sched.table_for{kind = "eps"}
  same_list(tbl.sigmas, "vp.sigmas")
  local s = zoe.sched.make{kind = "eps", schedule = "karras", steps = 10}
  same_list(s.timesteps, "sched.karras.timesteps", 1e-9)
end)

t.test("karras, exponential, simple, normal, sgm_uniform, beta on the DDPM table", function()
  for _, name in ipairs{"karras", "exponential", "simple", "normal", "sgm_uniform", "beta"} do
    same_list(zoe.sched.make{kind = "eps", schedule = name, steps = 10}.sigmas, "sched." .. name)
  end
  same_list(zoe.sched.make{kind = "eps", schedule = "karras", steps = 10, sigma_min = 0.1,
    sigma_max = 10, rho = 3}.sigmas, "sched.karras_rho3")
end)

t.test("simple, sgm_uniform, karras, beta on the flow table with shift 3", function()
  for _, name in ipairs{"simple", "sgm_uniform", "karras", "beta"} do
    same_list(zoe.sched.make{kind = "flow", shift = 3, schedule = name, steps = 10}.sigmas, "sched.flow_" .. name)
  end
end)

t.test("Wan's flow sigmas and integer timesteps: unipc from 0.999, dpm++ from 1", function()
  local u = zoe.sampler.schedule{sampler = "unipc", kind = "flow", schedule = "flow", steps = 8, shift = 5}
  same_list(u.sigmas, "sched.wan_unipc_8_5", 0)
  same_list(u.timesteps, "sched.wan_unipc_8_5.timesteps", 0)
  local d = zoe.sampler.schedule{sampler = "dpmpp_2m", kind = "flow", schedule = "flow", steps = 8, shift = 5}
  same_list(d.sigmas, "sched.wan_dpm_8_5", 0)
  same_list(d.timesteps, "sched.wan_dpm_8_5.timesteps", 0)
end)

-- ---- samplers ----

local c = fx("toy_c")
local toy = {
  eps = function(xin, tt) return xin:tanh() * 0.8 + c * (tt / 1000) end,
  flow = function(x, tt) return x:tanh() * 0.5 + c * (tt / 1000) end,
}
toy.v = toy.eps

-- runs sampler on the fixture's schedule and compares every step; vp: the fixture's latents
-- are diffusers' variance-preserving ones, x / sqrt(1 + sigma^2)
local function check_run(run, spec, vp)
  local lat = fx(run .. ".latents")
  local noise = F[run .. ".noise"] and fx(run .. ".noise")
  spec.model = toy[spec.kind]
  spec.noise = fx("noise")
  if noise then spec.step_noise = function(i) return noise[i] end end
  local it, r = zoe.sampler.steps(spec)
  same_list(r.sigmas, run .. ".sigmas", 1e-12)
  local n = 0
  for state in it do
    n = n + 1
    local x = state.x
    if vp then x = x * (1 / math.sqrt(1 + state.sigma_next ^ 2)) end
    local err = t.relerr(flat(x), flat(lat[state.step]))
    if err > 1e-5 then error(("%s step %d: relative error %.3g"):format(run, state.step, err), 0) end
  end
  t.eq(n, r.steps, "steps yielded")
end

local ve_runs = {
  {"eps_euler", "euler"}, {"eps_euler_ancestral", "euler_ancestral"},
  {"eps_euler_ancestral_eta05", "euler_ancestral", {eta = 0.5}},
  {"eps_heun", "heun"}, {"eps_dpmpp_2m", "dpmpp_2m"}, {"eps_dpmpp_2m_sde", "dpmpp_2m_sde"},
  {"eps_lcm", "lcm"}, {"v_euler", "euler", {kind = "v"}}, {"v_dpmpp_2m", "dpmpp_2m", {kind = "v"}},
}
for _, run in ipairs(ve_runs) do
  t.test(run[1] .. ": k-diffusion's " .. run[2] .. ", karras, 10 steps", function()
    local spec = {kind = "eps", sampler = run[2], schedule = "karras", steps = 10}
    for k, v in pairs(run[3] or {}) do spec[k] = v end
    check_run(run[1], spec)
  end)
end

local vp_runs = {
  {"eps_ddim_vp", "ddim"}, {"eps_ddim_eta1_vp", "ddim", {eta = 1}},
  {"eps_unipc_vp", "unipc"}, {"eps_unipc3_vp", "unipc", {order = 3}},
}
for _, run in ipairs(vp_runs) do
  t.test(run[1] .. ": diffusers' " .. run[2] .. " in its own latent, karras, 10 steps", function()
    local spec = {kind = "eps", sampler = run[2], schedule = "karras", steps = 10}
    for k, v in pairs(run[3] or {}) do spec[k] = v end
    check_run(run[1], spec, true)
  end)
end

for _, name in ipairs{"euler", "heun", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde", "lcm"} do
  t.test("flow_" .. name .. ": flow model, Wan's flow schedule from 1, shift 3, 8 steps", function()
    check_run("flow_" .. name, {kind = "flow", sampler = name, schedule = "flow", shift = 3,
      steps = 8, sigma_max = 1})
  end)
end

-- ---- guidance ----

local cond, uncond = fx("cfg.cond"), fx("cfg.uncond")
local function ctx_model(x, tt, ctx) return x:tanh() * 0.5 + ctx * (tt / 1000) end

local function check_cfg(run, extra)
  for _, form in ipairs{"model", "model_batch"} do
    local calls = 0
    local spec = {kind = "flow", sampler = "euler", schedule = "flow", shift = 3, steps = 8,
      x = fx("noise"), cond = cond, uncond = uncond}
    if form == "model" then
      spec.model = function(...) calls = calls + 1; return ctx_model(...) end
    else
      spec.model_batch = function(xs, tt, ctxs)
        calls = calls + 1
        t.eq(xs:shape(), {2, 2, 3, 4}, "batched x")
        return xs:tanh() * 0.5 + T.stack(ctxs, 1) * (tt / 1000)
      end
    end
    for k, v in pairs(extra) do spec[k] = v end
    local lat = fx(run .. ".latents")
    for state in zoe.sampler.steps(spec) do
      local err = t.relerr(flat(state.x), flat(lat[state.step]))
      if err > 1e-5 then error(("%s (%s) step %d: relative error %.3g"):format(run, form, state.step, err), 0) end
    end
    t.eq(calls, form == "model" and 16 or 8, form .. " calls")
  end
end

t.test("cfg 4 with a negative context: two calls, or one batched call, per step", function()
  check_cfg("cfg4", {cfg = 4})
end)

t.test("guidance rescale 0.7 (diffusers' rescale_noise_cfg)", function()
  check_cfg("cfg4_rescale07", {cfg = 4, cfg_rescale = 0.7})
end)

t.test("guidance scale as a function of step and sigma", function()
  check_cfg("cfg_by_step", {cfg = function(step, sigma) return 1 + step * 0.5 + sigma end})
end)

t.done()
