-- The render farm (docs/DISTRIBUTED.md) on this machine, with a redis-server of its own
-- (append-only, synced on every write, as the docs advise), zoe-tiny jobs at 32x32:
--   1. overhead per job: from XADD to the worker's first denoising step, against the same
--      job's time from its start to its first step in this process (both warm), medians of 8;
--   2. throughput: 12 jobs through 1, 2 and 3 worker processes (from the first XADD to the
--      last "done" event), against the same 12 rendered one after another in one process;
--   3. cancel: from `zoe queue cancel` (the cancel event) to the worker's "canceled" event,
--      a render in the middle of its steps, median of 3.
-- Ratios within this run only; other work on the machine moves them.
local zoe = require "zoe"
local redis = require "zoe.queue.redis"
local jobfmt = require "zoe.queue.job"
local files = require "zoe.storyboard.files"
local server = require "redis_server"
local uv = zoe.uv

local function interpreter() -- arg[-1] may be an option (zoe -q script.lua): the lowest index is the program
  local k = -1
  while arg[k - 1] do k = k - 1 end
  return arg[k]
end
local ZOE = os.getenv("ZOE") or interpreter()
local srv, why = server.start{appendonly = true}
if not srv then
  print("skipped: " .. why)
  return
end
local root = os.tmpname()
os.remove(root)
files.mkdir_p(root)
local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function now_ms()
  local s, us = uv.gettimeofday()
  return s * 1000 + us / 1000
end
local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

local model = zoe.models.load("zoe-tiny")
local weights = model:hash()
local function settings(seed, steps)
  return {model = "zoe-tiny", prompt = "a red circle moving left on a white background", width = 32, height = 32,
    frames = 5, fps = 8, steps = steps, sampler = "euler", cfg = 4, seed = seed}
end
local function job_of(run, id, out, s)
  return {v = 1, run = run, id = id, kind = "sweep", out = out, key = zoe.hash(zoe.json.encode(s)),
    fields = {settings = s, weights = weights}, mode = "text2video", settings = s}
end

local function start_workers(url, n)
  local ws = {}
  for k = 1, n do
    local cmd = ("exec %s -q worker --queue %s > /dev/null 2>&1"):format(q(ZOE), url)
    local w = {ended = {}}
    w.handle = uv.spawn("/bin/sh", {args = {"-c", cmd}}, function(code) w.ended.code = code end)
    ws[k] = w
  end
  return ws
end
local function stop_workers(ws)
  for _, w in ipairs(ws) do w.handle:kill("sigterm") end
  for _, w in ipairs(ws) do
    for _ = 1, 500 do
      if w.ended.code then break end
      zoe.sleep(10)
    end
    w.handle:close()
  end
end

