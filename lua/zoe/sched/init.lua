-- zoe.sched: noise schedules. A schedule is the list of noise levels a sampler walks,
-- sigmas[1] > ... > sigmas[steps+1] = 0, and the timestep the model is given at each level
-- (timesteps[i] goes with sigmas[i]).
--
--   local s = zoe.sched.make{schedule = "karras", steps = 20, kind = "eps"}
--   s.sigmas, s.timesteps, s.steps, s.table (the model's noise table)
--   s.next_sigmas (trailing only): the level each step lands on, when not sigmas[i+1]
--
-- schedule: a name (see zoe.sched.names), an array of sigmas (a 0 is appended if it does not end
-- in one), or fn(steps, tbl, opts) -> sigmas[, timesteps[, extra fields]]. The noise table comes
-- from kind: "flow" (with shift), "eps"/"v"/"x0" (a DDPM table: beta_start, beta_end,
-- beta_schedule, train_steps; SD's by default) or "vp_v" (the same betas in the variance-preserving
-- latent, with snr_shift and zero_snr: CogVideoX). Settings a named schedule reads: sigma_min,
-- sigma_max (default: the table's), rho (karras), shift and integer_timesteps (flow),
-- beta_alpha/beta_beta (beta).
local tables = require "zoe.sched.tables"
local spacings = require "zoe.sched.spacings"

local M = {}

M.names = {"flow", "flow_dynamic", "karras", "exponential", "simple", "normal", "sgm_uniform", "beta", "trailing"}
M.shift = tables.shift
M.tables = tables

local KINDS = {flow = true, eps = true, v = true, x0 = true, vp_v = true}

-- the noise table of a model kind
function M.table_for(opts)
  local kind = opts.kind or "flow"
  if not KINDS[kind] then
    error(("unknown model kind '%s' (flow, eps, v, x0, vp_v)"):format(tostring(kind)), 2)
  end
  if kind == "flow" then return tables.flow(opts) end
  if kind == "vp_v" then return tables.vp_latent(opts) end
  return tables.vp(opts)
end

local function check_sigmas(sigmas, where)
  if #sigmas < 2 then error(where .. ": a schedule needs at least 2 sigmas (one step), got " .. #sigmas, 3) end
  for i, s in ipairs(sigmas) do
    if type(s) ~= "number" or s ~= s or s < 0 then
      error(("%s: sigma %d is %s; sigmas must be numbers >= 0"):format(where, i, tostring(s)), 3)
    end
    if i > 1 and s >= sigmas[i - 1] then
      error(("%s: sigmas must decrease (sigma %d = %g after %g)"):format(where, i, s, sigmas[i - 1]), 3)
    end
  end
end

function M.make(opts)
  local tbl = opts.table or M.table_for(opts)
  local schedule = opts.schedule or (tbl.space == "flow" and "flow" or tbl.space == "vp" and "trailing" or "karras")
  local steps = opts.steps
  local sigmas, ts, name, extra
  if type(schedule) == "table" then
    name = "array"
    sigmas = {}
    for i, s in ipairs(schedule) do sigmas[i] = s end
    if sigmas[#sigmas] ~= 0 then sigmas[#sigmas + 1] = 0 end
  else
    if type(steps) ~= "number" or steps < 1 or steps % 1 ~= 0 then
      error(("steps must be a positive integer, got %s"):format(tostring(steps)), 2)
    end
    if type(schedule) == "function" then
      name = "function"
      sigmas, ts = schedule(steps, tbl, opts)
      if type(sigmas) ~= "table" then error("a schedule function must return a list of sigmas", 2) end
      if sigmas[#sigmas] ~= 0 then sigmas[#sigmas + 1] = 0 end
    else
      local fn = spacings[schedule]
      if not fn then
        error(("unknown schedule '%s' (%s, an array of sigmas, or a function)"):format(
          tostring(schedule), table.concat(M.names, ", ")), 2)
      end
      name = schedule
      sigmas, ts, extra = fn(steps, tbl, opts)
    end
  end
  check_sigmas(sigmas, "schedule " .. name)
  local n = #sigmas - 1
  if not ts then
    ts = {}
    for i = 1, n do ts[i] = tbl.timestep(sigmas[i]) end
  end
  local out = {name = name, steps = n, sigmas = sigmas, timesteps = ts, table = tbl}
  for k, v in pairs(extra or {}) do out[k] = v end
  return out
end

return M
