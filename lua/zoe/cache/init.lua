-- zoe.cache: step caches as Lua policies. A step cache saves DiT evaluations: at a step where
-- the blocks' work would change little, it adds the residual the blocks added at the last
-- step they ran (out = in + residual) instead of running them. A policy only decides; this
-- module keeps the residuals, per guidance branch, and the log of what was skipped.
--
--   text2video{..., cache = "teacache", cache_threshold = 0.1}
--   text2video{..., cache = zoe.cache.magcache{threshold = 0.06, start_at = 0.2}}
--   text2video{..., cache = {name = "mine", signal = "input", decide = function(self, s) ... end}}
--   text2video{..., cache = record.recipe.cache}     -- a recorded run's skips, laid again
--
-- A policy is a table:
--   name        for the record ("custom" when absent)
--   settings    plain data, for the record
--   signal      what decide sees as s.signal: "modulated" (the time modulation the blocks get,
--               the family's TeaCache input), "input" (the tokens entering the blocks),
--               "first_block" (the first block's residual; the block then always runs and the
--               cached residual covers blocks 2..n), or nil
--   start(self, run)      optional, once per run: run = {steps =, sigmas =, calibration =, model =}
--   decide(self, s) -> true to compute, false to reuse; called for every evaluation of every
--               branch. s = {step, steps, sigma, timestep, evaluation (the n-th call of this
--               branch), branch ("cond" | "uncond"), signal ([1, ...] of this branch), state (a
--               table that lives for the run, one per branch: the policy's memory), cached
--               (whether a residual is there to reuse: without one the branch computes whatever
--               decide says), blocks, input (the tokens entering the cached part)}
--   computed(self, s)     optional, after a branch computed: s.input, s.output, s.residual
--
-- Shipped policies (lua/zoe/cache/NAME.lua, made by zoe.cache.NAME{settings}): teacache,
-- magcache, easycache, first_block. Each takes threshold, start_at and end_at (fractions of
-- the steps: outside [start_at, end_at) every step computes); threshold 0 computes every step,
-- which gives exactly the bytes of an uncached run. zoe.cache.pattern replays a recorded run.
local T = require("zoe").tensor

local M = {}

M.names = {"teacache", "magcache", "easycache", "first_block"}
local BRANCHES = {"cond", "uncond"}

-- zoe.cache.teacache{...} etc.: the policy files load on first use
setmetatable(M, {__index = function(t, name)
  if name == "pattern" or name == "calibration" then
    local mod = require("zoe.cache." .. name)
    rawset(t, name, mod)
    return mod
  end
  for _, n in ipairs(M.names) do
    if n == name then
      local mod = require("zoe.cache." .. name)
      rawset(t, name, mod)
      return mod
    end
  end
end})

-- Settings of a shipped policy: defaults filled in, unknown keys refused by name; 'extra'
-- names settings without a default (calibration given by hand).
function M.settings(who, given, defaults, extra)
  given = given or {}
  if type(given) ~= "table" then error(("zoe.cache.%s: give a table of settings"):format(who), 3) end
  local s = {}
  for k, v in pairs(defaults) do s[k] = v end
  for k, v in pairs(given) do
    if defaults[k] == nil and k ~= extra then
      local names = {extra}
      for n in pairs(defaults) do names[#names + 1] = n end
      table.sort(names)
      error(("zoe.cache.%s: unknown setting '%s' (%s)"):format(who, tostring(k), table.concat(names, ", ")), 3)
    end
    s[k] = v
  end
  if type(s.threshold) ~= "number" or s.threshold < 0 then
    error(("zoe.cache.%s: threshold must be a number >= 0, got %s"):format(who, tostring(s.threshold)), 3)
  end
  for _, k in ipairs {"start_at", "end_at"} do
    if type(s[k]) ~= "number" or s[k] < 0 or s[k] > 1 then
      error(("zoe.cache.%s: %s must be a fraction of the steps (0..1), got %s"):format(who, k, tostring(s[k])), 3)
    end
  end
  return s
end

-- Whether step i of n lies in [start_at, end_at), the steps a policy may skip.
function M.in_window(settings, step, steps)
  local f = (step - 1) / steps
  return f >= settings.start_at and f < settings.end_at
end

-- Mean absolute difference relative to the mean absolute value of 'ref' (TeaCache's and
-- First-Block-Cache's relative L1 distance).
function M.rel_l1(a, ref)
  local d = (a - ref):abs():mean():item()
  local n = ref:abs():mean():item()
  return n > 0 and d / n or (d > 0 and math.huge or 0)
end

-- The policy a recipe names: a name (with cache_threshold), a policy table, or nothing.
function M.policy(c, threshold)
  if c == nil or c == false or c == "none" then
    if threshold ~= nil then error("cache_threshold needs a cache policy (cache = \"teacache\", ...)", 0) end
    return nil
  end
  if type(c) == "string" then
    local known = false
    for _, n in ipairs(M.names) do known = known or n == c end
    if not known then
      error(("unknown cache policy '%s' (%s, or a policy table)"):format(c, table.concat(M.names, ", ")), 0)
    end
    return M[c]({threshold = threshold})
  end
  if type(c) == "table" and c.decide == nil and type(c.skipped) == "table" then
    return M.pattern(c) -- a record's cache table: its skips again
  end
  if type(c) ~= "table" or type(c.decide) ~= "function" then
    error("cache must be a policy name (" .. table.concat(M.names, ", ") .. ") or a table with decide(self, s)", 0)
  end
  if threshold ~= nil then
    error("cache_threshold goes with a policy name; a policy table carries its own settings", 0)
  end
  local sig = c.signal
  if sig ~= nil and sig ~= "modulated" and sig ~= "input" and sig ~= "first_block" then
    error(("cache policy '%s': signal must be \"modulated\", \"input\", \"first_block\" or nil, got %s")
      :format(tostring(c.name), tostring(sig)), 0)
  end
  return c
end

-- What the record keeps of a policy: its name and its settings (plain data only).
local function plain(v, depth)
  if depth > 4 then return nil end
  if type(v) == "table" then
    local out = {}
    for k, x in pairs(v) do
      if type(k) == "string" or type(k) == "number" then out[k] = plain(x, depth + 1) end
    end
    return out
  end
  if type(v) == "number" or type(v) == "string" or type(v) == "boolean" then return v end
  return nil
end

-- ---------------------------------------------------------------- the runner

local Runner = {}
Runner.__index = Runner

-- A run of 'policy': run = {steps =, sigmas =, calibration =, model =}.
function M.runner(policy, run)
  local r = setmetatable({
    policy = policy, run = run, branches = {}, skipped = {}, calls = 0,
    blocks_run = 0, blocks_full = 0, hooked = 0,
  }, Runner)
  if policy.start then policy:start(run) end
  r.around = function(x, blocks, info) return r:around_blocks(x, blocks, info) end
  return r
end

-- model_batch wrapped: the runner learns the step of each call, and that the family did
-- call the hook (a family without it would silently run uncached).
function Runner:wrap(model_batch, family)
  return function(xs, t, conds, info)
    self.calls = self.calls + 1
    self.step, self.sigma = info and info.step, info and info.sigma
    local out = model_batch(xs, t, conds, info)
    if self.hooked ~= self.calls then
      error(("cache: the %s family does not call the step-cache hook (denoiser opts.around_blocks); "
        .. "run it without cache"):format(tostring(family)), 0)
    end
    return out
  end
end

local function branch_rows(x, i) return x:narrow(1, i, 1) end
-- a signal may have one row for every branch (the time modulation of a number timestep)
local function signal_rows(x, i) return x:size(1) == 1 and x or x:narrow(1, i, 1) end

function Runner:around_blocks(x, run_blocks, info)
  self.hooked = self.calls
  local policy, B, n = self.policy, x:size(1), info.blocks
  self.blocks = n
  local split = policy.signal == "first_block" and 2 or 1
  local signal
  if policy.signal == "modulated" then
    if not info.modulated then error("cache: this family gives no modulated input (signal \"modulated\")", 0) end
    signal = info.modulated()
  end
  local y = x
  if split == 2 then -- the first block always runs; its residual is the signal
    y = run_blocks(x, 1, 1)
    signal = y - x
    self.blocks_run = self.blocks_run + B
  elseif policy.signal == "input" then
    signal = x
  end
  self.blocks_full = self.blocks_full + B * n
  local ts = info.t and info.t:totable() or {}
  local compute, any, all, states = {}, false, true, {}
  for i = 1, B do
    local name = BRANCHES[i] or ("branch" .. i)
    local br = self.branches[name]
    if not br then
      br = {state = {}, evaluations = 0}
      self.branches[name] = br
    end
    br.evaluations = br.evaluations + 1
    local s = {
      step = self.step, steps = self.run.steps, sigma = self.sigma, timestep = ts[i] or ts[1],
      evaluation = br.evaluations, branch = name, signal = signal and signal_rows(signal, i),
      state = br.state, cached = br.residual ~= nil, blocks = n, input = branch_rows(y, i),
    }
    local want = policy:decide(s)
    compute[i] = want ~= false or not br.residual
    if not compute[i] then
      self.skipped[name] = self.skipped[name] or {}
      table.insert(self.skipped[name], br.evaluations)
    end
    any, all = any or compute[i], all and compute[i]
    states[i] = {br = br, s = s}
  end
  local out
  if all then
    out = run_blocks(y, split, n)
  elseif not any then
    local parts = {}
    for i = 1, B do parts[i] = branch_rows(y, i) + states[i].br.residual end
    out = B == 1 and parts[1] or T.cat(parts, 1)
  else -- some branches compute (as a smaller batch), the others reuse
    local rows = {}
    for i = 1, B do
      if compute[i] then rows[#rows + 1] = i end
    end
    local ys = {}
    for k, i in ipairs(rows) do ys[k] = branch_rows(y, i) end
    local ran = run_blocks(#ys == 1 and ys[1] or T.cat(ys, 1), split, n, rows)
    local parts, k = {}, 0
    for i = 1, B do
      if compute[i] then
        k = k + 1
        parts[i] = branch_rows(ran, k)
      else
        parts[i] = branch_rows(y, i) + states[i].br.residual
      end
    end
    out = T.cat(parts, 1)
  end
  local ran_blocks = n - split + 1
  for i = 1, B do
    if compute[i] then
      self.blocks_run = self.blocks_run + ran_blocks
      local br, s = states[i].br, states[i].s
      s.output = branch_rows(out, i)
      br.residual = s.output - s.input
      s.residual = br.residual
      if policy.computed then policy:computed(s) end
    end
  end
  return out
end

-- What the record keeps: the policy, its settings, what it skipped (evaluation numbers per
-- branch) and where the reused part starts (block 2 for first-block caches), so that
-- zoe.cache.pattern replays the run exactly; and the evaluations it saved.
function Runner:record()
  local skipped = {}
  for name, list in pairs(self.skipped) do skipped[name] = list end
  return {
    policy = self.policy.name or "custom",
    settings = plain(self.policy.settings or {}, 0),
    skipped = skipped,
    reuse_from = self.policy.signal == "first_block" and 2 or 1,
  }
end

-- DiT evaluations: blocks run over blocks in a model call, summed over branches; and what an
-- uncached run would have made.
function Runner:stats()
  local n = self.blocks or 1
  local full = self.blocks_full / math.max(1, n)
  local done = self.blocks_run / math.max(1, n)
  local skipped = 0
  for _, list in pairs(self.skipped) do skipped = skipped + #list end
  return {evaluations = done, uncached = full, skipped = skipped}
end

return M