-- Adds the jobs; returns the XADD times and a table id -> {claimed, first_step, done} (ms).
local function run_jobs(r, name, jobs, sequential)
  local K = jobfmt.keys(name)
  local since = r:call("XADD", K.events, "*", "type", "mark")
  local added, seen = {}, {}
  local function drain(last, want_done)
    while true do
      local got = r:call("XREAD", "COUNT", "500", "BLOCK", "1000", "STREAMS", K.events, last)
      for _, e in ipairs(got and redis.entries(got[1][2]) or {}) do
        last = e.id
        local f, id = e.fields, e.fields.job
        if id then
          seen[id] = seen[id] or {}
          local t = tonumber(f.t) or now_ms()
          if f.type == "claimed" then seen[id].claimed = t
          elseif f.type == "progress" and f.step == "1" then seen[id].first = t
          elseif f.type == "done" then seen[id].done = t
          elseif f.type == "failed" then error("job " .. id .. " failed: " .. tostring(f.error)) end
        end
      end
      local n = 0
      for _, s in pairs(seen) do if s.done then n = n + 1 end end
      if n >= want_done then return last end
    end
  end
  local last = since
  for k, job in ipairs(jobs) do
    added[job.id] = now_ms()
    r:call("XADD", K.jobs, "*", "run", job.run, "job", jobfmt.encode(job))
    if sequential then last = drain(last, k) end
  end
  if not sequential then drain(last, #jobs) end
  return added, seen
end

-- 1. overhead per job
do
  local name = "overhead"
  local url = srv:url(name)
  local r = redis.open(url)
  r:call("XGROUP", "CREATE", jobfmt.keys(name).jobs, jobfmt.GROUP, "0", "MKSTREAM")
  local ws = start_workers(url, 1)
  local out = root .. "/overhead"
  files.mkdir_p(out)
  run_jobs(r, name, {job_of("warm", "000", out, settings(1000, 4))}, true) -- the worker loads the model
  local jobs = {}
  for k = 1, 8 do jobs[k] = job_of("o", ("%03d"):format(k), out, settings(k, 4)) end
  local added, seen = run_jobs(r, name, jobs, true)
  stop_workers(ws)
  local to_claim, to_first = {}, {}
  for id, t0 in pairs(added) do
    to_claim[#to_claim + 1] = seen[id].claimed - t0
    to_first[#to_first + 1] = seen[id].first - t0
  end
  -- the same jobs here: start to first step (the model warm)
  zoe.pipeline.text2video(settings(2000, 4))
  local local_first = {}
  for k = 1, 8 do
    local s = settings(100 + k, 4)
    s.out = root .. "/local.mp4"
    local t0 = now_ms()
    s.on_step = function(st) if st.step == 1 and not local_first[k] then local_first[k] = now_ms() - t0 end end
    zoe.pipeline.text2video(s)
  end
  local farm_first, here_first = median(to_first), median(local_first)
  print(("overhead per job (median of 8): XADD -> a worker holds it %.1f ms; XADD -> its first step %.1f ms, "
    .. "against start -> first step in one process %.1f ms (difference %.1f ms)"):format(median(to_claim), farm_first,
    here_first, farm_first - here_first))
  r:close()
end

-- 2. throughput of 1, 2, 3 workers
do
  local N, STEPS = 12, 16
  local t0 = now_ms()
  for k = 1, N do
    local s = settings(500 + k, STEPS)
    s.out = root .. "/seq.mp4"
    zoe.pipeline.text2video(s)
  end
  local one = (now_ms() - t0) / 1000
  print(("throughput, %d jobs of %d steps at 32x32: one process, one after another: %.2f s (%.2f jobs/s)"):format(
    N, STEPS, one, N / one))
  local base
  for n = 1, 3 do
    local name = "tp" .. n
    local url = srv:url(name)
    local r = redis.open(url)
    r:call("XGROUP", "CREATE", jobfmt.keys(name).jobs, jobfmt.GROUP, "0", "MKSTREAM")
    local ws = start_workers(url, n)
    local out = root .. "/" .. name
    files.mkdir_p(out)
    -- warm: each worker loads the model on a job of its own before the clock starts
    local warm = {}
    for k = 1, n * 2 do warm[k] = job_of("w" .. n, ("w%02d"):format(k), out, settings(3000 + k, 1)) end
    run_jobs(r, name, warm, false)
    local jobs = {}
    for k = 1, N do jobs[k] = job_of(name, ("%03d"):format(k), out, settings(500 + k, STEPS)) end
    local added, seen = run_jobs(r, name, jobs, false)
    local first, last = math.huge, 0
    for id, t in pairs(added) do
      first = math.min(first, t)
      last = math.max(last, seen[id].done)
    end
    local secs = (last - first) / 1000
    base = base or secs
    print(("  %d worker%s: %.2f s, %.2f jobs/s, %.2fx one worker, %.2fx one process"):format(n, n > 1 and "s" or " ",
      secs, N / secs, base / secs, one / secs))
    stop_workers(ws)
    r:close()
  end
end

-- 3. cancel latency
do
  local submit = require "zoe.queue.submit"
  local name = "cancel"
  local url = srv:url(name)
  local K = jobfmt.keys(name)
  local r = redis.open(url)
  r:call("XGROUP", "CREATE", K.jobs, jobfmt.GROUP, "0", "MKSTREAM")
  local ws = start_workers(url, 1)
  local out = root .. "/cancel"
  files.mkdir_p(out)
  local lat = {}
  for k = 1, 3 do
    local run = "c" .. k
    local since = r:call("XADD", K.events, "*", "type", "mark")
    r:call("XADD", K.jobs, "*", "run", run, "job", jobfmt.encode(job_of(run, "001", out, settings(7000 + k, 1000))))
    local t0, last = nil, since
    while true do
      local got = r:call("XREAD", "COUNT", "100", "BLOCK", "1000", "STREAMS", K.events, last)
      for _, e in ipairs(got and redis.entries(got[1][2]) or {}) do
        last = e.id
        local f = e.fields
        if f.run == run and f.type == "progress" and not t0 and tonumber(f.step) >= 3 then
          t0 = now_ms()
          submit.cancel(r, K, run)
        elseif f.run == run and f.type == "canceled" then
          lat[#lat + 1] = now_ms() - t0
        elseif f.run == run and (f.type == "failed" or f.type == "done") then
          error("the job to cancel ended by itself: " .. tostring(f.error or f.type))
        end
      end
      if #lat == k then break end
    end
  end
  stop_workers(ws)
  r:close()
  print(("cancel: zoe queue cancel -> the worker's render stopped and acknowledged, median of 3: %.1f ms"):format(
    median(lat)))
end

srv:stop()
os.execute("rm -rf " .. q(root))
