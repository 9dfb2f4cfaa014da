-- First-Block-Cache (ParaAttention's FBCache): the first block always runs. When its residual
-- differs from the one at the last computed step by less than the threshold (relative L1), the
-- other blocks are not run: their residual from that step is added instead.
--
--   zoe.cache.first_block{threshold = 0.05, start_at = 0, end_at = 1}
local cache = require "zoe.cache"

local DEFAULTS = {threshold = 0.05, start_at = 0, end_at = 1}

return function(given)
  local s = cache.settings("first_block", given, DEFAULTS)
  local p = {name = "first_block", settings = s, signal = "first_block"}

  function p:decide(st)
    local ref = st.state.ref
    if s.threshold <= 0 or not ref or not cache.in_window(s, st.step, st.steps) then return true end
    return cache.rel_l1(st.signal, ref) >= s.threshold
  end

  function p:computed(st) st.state.ref = st.signal end

  return p
end
