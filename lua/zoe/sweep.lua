-- zoe.sweep{...}: render every combination of the settings given as lists, and one
-- labelled contact sheet of them all.
--
--   local results = zoe.sweep{model = "zoe-tiny", prompt = "a red circle moving left",
--     cfg = {3, 5, 7}, steps = {10, 20}, seed = 1, out = "out/sweep"}
--
-- Settings given as a list vary (a list-valued prompt would be prompt travel, so to
-- sweep prompts give them as prompts = {...}); the rest are shared. Each combination
-- goes to out/NNN.mp4 (when out is given) and the sheet to out/sheet.png, one row per
-- combination captioned with what varied. Returns a list of {settings, frames, record}.
--
-- With queue = "redis://HOST:PORT/NAME" each combination is a job for the farm's workers
-- (docs/DISTRIBUTED.md): out is then a folder every worker sees, settings must be data, and
-- the frames returned are read back from the files (queue/sweep.lua).
local zoe = require "zoe"

local function is_list(v) return type(v) == "table" and #v > 0 and not v.text end

return function(spec)
  local axes, base = {}, {}
  for k, v in pairs(spec) do
    if k == "prompts" then
      axes[#axes + 1] = {key = "prompt", values = v}
    elseif k ~= "out" and k ~= "every" and k ~= "scale" and k ~= "queue" and is_list(v) and k ~= "prompt" then
      axes[#axes + 1] = {key = k, values = v}
    elseif k ~= "out" and k ~= "every" and k ~= "scale" and k ~= "queue" then
      base[k] = v
    end
  end
  table.sort(axes, function(a, b) return a.key < b.key end)
  if #axes == 0 then error("zoe.sweep: give at least one setting as a list, e.g. cfg = {3, 5, 7}", 2) end
  -- every combination (the last axis fastest), with a label saying what varied
  local combos = {}
  local index = {}
  for i = 1, #axes do index[i] = 1 end
  while true do
    local s, parts = {}, {}
    for k, v in pairs(base) do s[k] = v end
    for i, axis in ipairs(axes) do
      local v = axis.values[index[i]]
      s[axis.key] = v
      parts[#parts + 1] = ("%s=%s"):format(axis.key, tostring(v))
    end
    combos[#combos + 1] = {settings = s, label = table.concat(parts, " ")}
    local i = #axes
    while i >= 1 do
      index[i] = index[i] + 1
      if index[i] <= #axes[i].values then break end
      index[i] = 1
      i = i - 1
    end
    if i == 0 then break end
  end
  if spec.queue then return require("zoe.queue.sweep").run(combos, spec) end
  local out = spec.out
  if out then assert(os.execute(("mkdir -p '%s'"):format(out))) end
  local results, labels, videos = {}, {}, {}
  for n, c in ipairs(combos) do
    local s = c.settings
    if out then s.out = ("%s/%03d.mp4"):format(out, n) end
    local frames, record = zoe.pipeline.text2video(s)
    results[n] = {settings = s, frames = frames, record = record, label = c.label}
    labels[n], videos[n] = c.label, frames
  end
  if out then
    zoe.video.contact_sheet(videos, out .. "/sheet.png", {labels = labels, every = spec.every or 2, scale = spec.scale})
  end
  return results
end
