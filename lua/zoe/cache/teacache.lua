-- TeaCache (Liu et al. 2024, "Timestep Embedding Tells: It's Time to Cache for Video Diffusion
-- Models"): the relative L1 change of the timestep-modulated input from one evaluation to the
-- next, rescaled by a polynomial fitted per model, estimates how much the blocks' output
-- changes. The estimates add up from the last computed step; while the sum stays below the
-- threshold the branch reuses its residual, and when it reaches it the branch computes and the
-- sum starts again.
--
--   zoe.cache.teacache{threshold = 0.1, start_at = 0.1, end_at = 1, coefficients = {...}}
--
-- coefficients: the polynomial, highest power first (numpy's poly1d order); by default the
-- model's calibration (zoe.cache.calibration: DIR/cache_calibration.json, or the family's
-- published values). The steps before start_at always compute (TeaCache's "ret steps").
local cache = require "zoe.cache"

local DEFAULTS = {threshold = 0.1, start_at = 0.1, end_at = 1}

local function poly(c, x)
  local y = 0
  for _, a in ipairs(c) do y = y * x + a end
  return y
end

return function(given)
  local s = cache.settings("teacache", given, DEFAULTS, "coefficients")
  local p = {name = "teacache", settings = s, signal = "modulated"}

  function p:start(run)
    local cal = run.calibration and run.calibration.teacache
    self.coefficients = s.coefficients or (cal and cal.coefficients)
    if not self.coefficients and s.threshold > 0 then
      error(("teacache: no coefficients for %s: give coefficients = {...}, or calibrate it "
        .. "(bin/zoe tools/calibrate_cache.lua MODEL)"):format(run.model and run.model.name or "this model"), 0)
    end
    local rec = {}
    for k, v in pairs(s) do rec[k] = v end
    rec.coefficients = self.coefficients
    self.settings = rec -- the record holds the polynomial that decided
  end

  function p:decide(st)
    local state = st.state
    local previous = state.previous
    state.previous = st.signal
    if s.threshold <= 0 or not previous or not cache.in_window(s, st.step, st.steps) then
      state.acc = 0
      return true
    end
    state.acc = (state.acc or 0) + poly(self.coefficients, cache.rel_l1(st.signal, previous))
    if state.acc < s.threshold then return false end
    state.acc = 0
    return true
  end

  return p
end
