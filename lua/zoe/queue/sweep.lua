-- zoe.sweep{..., out = DIR, queue = "redis://HOST:PORT/NAME"}: one job per setting on the
-- farm (queue/job.lua, kind "sweep"), rendered into DIR/cache by key; each result is
-- linked to DIR/NNN.mp4 as it comes, and the labelled sheet is made here at the end.
--
--   sweep.run(combos, spec) -> results as zoe.sweep returns them, the frames read back
--   from the files (combos: {{settings =, label =}, ...} in the sweep's order)
--   sweep.videos(combos, {queue =, out =, model =, title =, on_event = fn(id, fields)})
--     -> {{file =, record =}, ...}: the same jobs without the sheet, for any front end
--     (zoe.queue.render, zoe serve --queue)
local zoe = require "zoe"
local redis = require "zoe.queue.redis"
local jobfmt = require "zoe.queue.job"
local now_ms = jobfmt.now_ms
local submit = require "zoe.queue.submit"
local files = require "zoe.storyboard.files"
local cache_mod = require "zoe.storyboard.cache"

local M = {}

function M.videos(combos, spec)
  if type(spec.out) ~= "string" then
    error("with queue, give out = a folder every worker sees (the results go there)", 0)
  end
  if type(spec.model) ~= "string" then
    error("with queue, give the model by name or folder (workers load it themselves)", 0)
  end
  local out = jobfmt.absolute(spec.out:gsub("/+$", ""))
  files.mkdir_p(out)
  local cache = cache_mod.open(out)
  local model = zoe.models.load(spec.model)
  local weights = model:hash()
  local r = redis.open(spec.queue, {log = function(text) io.stderr:write(text, "\n") end})
  local K = jobfmt.keys(r.name)
  submit.ensure_group(r, K)
  local run = jobfmt.new_run_id()
  local since = r:call("XADD", K.events, "MAXLEN", "~", "100000", "*", "type", "submitted", "run", run)
  r:call("HSET", K.runs, run, zoe.json.encode {title = spec.title or "sweep", out = out, jobs = #combos,
    submitted = now_ms()})
  local finished = false
  local cancel_on_exit <close> = setmetatable({}, {__close = function()
    if not finished then zoe.spawn(function() pcall(submit.cancel, r, K, run) r:close() end) else r:close() end
  end})

  local entries, keys, done = {}, {}, 0
  local function completed(n, entry)
    if entries[n] then return end
    entries[n] = entry
    files.link_or_copy(entry.file, ("%s/%03d.mp4"):format(out, n))
    done = done + 1
    if zoe.progress then zoe.progress {stage = "sweep", step = done, steps = #combos} end
  end
  for n, c in ipairs(combos) do
    local fields = {v = 1, kind = "sweep", zoe = zoe.version, weights = weights, settings = c.settings}
    local key = zoe.hash(zoe.json.encode(fields))
    keys[n] = key
    local entry = cache:lookup(key)
    if entry then
      completed(n, entry)
    else
      local job = {v = jobfmt.VERSION, run = run, id = ("%03d"):format(n), kind = "sweep", out = out, key = key,
        fields = fields, mode = "text2video", settings = c.settings, entry = {index = n, label = c.label}}
      r:call("XADD", K.jobs, "*", "run", run, "job", jobfmt.encode(job))
      r:call("HSET", K.run(run), job.id, "queued")
    end
  end
  local function look(n)
    local entry = cache:lookup(keys[n])
    if entry then completed(n, entry) end
  end
  local function seen(id, f) if spec.on_event then spec.on_event(id, f) end end
  submit.follow(r, K, run, since, function() return done == #combos end, {
    claimed = seen,
    progress = seen,
    done = function(id, f) seen(id, f) local n = tonumber(id) if n and keys[n] then look(n) end end,
    failed = function(id, f)
      error(("setting %s: %s (worker %s)"):format(id, tostring(f.error), tostring(f.worker)), 0)
    end,
    canceled = function() error(("run %s was canceled"):format(run), 0) end,
    cancel = function() error(("run %s was canceled"):format(run), 0) end,
    poll = function() for n = 1, #combos do if not entries[n] then look(n) end end end,
  })
  finished = true
  local out_list = {}
  for n = 1, #combos do out_list[n] = {file = ("%s/%03d.mp4"):format(out, n), record = entries[n].record} end
  return out_list, run
end

function M.run(combos, spec)
  local ok, got = pcall(M.videos, combos, spec)
  if not ok then error("zoe.sweep: " .. tostring(got), 0) end
  local results, labels, videos = {}, {}, {}
  for n, c in ipairs(combos) do
    local file = got[n].file
    results[n] = {settings = c.settings, frames = zoe.video.read(file), record = got[n].record, label = c.label,
      file = file}
    labels[n], videos[n] = c.label, zoe.video.read(file, {dtype = "u8"})
  end
  local out = jobfmt.absolute(spec.out:gsub("/+$", ""))
  zoe.video.contact_sheet(videos, out .. "/sheet.png", {labels = labels, every = spec.every or 2, scale = spec.scale})
  return results
end

return M
