-- EasyCache (Zhou et al. 2025, "Less is Enough: Training-Free Video Diffusion Acceleration via
-- Runtime-Adaptive Caching"): the blocks change their output at a rate k per unit change of
-- their input that stays nearly constant from step to step. k is measured at run time, between
-- the last two computed steps; a later step's relative output change is then estimated as
-- k times its input's change over the output's size. The estimates add up from the last
-- computed step; while the sum stays below the threshold the branch reuses that step's
-- transformation (output - input). Nothing to calibrate.
--
--   zoe.cache.easycache{threshold = 0.05, start_at = 0.1, end_at = 1}
local cache = require "zoe.cache"

local DEFAULTS = {threshold = 0.05, start_at = 0.1, end_at = 1}

local function l1(t) return t:abs():mean():item() end

return function(given)
  local s = cache.settings("easycache", given, DEFAULTS)
  local p = {name = "easycache", settings = s, signal = "input"}

  function p:decide(st)
    local state = st.state
    local previous = state.previous
    state.previous = st.signal
    if s.threshold <= 0 or not previous or not state.k or not cache.in_window(s, st.step, st.steps) then
      state.acc = 0
      return true
    end
    state.acc = state.acc + state.k * l1(st.signal - previous) / state.out_size
    if state.acc < s.threshold then return false end
    state.acc = 0
    return true
  end

  function p:computed(st)
    local state = st.state
    if state.last_in then
      local din = l1(st.input - state.last_in)
      if din > 0 then state.k = l1(st.output - state.last_out) / din end
    end
    state.last_in, state.last_out, state.out_size = st.input, st.output, math.max(l1(st.output), 1e-30)
  end

  return p
end
