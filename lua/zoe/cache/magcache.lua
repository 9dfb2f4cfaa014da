-- MagCache (Ma et al. 2025, "MagCache: Fast Video Generation with Magnitude-Aware Cache"): the
-- magnitude of the blocks' residual changes from step to step by a ratio that hardly depends
-- on the prompt, so it is measured once per model (the calibration keeps the residual's mean
-- per-token norm along sigma, per guidance branch). A step that reuses the residual of the last
-- computed one makes an error of about |1 - ratio| (ratio: the norm now over the norm then);
-- these add up over the reused steps, and a branch reuses while the sum stays below the
-- threshold and it has reused fewer than max_skips steps in a row.
--
--   zoe.cache.magcache{threshold = 0.06, max_skips = 2, start_at = 0.2, end_at = 1, norms = {...}}
--
-- norms = {sigmas = {...}, cond = {...}, uncond = {...}}: by default the model's calibration.
local cache = require "zoe.cache"

local DEFAULTS = {threshold = 0.06, max_skips = 2, start_at = 0.2, end_at = 1}

-- log-linear interpolation of a norm curve sampled at descending sigmas
local function norm_at(sigmas, values, sigma)
  local n = #sigmas
  if sigma >= sigmas[1] then return values[1] end
  if sigma <= sigmas[n] then return values[n] end
  for i = 1, n - 1 do
    local a, b = sigmas[i], sigmas[i + 1]
    if sigma <= a and sigma >= b then
      local w = a == b and 0 or (a - sigma) / (a - b)
      return math.exp(math.log(values[i]) * (1 - w) + math.log(values[i + 1]) * w)
    end
  end
  return values[n]
end

return function(given)
  local s = cache.settings("magcache", given, DEFAULTS, "norms")
  local p = {name = "magcache", settings = s}

  function p:start(run)
    local cal = run.calibration and run.calibration.magcache
    self.norms = s.norms or (cal and cal.norms)
    if not self.norms and s.threshold > 0 then
      error(("magcache: no residual norms for %s: calibrate it (bin/zoe tools/calibrate_cache.lua MODEL)")
        :format(run.model and run.model.name or "this model"), 0)
    end
  end

  function p:decide(st)
    local state = st.state
    if s.threshold <= 0 or not state.last_sigma or not cache.in_window(s, st.step, st.steps) then
      state.err, state.skips, state.last_sigma = 0, 0, st.sigma
      return true
    end
    local curve = self.norms[st.branch] or self.norms.cond
    local ratio = norm_at(self.norms.sigmas, curve, st.sigma) / norm_at(self.norms.sigmas, curve, state.last_sigma)
    local err, skips = state.err + math.abs(1 - ratio), state.skips + 1
    if err < s.threshold and skips <= s.max_skips then
      state.err, state.skips = err, skips
      return false
    end
    state.err, state.skips, state.last_sigma = 0, 0, st.sigma
    return true
  end

  return p
end
