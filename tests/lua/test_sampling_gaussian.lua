-- Every sampler with every model kind on a problem with a known answer: data x0 ~ N(MU, S^2),
-- where the exact denoiser E[x0 | x_sigma] is closed-form. 20000 samples in one batched
-- tensor, from start noise standardized to mean 0 and variance 1 (so what is left is the
-- sampler's own error). ODE samplers must land on N(MU, S^2); LCM (made for consistency
-- models, not for posterior means) on the variance its recursion gives.
local t = require "testlib"
local zoe = require "zoe"
local T = zoe.tensor

local MU, S, N = 1.0, 0.5, 20000

-- E[x0 | x] at sigma, for x = a*x0 + sigma*n (a = 1 - sigma for flow, 1 for ve)
local function gain(a, sigma) return a * S * S / (a * a * S * S + sigma * sigma) end
local function posterior_mean(x, sigma, space)
  local a = space == "flow" and 1 - sigma or 1
  return (x - a * MU) * gain(a, sigma) + MU
end

-- the exact model of each kind (the input of eps/v/x0 models is x / sqrt(1 + sigma^2))
local models = {
  flow = function(x, _, _, info)
    local s = info.sigma
    return (x - posterior_mean(x, s, "flow")) / s
  end,
  eps = function(xin, _, _, info)
    local s = info.sigma
    local x = xin * math.sqrt(1 + s * s)
    return (x - posterior_mean(x, s)) / s
  end,
  v = function(xin, _, _, info)
    local s = info.sigma
    local x = xin * math.sqrt(1 + s * s)
    return (posterior_mean(x, s) - x * (1 / (s * s + 1))) / (-s / math.sqrt(s * s + 1))
  end,
  x0 = function(xin, _, _, info)
    local s = info.sigma
    return posterior_mean(xin * math.sqrt(1 + s * s), s)
  end,
}

local unit = T.generator(1):randn{N}
unit = (unit - unit:mean():item()) / math.sqrt(unit:var(nil, false, 0):item())

-- a start latent from the true marginal at the schedule's first sigma
local function start(spec)
  local s0 = zoe.sampler.schedule(spec).sigmas[1]
  local a = spec.kind == "flow" and 1 - s0 or 1
  return unit * math.sqrt(a * a * S * S + s0 * s0) + a * MU
end

local function moments(x)
  return x:mean():item(), math.sqrt(x:var(nil, false, 0):item())
end

-- steps and tolerance on std/S per sampler: the multistep ones are close at 25 steps, heun
-- needs a finer end of the flow schedule (its last step is an Euler step from sigma_n), first
-- order and stochastic ones need more (their error is about 8/steps here)
local plan = {
  heun = {50, 0.02}, dpmpp_2m = {25, 0.02}, unipc = {25, 0.02},
  euler = {200, 0.03}, ddim = {200, 0.03},
  euler_ancestral = {400, 0.03}, dpmpp_2m_sde = {200, 0.03},
}

for _, kind in ipairs{"flow", "eps", "v", "x0"} do
  for _, name in ipairs{"euler", "heun", "dpmpp_2m", "unipc", "ddim", "euler_ancestral", "dpmpp_2m_sde"} do
    local steps, tol = plan[name][1], plan[name][2]
    t.test(("%s on %s lands on N(%g, %g^2) in %d steps"):format(name, kind, MU, S, steps), function()
      local spec = {model = models[kind], kind = kind, sampler = name, steps = steps, shift = 3, seed = 7}
      spec.x = start(spec)
      local m, sd = moments(zoe.sample(spec))
      t.near(m, MU, 0.01, "mean")
      t.near(sd / S, 1, tol, "std/S")
    end)
  end
end

-- LCM with a posterior-mean denoiser: x_next = a_next*E[x0|x] + sigma_next*z, so the variance
-- follows v_next = a_next^2 g^2 v + sigma_next^2 and the result is g_n^2 v_n (well below S^2).
for _, kind in ipairs{"flow", "eps"} do
  t.test("lcm on " .. kind .. " follows its variance recursion", function()
    local spec = {model = models[kind], kind = kind, sampler = "lcm", steps = 12, shift = 3, seed = 7}
    spec.x = start(spec)
    local x, run = zoe.sample(spec)
    local sig, v = run.sigmas, nil
    local function a(s) return kind == "flow" and 1 - s or 1 end
    v = a(sig[1]) ^ 2 * S * S + sig[1] ^ 2
    for i = 1, run.steps do
      local g = gain(a(sig[i]), sig[i])
      v = a(sig[i + 1]) ^ 2 * g * g * v + sig[i + 1] ^ 2
    end
    local m, sd = moments(x)
    t.near(m, MU, 0.02, "mean")
    t.ok(sd / S < 0.9, "lcm shrinks the variance here")
    t.near(sd, math.sqrt(v), 0.02, "std")
  end)
end

-- the order of accuracy: doubling the steps halves Euler's error and quarters Heun's
t.test("euler converges at first order, heun at second", function()
  local function err(name, steps)
    local spec = {model = models.flow, kind = "flow", sampler = name, steps = steps, shift = 3}
    spec.x = start(spec)
    local _, sd = moments(zoe.sample(spec))
    return math.abs(sd / S - 1)
  end
  local e1, e2 = err("euler", 50), err("euler", 100)
  t.ok(e1 / e2 > 1.8 and e1 / e2 < 2.2, ("euler: error %.4g then %.4g"):format(e1, e2))
  local h1, h2 = err("heun", 50), err("heun", 100)
  t.ok(h1 / h2 > 3.5 and h1 / h2 < 4.5, ("heun: error %.4g then %.4g"):format(h1, h2))
end)

t.test("a wrong denoiser misses: the check can fail", function()
  local spec = {kind = "eps", sampler = "dpmpp_2m", steps = 25, seed = 7,
    model = function(xin, tt, c, info) return models.eps(xin, tt, c, info) * 0.9 end}
  spec.x = start(spec)
  local _, sd = moments(zoe.sample(spec))
  t.ok(math.abs(sd / S - 1) > 0.05, "std/S = " .. sd / S)
end)

t.done()
