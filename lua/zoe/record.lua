-- What a run records so that zoe.replay makes the same bytes: the values that actually ran,
-- not only what was asked. A cfg given as a function, or changed by on_step, is recorded as
-- the scale of every model evaluation in order; sampler settings on_step changed (eta,
-- s_noise, cfg_rescale) as their value at every step; a schedule given as a function as the
-- sigmas and timesteps it walked. The model goes in by name when it was found by name (and
-- always with its weights' hash), so a replay works on another machine.
local zoe = require "zoe"

local M = {}

-- settings a recipe's on_step may change between steps, that the sampler reads live
local LIVE = {"cfg_rescale", "eta", "s_noise"}

-- How the recipe names the model: what the user gave when it was a name or a folder; for a
-- model object, the files it was loaded from ({dit =, ...}), or its name when looking the name
-- up finds this very folder, else its folder.
function M.model_ref(spec_model, model)
  if type(spec_model) == "string" then return spec_model end
  if model.source then return model.source end -- single files: {dit =, t5 =, vae =, tokenizer =}
  local found = model.name and zoe.models.find(model.name)
  return found == model.dir and model.name or model.dir
end

-- Watches a run's sampling settings ('sample', given to zoe.sample). Call t.after_step(state)
-- after the recipe's on_step, and t.finish(s, run) with zoe.sample's run once it is done.
function M.tracker(sample)
  local t = {cfg = {}, live = {}, changed = false, cfg_changed = false}
  local cfg0 = sample.cfg
  sample.on_cfg = function(w) t.cfg[#t.cfg + 1] = w end
  for _, k in ipairs(LIVE) do t.live[k] = {sample[k] == nil and zoe.json.null or sample[k]} end
  function t.after_step(state)
    if state.settings.cfg ~= cfg0 then t.cfg_changed = true end
    for _, k in ipairs(LIVE) do
      local v = state.settings[k]
      if v == nil then v = zoe.json.null end
      local list = t.live[k]
      if v ~= list[#list] then t.changed = true end
      list[state.step + 1] = v
    end
  end
  -- what ran, into the settings the recipe is made of
  function t.finish(s, run)
    -- a number (dynamic_cfg's schedule of it included) that on_step left alone makes the same
    -- scales again; a function, or a scale on_step changed, is kept as what it gave
    if type(s.cfg) == "function" or t.cfg_changed then
      s.cfg = t.cfg -- the scale of each model evaluation, in order
      s.dynamic_cfg = nil
    end
    if t.changed then
      s.per_step = {}
      for _, k in ipairs(LIVE) do
        local list, varies = t.live[k], false
        for i = 2, #list do varies = varies or list[i] ~= list[1] end
        if varies then s.per_step[k] = list end
      end
    end
    if type(s.schedule) == "function" then s.schedule = {sigmas = run.sigmas, timesteps = run.timesteps} end
    s.sigmas = run.sigmas -- the noise levels walked, whatever made them
  end
  return t
end

-- The model a recipe names: its name or folder, else (another machine) its name; the weights
-- must hash to the recorded hash.
function M.model_of(r)
  local tried = {}
  for _, ref in ipairs {r.model, r.model_name} do
    if ref and not tried[ref] then
      tried[ref] = true
      local ok, m = pcall(zoe.models.load, ref)
      if ok and (not r.weights_hash or m:hash() == r.weights_hash) then return m end
      tried[#tried + 1] = ok and ("'%s' has weights %s"):format(ref, m:hash()) or tostring(m)
    end
  end
  error(("replay: no model with the weights the video was made with (%s): %s"):format(tostring(r.weights_hash),
    table.concat(tried, "; ")), 0)
end

-- The settings that make the recipe's run again (the recorded values in place of what made them).
function M.spec_of(r, keys)
  local spec = {}
  for _, k in ipairs(keys) do
    if r[k] ~= nil then spec[k] = r[k] end
  end
  if type(r.cfg) == "table" then -- a scale per model evaluation, given back in order
    local list, n = r.cfg, 0
    spec.cfg = function()
      n = n + 1
      return list[math.min(n, #list)]
    end
  end
  if type(r.schedule) == "table" and r.schedule.sigmas then
    local sigmas, ts = r.schedule.sigmas, r.schedule.timesteps
    spec.schedule = function() return {table.unpack(sigmas)}, ts and {table.unpack(ts)} end
  end
  if r.per_step then
    spec.on_step = function(state)
      for k, list in pairs(r.per_step) do
        local v = list[state.step + 1]
        if v ~= nil then
          if v == zoe.json.null then v = nil end
          state.settings[k] = v
        end
      end
    end
  end
  return spec
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Whether two files hold the same bytes; if not, where they first differ (1-based) and sizes.
function M.compare(a, b)
  local x, y = read(a), read(b)
  if not x or not y then return false, ("cannot read %s"):format(x and b or a) end
  if x == y then return true end
  local i = 1
  while i <= #x and i <= #y and x:byte(i) == y:byte(i) do i = i + 1 end
  return false, ("first difference at byte %d (%d and %d bytes)"):format(i, #x, #y)
end

return M
