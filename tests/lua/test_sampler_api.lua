-- The sampler interface a recipe and the pipeline use: the step iterator and its states,
-- changing settings between steps, seeded noise, the model call, schedules given as arrays or
-- functions, custom samplers, waits inside the model, and the errors.
local t = require "testlib"
local zoe = require "zoe"
local T = zoe.tensor

local c = T.tensor{0.3, -0.2, 0.5, 0.1}
local function toy(x, tt, ctx) return x:tanh() * 0.5 + (ctx or c) * (tt / 1000) end
local function flat(x) return x:reshape(x:numel()):totable() end
local function base(extra)
  local spec = {model = toy, kind = "flow", sampler = "unipc", steps = 6, shift = 5,
    x = T.tensor{1.0, -0.5, 0.25, 2.0}}
  for k, v in pairs(extra or {}) do spec[k] = v end
  return spec
end

t.test("the iterator yields one state per step, and the last x is zoe.sample's", function()
  local it, run = zoe.sampler.steps(base())
  local seen = {}
  for state in it do
    seen[#seen + 1] = state.step
    t.eq(state.steps, 6)
    t.eq(state.sigma, run.sigmas[state.step])
    t.eq(state.sigma_next, run.sigmas[state.step + 1])
    t.eq(state.timestep, run.timesteps[state.step])
    t.ok(T.is_tensor(state.x) and T.is_tensor(state.denoised))
  end
  t.eq(seen, {1, 2, 3, 4, 5, 6})
  local x = zoe.sample(base())
  t.eq(flat(run.x), flat(x))
  t.eq(run.timesteps, {999, 961, 908, 833, 713, 499}, "Wan's UniPC timesteps")
end)

t.test("on_step is called after every step", function()
  local steps = {}
  zoe.sample(base{on_step = function(s) steps[#steps + 1] = s.sigma end})
  t.eq(#steps, 6)
  t.ok(steps[1] > steps[6])
end)

t.test("settings changed between steps apply to the next steps", function()
  local uncond = T.tensor{-0.4, 0.1, 0.0, 0.3}
  local scheduled = zoe.sample(base{cond = c, uncond = uncond,
    cfg = function(step) return step <= 3 and 4 or 1.5 end})
  local constant = zoe.sample(base{cond = c, uncond = uncond, cfg = 4})
  local it, run = zoe.sampler.steps(base{cond = c, uncond = uncond, cfg = 4})
  for state in it do if state.step == 3 then state.settings.cfg = 1.5 end end
  t.eq(flat(run.x), flat(scheduled), "changed at step 3 == cfg function")
  t.ok(t.relerr(flat(run.x), flat(constant)) > 1e-3, "and differs from cfg 4 throughout")
end)

t.test("noise of ancestral and SDE samplers comes from the seed", function()
  for _, name in ipairs{"euler_ancestral", "dpmpp_2m_sde", "lcm"} do
    local a = zoe.sample(base{sampler = name, seed = 5})
    local b = zoe.sample(base{sampler = name, seed = 5})
    local d = zoe.sample(base{sampler = name, seed = 6})
    t.eq(flat(a), flat(b), name .. " same seed")
    t.ok(t.relerr(flat(a), flat(d)) > 1e-3, name .. " another seed")
  end
end)

t.test("start latent: noise is scaled for the kind, shape draws it from the seed", function()
  local n = T.generator(3):randn{4}
  local got
  zoe.sample{kind = "eps", sampler = "euler", steps = 1, noise = n,
    model = function(xin, _, _, info)
      got = {xin = flat(xin), sigma = info.sigma, step = info.step}
      return xin * 0
    end}
  -- eps models are given x / sqrt(1 + sigma^2); the start is noise * sqrt(1 + sigma_max^2)
  for i, v in ipairs(flat(n)) do t.near(got.xin[i], v, 1e-6) end
  t.near(got.sigma, 14.614641229334, 1e-9)
  t.eq(got.step, 1)
  local a = zoe.sample(base{x = false, shape = {4}, seed = 3})
  local b = zoe.sample(base{x = false, noise = T.generator(3):randn{4}})
  t.eq(flat(a), flat(b))
end)

t.test("schedules as an array (0 appended) and as a function", function()
  local _, run = zoe.sampler.steps(base{schedule = {1.0, 0.5, 0.2}, steps = false})
  t.eq(run.sigmas, {1.0, 0.5, 0.2, 0})
  t.eq(run.timesteps, {1000, 500, 200})
  local calls
  local it
  it, run = zoe.sampler.steps(base{steps = 4, schedule = function(steps, tbl)
    calls = steps
    return {tbl.sigma_max, 0.6, 0.3, 0.1}
  end})
  for _ in it do end
  t.eq(calls, 4)
  t.eq(run.sigmas, {1.0, 0.6, 0.3, 0.1, 0})
  t.eq(zoe.sched.shift(0.5, 3), 0.75)
end)

t.test("a sampler of one's own", function()
  zoe.sampler.register("half_euler", {options = {factor = 1}, run = function(r)
    local x = r.x
    for i = 1, r.steps do
      local x0 = r.denoise(x, i)
      x = x + (x - x0) * ((r.sigmas[i + 1] - r.sigmas[i]) / r.sigmas[i] * r.opt("factor"))
      r.yield(i, x, x0)
    end
    return x
  end})
  local mine = zoe.sample(base{sampler = "half_euler"})
  local euler = zoe.sample(base{sampler = "euler"})
  t.eq(flat(mine), flat(euler))
  t.ok(t.relerr(flat(zoe.sample(base{sampler = "half_euler", factor = 0.5})), flat(euler)) > 1e-3)
end)

t.test("the model may wait on the loop inside the sampler; a yield of its own is refused", function()
  -- this file runs as a job, and the sampler in a coroutine the job resumes: a zoe.sleep in
  -- the model yields through the sampler to the loop (timers fire) and returns into the model
  local ticks = 0
  local timer = zoe.uv.new_timer()
  timer:start(1, 1, function() ticks = ticks + 1 end)
  local waited = 0
  local x = zoe.sample(base{model = function(x, tt, ctx)
    local before = ticks
    zoe.sleep(5)
    if ticks > before then waited = waited + 1 end
    return toy(x, tt, ctx)
  end})
  timer:stop()
  timer:close()
  t.eq(waited, 6, "the loop ran during each of the six model calls")
  t.eq(flat(x), flat(zoe.sample(base())), "the same result as without the waits")
  t.raises(function()
    zoe.sample(base{model = function(x, tt, ctx) coroutine.yield("mine") return toy(x, tt, ctx) end})
  end, "sampler 'unipc': the model yielded")
end)

t.test("numeric helpers: expm1 near 0 and at -inf, float32 rounding, numpy's linspace, solve", function()
  local num = require "zoe.numeric"
  t.near(num.expm1(1e-10), 1.00000000005e-10, 1e-15)
  t.near(num.expm1(-0.3), math.exp(-0.3) - 1, 1e-15)
  t.near(num.expm1(1e-3), 1.0005001667083417e-3, 1e-15)
  t.eq(num.expm1(-math.huge), -1)
  t.eq(num.f32(0.999), 0.99900001287460327)
  t.eq(num.linspace(1, 0, 5), {1, 0.75, 0.5, 0.25, 0})
  local x = num.solve({{2, 1, 0}, {1, 3, 1}, {0, 1, 4}}, {3, 5, 5})
  for i = 1, 3 do t.near(x[i], 1, 1e-12) end
end)

t.test("errors say what is allowed", function()
  t.raises(function() zoe.sample(base{sampler = "foo"}) end,
    "unknown sampler 'foo' (euler, euler_ancestral, heun, dpmpp_2m, dpmpp_2m_sde, ddim, unipc, lcm")
  t.raises(function() zoe.sample(base{schedule = "foo"}) end,
    "unknown schedule 'foo' (flow, flow_dynamic, karras, exponential, simple, normal, sgm_uniform, beta, trailing, an array")
  t.raises(function() zoe.sample(base{kind = "epsilon"}) end, "unknown model kind 'epsilon' (flow, eps, v, x0, vp_v)")
  t.raises(function() zoe.sample(base{cgf = 5}) end, "unknown setting 'cgf' for sampler 'unipc' (")
  t.raises(function() zoe.sample(base{cfg = 5, cond = c}) end, "cfg = 5 needs uncond")
  t.raises(function() zoe.sample(base{x = false}) end, "no start latent: give x")
  t.raises(function() zoe.sample(base{model = false}) end, "no model: give model")
  t.raises(function() zoe.sample(base{steps = 0}) end, "steps must be a positive integer, got 0")
  t.raises(function() zoe.sample(base{schedule = {1, 0.5, 0.7}}) end, "sigmas must decrease (sigma 3 = 0.7 after 0.5)")
  t.raises(function() zoe.sample(base{kind = "eps", schedule = "flow"}) end, "schedule 'flow' is for flow models")
  t.raises(function() zoe.sample(base{order = 4}) end, "unipc: order must be 1, 2 or 3, got 4")
  t.raises(function() zoe.sample(base{beta_schedule = "cosine", kind = "eps", schedule = "karras"}) end,
    "unknown beta_schedule 'cosine' (scaled_linear, linear)")
  t.raises(function() zoe.sample(base{cfg = "high", cond = c, uncond = c}) end,
    "cfg must be a number or fn(step, sigma, timestep) -> number, got string")
end)

t.done()
