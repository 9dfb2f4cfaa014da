-- zoe.sampler: runs a sampler over a schedule with a model.
--
--   for state in zoe.sampler.steps{model = fn, kind = "flow", sampler = "unipc",
--                                  steps = 30, shift = 5, noise = n, cond = c} do
--     -- state.step, state.steps, state.sigma, state.sigma_next, state.timestep,
--     -- state.x (the latent after this step), state.denoised (the x0 estimate),
--     -- state.settings (the table given: change cfg, eta, ... there for the next steps)
--   end
--   local x = zoe.sampler.run{...}   -- the same, to the end; calls on_step(state) each step
--
-- A sampler is lua/zoe/sampler/NAME.lua: {options = {defaults}, run = fn(r)}, run as a
-- coroutine that calls r.yield(i, x, x0) after each step. What r gives it:
--   r.x (the start latent), r.steps, r.sigmas (steps+1, the last 0), r.timesteps,
--   r.sigma_next(i) (the level step i lands on: sigmas[i+1] but for trailing schedules),
--   r.denoise(x, i) -> x0 at sigmas[i], r.alpha(sigma), r.lambda(sigma) = log(alpha/sigma),
--   r.noise(i) (unit Gaussian noise shaped like x, seeded), r.opt(name) (a live setting).
-- See docs/SAMPLING.md for every setting.
local zoe = require "zoe"
local sched = require "zoe.sched"
local kinds = require "zoe.sampler.kinds"
local guidance = require "zoe.guidance"

local M = {}

M.names = {"euler", "euler_ancestral", "heun", "dpmpp_2m", "dpmpp_2m_sde", "ddim", "unipc", "lcm",
           "cogvideox_ddim", "cogvideox_dpm"}
-- Names are matched as users type them: case, spaces, '-', '_' and '+' for 'p' do not
-- matter ("DPM++ 2M SDE", "dpmpp_2m_sde" and "dpm++2m-sde" are one sampler).
M.aliases = {eulera = "euler_ancestral"}
local registered = {}

local function squash(name) return (name:lower():gsub("%+", "p"):gsub("[^%w]", "")) end

-- add a sampler of your own: def = {options = {...}, run = fn(r)}
function M.register(name, def)
  assert(type(def) == "table" and type(def.run) == "function", "register: give {options =, run = fn(r)}")
  def.options = def.options or {}
  registered[name] = def
end

