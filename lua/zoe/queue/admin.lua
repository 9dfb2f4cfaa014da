-- The farm as a whole: `zoe queue status redis://...` and `zoe queue cancel redis://... RUN`.
--
--   admin.status(url) -> {workers = {{name, machine, pid, run, job, stage, step, steps,
--     seen_s, done}}, runs = {{run, title, out, jobs, done, failed, running, queued,
--     canceled}}, waiting = jobs not yet taken, pending = jobs taken and not acknowledged}
--   admin.cancel(url, run) -> cancels the run (every run with "all")
--   admin.format(status) -> the text `zoe queue status` prints
local zoe = require "zoe"
local redis = require "zoe.queue.redis"
local jobfmt = require "zoe.queue.job"
local now_ms = jobfmt.now_ms
local submit = require "zoe.queue.submit"

local M = {}

local function decode(text)
  local ok, v = pcall(zoe.json.decode, text or "")
  return ok and type(v) == "table" and v or {}
end

function M.status(url)
  local r = redis.open(url)
  local K = jobfmt.keys(r.name)
  local out = {workers = {}, runs = {}, waiting = 0, pending = 0}
  local now = now_ms()
  for name, text in pairs(redis.hash(r:call("HGETALL", K.workers))) do
    local w = decode(text)
    w.name = name
    w.seen_s = w.seen and (now - w.seen) / 1000 or nil
    out.workers[#out.workers + 1] = w
  end
  table.sort(out.workers, function(a, b) return a.name < b.name end)
  local canceled = {}
  for _, run in ipairs(r:call("SMEMBERS", K.canceled)) do canceled[run] = true end
  for run, text in pairs(redis.hash(r:call("HGETALL", K.runs))) do
    local info = decode(text)
    local s = {run = run, title = info.title, out = info.out, jobs = info.jobs or 0, submitted = info.submitted,
      done = 0, failed = 0, running = 0, queued = 0, canceled = canceled[run] or false, errors = {}}
    for id, state in pairs(redis.hash(r:call("HGETALL", K.run(run)))) do
      local word = state:match("^(%a+)")
      if word == "done" then s.done = s.done + 1
      elseif word == "failed" then
        s.failed = s.failed + 1
        s.errors[#s.errors + 1] = ("%s: %s"):format(id, state:gsub("^failed: ", ""))
      elseif word == "running" then s.running = s.running + 1
      elseif word == "queued" then s.queued = s.queued + 1 end
    end
    table.sort(s.errors)
    out.runs[#out.runs + 1] = s
  end
  table.sort(out.runs, function(a, b) return (a.submitted or 0) < (b.submitted or 0) end)
  local ok, groups = pcall(r.call, r, "XINFO", "GROUPS", K.jobs)
  for _, g in ipairs(ok and groups or {}) do
    local h = redis.hash(g)
    if h.name == jobfmt.GROUP then
      out.pending = h.pending or 0
      out.waiting = h.lag or 0 -- entries not yet delivered to the group (Redis 7)
    end
  end
  r:close()
  return out
end

function M.cancel(url, run)
  local r = redis.open(url)
  local K = jobfmt.keys(r.name)
  local runs = {}
  if run == "all" then
    for id in pairs(redis.hash(r:call("HGETALL", K.runs))) do runs[#runs + 1] = id end
  else
    if r:call("HEXISTS", K.runs, run) ~= 1 then
      r:close()
      error(("queue %s has no run %s (zoe queue status lists them)"):format(r.name, run), 0)
    end
    runs[1] = run
  end
  for _, id in ipairs(runs) do submit.cancel(r, K, id) end
  r:close()
  return runs
end

function M.format(s, url)
  local lines = {("queue %s: %d waiting, %d taken and not finished"):format(url, s.waiting, s.pending)}
  lines[#lines + 1] = ("workers (%d):"):format(#s.workers)
  for _, w in ipairs(s.workers) do
    local doing = w.job and ("run %s job %s %s%s"):format(w.run, w.job, w.stage or "",
      w.step and ((" %d/%d"):format(w.step, w.steps or 0)) or "") or "idle"
    lines[#lines + 1] = ("  %-24s %s (seen %.1f s ago, %d done)"):format(w.name, doing, w.seen_s or -1, w.done or 0)
  end
  lines[#lines + 1] = ("runs (%d):"):format(#s.runs)
  for _, run in ipairs(s.runs) do
    lines[#lines + 1] = ("  %s %s: %d/%d done, %d running, %d queued, %d failed%s -> %s"):format(run.run,
      run.title and ("'" .. run.title .. "'") or "", run.done, run.jobs, run.running, run.queued, run.failed,
      run.canceled and ", canceled" or "", tostring(run.out))
    for _, e in ipairs(run.errors) do lines[#lines + 1] = "    failed " .. e end
  end
  return table.concat(lines, "\n")
end

return M