-- the sampler called 'name' (as a user may spell it) and its canonical name
function M.get(name)
  if type(name) == "string" then
    if registered[name] then return registered[name], name end
    local key = squash(name)
    key = M.aliases[key] and squash(M.aliases[key]) or key
    for n in pairs(registered) do
      if squash(n) == key then return registered[n], n end
    end
    for _, n in ipairs(M.names) do
      if squash(n) == key then return require("zoe.sampler." .. n), n end
    end
  end
  local all = {}
  for _, n in ipairs(M.names) do all[#all + 1] = n end
  for n in pairs(registered) do all[#all + 1] = n end
  error(("unknown sampler '%s' (%s; case, spaces and '+' may vary: \"DPM++ 2M\")"):format(tostring(name),
    table.concat(all, ", ")), 3)
end

-- every setting a run understands (the sampler's own options come on top)
local SETTINGS = {
  "model", "model_batch", "kind", "sampler", "schedule", "steps", "shift", "sigma_min",
  "sigma_max", "rho", "integer_timesteps", "mu", "seq_len", "base_shift", "max_shift",
  "base_seq_len", "max_seq_len", "shift_terminal", "beta_alpha", "beta_beta", "beta_start", "beta_end",
  "beta_schedule", "train_steps", "snr_shift", "zero_snr", "x", "noise", "shape", "seed", "generator", "step_noise",
  "cond", "uncond", "cfg", "cfg_rescale", "on_cfg", "on_step",
}

local function check_settings(spec, def, name)
  local ok = {}
  for _, k in ipairs(SETTINGS) do ok[k] = true end
  for k in pairs(def.options) do ok[k] = true end
  for k in pairs(spec) do
    if not ok[k] then
      local all = {}
      for a in pairs(ok) do all[#all + 1] = a end
      table.sort(all)
      error(("unknown setting '%s' for sampler '%s' (%s)"):format(tostring(k), name, table.concat(all, ", ")), 4)
    end
  end
end

-- the schedule a run with these settings walks (zoe.sched.make, with the sampler's defaults:
-- Wan's UniPC starts its flow schedule at 0.999)
function M.schedule(spec)
  local def = M.get(spec.sampler or "euler")
  local kind = kinds.get(spec.kind)
  local sdef = def.schedule and def.schedule[kind.space] or {}
  return sched.make(setmetatable({}, {__index = function(_, k)
    local v = spec[k]
    if v == nil then v = sdef[k] end
    return v
  end}))
end

-- the run object a sampler sees (see the top of this file)
function M.prepare(spec)
  local def, name = M.get(spec.sampler or "euler")
  check_settings(spec, def, name)
  local kind = kinds.get(spec.kind)
  local s = M.schedule(spec)
  local gen = spec.generator or zoe.tensor.generator(spec.seed or 0)
  local x = spec.x
  if not x then
    local noise = spec.noise
    if not noise and spec.shape then noise = gen:randn(spec.shape) end
    if not noise then
      error("no start latent: give x (used as is), noise (unit noise, scaled for the model kind) "
        .. "or shape (noise drawn from seed)", 3)
    end
    x = kind.start(noise, s.sigmas[1])
  end
  local predict = guidance.predictor(spec)
  local r = {
    name = name, kind = kind, x = x, steps = s.steps, sigmas = s.sigmas, timesteps = s.timesteps,
    schedule = s, settings = spec, generator = gen, alpha = kind.alpha,
  }
  function r.lambda(sigma) return math.log(kind.alpha(sigma)) - math.log(sigma) end
  -- the level step i lands on (a trailing schedule's may differ from the next step's)
  function r.sigma_next(i) return s.next_sigmas and s.next_sigmas[i] or s.sigmas[i + 1] end
  function r.opt(k)
    local v = spec[k]
    if v == nil then v = def.options[k] end
    return v
  end
  function r.denoise(xi, i)
    local sigma = s.sigmas[i]
    local scale = kind.input_scale(sigma)
    local pred = predict(scale == 1 and xi or xi * scale, s.timesteps[i], {sigma = sigma, step = i})
    return kind.to_x0(xi, pred, sigma)
  end
  function r.noise(i)
    if spec.step_noise then return spec.step_noise(i, x:shape()) end
    return gen:randn(x:shape())
  end
  r.def = def
  return r
end

-- our yields carry this mark. The runtime's own yields (a heavy op inside the model handed
-- to the compute thread, a sleep) never come here: the job's coroutine.resume passes them
-- up to the job and their results back down (runtime/lua/lcoro.c).
local STEP = {}

-- iterator over the steps; also returns the run (r.sigmas, r.timesteps; r.x at the end)
function M.steps(spec)
  local r = M.prepare(spec)
  function r.yield(i, x, x0)
    r.x = x
    coroutine.yield(STEP, {
      step = i, steps = r.steps, sigma = r.sigmas[i], sigma_next = r.sigma_next(i),
      timestep = r.timesteps[i], x = x, denoised = x0, settings = spec,
    })
  end
  local co = coroutine.create(function() return r.def.run(r) end)
  local done = false
  local function next_state()
    if done then return nil end
    local ok, mark, state = coroutine.resume(co)
    if not ok then
      done = true
      error(mark, 0)
    end
    if coroutine.status(co) == "dead" then
      done = true
      r.x = mark or r.x
      return nil
    end
    if mark ~= STEP then
      done = true
      error(("sampler '%s': the model yielded (coroutine.yield inside a model function is not supported)"):format(r.name), 2)
    end
    return state
  end
  return next_state, r
end

-- runs every step; returns the final latent and the run
function M.run(spec)
  local it, r = M.steps(spec)
  for state in it do
    if spec.on_step then spec.on_step(state) end
  end
  return r.x, r
end

return M
