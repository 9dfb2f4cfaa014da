-- `zoe worker --queue redis://HOST:PORT/NAME`: takes jobs (queue/job.lua) through the
-- consumer group "workers" of zoe:NAME:jobs, renders each into its shared folder with
-- the storyboard cache's atomic, keyed writes, and acknowledges it when it is there.
--
-- Nothing is lost: a job is acknowledged (XACK) only after its result is committed, so
-- the job of a worker that dies stays pending; every worker claims jobs idle longer than
-- idle_ms (XAUTOCLAIM) and renders them again. A worker keeps its own job from looking
-- idle by claiming it again every idle_ms / 3 (XCLAIM ... JUSTID). A result rendered twice
-- is the same bytes under the same key, so a duplicate is harmless. A job that fails by
-- itself (a bad recipe) is acknowledged as failed with its message; one whose workers
-- died max_deliveries times is failed too, never retried forever.
local zoe = require "zoe"
local redis = require "zoe.queue.redis"
local jobfmt = require "zoe.queue.job"
local now_ms = jobfmt.now_ms
local cache_mod = require "zoe.storyboard.cache"

local M = {}

local function last_frame(path)
  local v = zoe.video.read(path)
  return v:select(2, v:size(2)):contiguous()
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- Renders one job into job.out/cache (unless it is there); returns the entry and whether
-- it was rendered here. Runs as a job of its own, so a cancel stops it at the next op.
local weights = {} -- model -> weights hash, once per worker
function M.render(job, on_step)
  local s = job.settings
  local model = zoe.models.load(s.model)
  weights[s.model] = weights[s.model] or model:hash()
  if job.fields.weights and job.fields.weights ~= weights[s.model] then
    error(("this worker's model %s has weights %s, the job was made for %s"):format(s.model, weights[s.model],
      tostring(job.fields.weights)), 0)
  end
  local cache = cache_mod.open(job.out)
  local entry = cache:lookup(job.key)
  if entry then return entry, false end
  local spec = copy(s)
  local run = zoe.pipeline.text2video
  if job.mode == "image2video" then
    local parent = cache:lookup(job.after.key)
    if not parent then
      error(("the video it continues (%s/cache/%s.mp4) is not there"):format(job.out, job.after.key), 0)
    end
    spec.image, run = last_frame(parent.file), zoe.pipeline.image2video
  end
  local staging = cache:staging(job.key)
  spec.out = staging
  if job.preview then spec.preview = job.out .. "/" .. job.preview end
  spec.on_step = on_step
  local ok, err = pcall(function()
    local _, record = run(spec)
    record.output = nil -- the staging name
    local e = copy(job.entry or {})
    e.frames, e.fields, e.record = record.frames, job.fields, record
    entry = cache:commit(job.key, staging, e)
  end)
  if not ok then
    collectgarbage() -- an unfinished writer drops its temporary file ...
    zoe.uv.fs_unlink(staging)
    error(err, 0)
  end
  return entry, true
end

-- opts: queue (url), idle_ms (30000), block_ms (1000), max_deliveries (3), max_jobs (stop
-- after that many), idle_exit_ms (stop when no job came for that long), log = fn(text).
function M.run(opts)
  local log = opts.log or function(text) io.stderr:write(text, "\n") end
  -- a blocking read holds its connection until it answers: the loop's XREADGROUP, the
  -- cancel watch's XREAD and everything else (heartbeats, events) each have their own
  local machine, pid = zoe.uv.os_gethostname(), math.tointeger(zoe.uv.os_getpid())
  local me = ("%s:%d"):format(machine, pid)
  local cname = ("zoe-worker-%s-%d"):format(machine:gsub("[^%w_.-]", "_"), pid)
  local r = redis.open(opts.queue, {log = log, client_name = cname})
  local rw = redis.open(opts.queue, {log = log, client_name = cname})
  local rb = redis.open(opts.queue, {log = log, client_name = cname})
  local K = jobfmt.keys(r.name)
  local idle_ms, block_ms = opts.idle_ms or 30000, opts.block_ms or 1000
  local max_deliveries = opts.max_deliveries or 3
  local ok, err = pcall(r.call, r, "XGROUP", "CREATE", K.jobs, jobfmt.GROUP, "0", "MKSTREAM")
  if not ok and not tostring(err):find("BUSYGROUP", 1, true) then error(err, 0) end

  local cur -- the job in hand: {id, job, task, stage, step, steps}
  local stopping = false
  local done_count = 0
  local function status()
    local s = {machine = machine, pid = pid, seen = now_ms(), done = done_count}
    if cur then
      s.run, s.job, s.stage, s.step, s.steps = cur.job.run, cur.job.id, cur.stage, cur.step, cur.steps
    end
    return zoe.json.encode(s)
  end
  local function event(fields)
    local args = {"XADD", K.events, "MAXLEN", "~", "100000", "*", "worker", me}
    for k, v in pairs(fields) do
      args[#args + 1] = k
      args[#args + 1] = tostring(v)
    end
    return args
  end

  -- every idle_ms / 3: our job is not idle, and the farm sees what we do
  local beat = zoe.spawn(function()
    while not stopping do
      if cur then pcall(rb.call, rb, "XCLAIM", K.jobs, jobfmt.GROUP, me, "0", cur.id, "JUSTID") end
      pcall(rb.call, rb, "HSET", K.workers, me, status())
      zoe.sleep(math.max(50, idle_ms // 3))
    end
  end)
  -- cancels: a "cancel" event of the run in hand stops its render at the next op
  local watch = zoe.spawn(function()
    local last = "$"
    while not stopping do
      local okr, got = pcall(rw.call, rw, "XREAD", "COUNT", "100", "BLOCK", tostring(block_ms), "STREAMS", K.events, last)
      if okr and got then
        for _, e in ipairs(redis.entries(got[1][2])) do
          last = e.id
          if e.fields.type == "cancel" and cur and cur.job.run == e.fields.run and cur.task then
            cur.canceled = true
            cur.task:cancel()
          end
        end
      elseif not okr then
        zoe.sleep(100)
      end
    end
  end)

  local function finish(id, job, state, fields)
    if job then
      r:call("HSET", K.run(job.run), job.id, state)
      fields.run, fields.job = job.run, job.id
      r:call(table.unpack(event(fields)))
    end
    r:call("XACK", K.jobs, jobfmt.GROUP, id)
  end

  local function process(id, text, deliveries)
    local okj, job = pcall(jobfmt.decode, text or "")
    if not okj then
      log(("zoe worker: job %s refused: %s"):format(id, job))
      return finish(id, nil, nil, {})
    end
    if deliveries and deliveries > max_deliveries then
      local why = ("its workers died %d times rendering it"):format(deliveries - 1)
      log(("zoe worker: job %s of run %s failed: %s"):format(job.id, job.run, why))
      return finish(id, job, "failed: " .. why, {type = "failed", error = why})
    end
    if r:call("SISMEMBER", K.canceled, job.run) == 1 then
      return finish(id, job, "canceled", {type = "canceled"})
    end
    cur = {id = id, job = job, stage = "start"}
    r:call("HSET", K.run(job.run), job.id, "running " .. me)
    r:call(table.unpack(event {type = "claimed", run = job.run, job = job.id, t = now_ms()}))
    r:call("HSET", K.workers, me, status())
    local first = true
    cur.task = zoe.spawn(function()
      zoe.current():name("job " .. job.id)
      return M.render(job, function(st)
        cur.stage, cur.step, cur.steps = "denoise", st.step, st.steps
        local e = event {type = "progress", run = job.run, job = job.id, stage = "denoise", step = st.step,
          steps = st.steps, t = now_ms()}
        rb:send(table.unpack(e))
        if first then first = false rb:send("HSET", K.workers, me, status()) end
      end)
    end)
    cur.task:on("progress", function(p)
      if p.stage and p.stage ~= "denoise" then cur.stage = p.stage end
    end)
    local okr, entry, rendered = pcall(cur.task.wait, cur.task)
    local canceled = cur.canceled
    cur = nil
    if okr then
      done_count = done_count + 1
      finish(id, job, "done", {type = "done", key = job.key, output_hash = entry.output_hash,
        rendered = rendered and "1" or "0", t = now_ms()})
    elseif canceled then
      finish(id, job, "canceled", {type = "canceled"})
    else
      local why = tostring(entry)
      log(("zoe worker: job %s of run %s failed: %s"):format(job.id, job.run, why))
      finish(id, job, "failed: " .. why, {type = "failed", error = why})
    end
  end

  local function first_entry(reply)
    if not reply or not reply[1] then return nil end
    return redis.entries(reply[1][2])[1]
  end

  log(("zoe worker %s: waiting for jobs on %s"):format(me, opts.queue))
  local quiet_since = now_ms()
  local result, failure = pcall(function()
    while true do
      -- one of ours whose delivery we never saw (the reply was lost with a connection)
      local e = first_entry(r:call("XREADGROUP", "GROUP", jobfmt.GROUP, me, "COUNT", "1", "STREAMS", K.jobs, "0"))
      local deliveries
      if not e then
        e = first_entry(r:call("XREADGROUP", "GROUP", jobfmt.GROUP, me, "COUNT", "1", "BLOCK",
          tostring(block_ms), "STREAMS", K.jobs, ">"))
      end
      if not e then -- nothing new: one that a dead worker left
        local claim = r:call("XAUTOCLAIM", K.jobs, jobfmt.GROUP, me, tostring(idle_ms), "0-0", "COUNT", "1")
        e = redis.entries(claim[2])[1]
        if e then
          local p = r:call("XPENDING", K.jobs, jobfmt.GROUP, e.id, e.id, "1")
          deliveries = p[1] and p[1][4]
          log(("zoe worker %s: claimed job %s, idle for %d ms (delivery %s)"):format(me, e.id, idle_ms,
            tostring(deliveries)))
        end
      end
      if e then
        process(e.id, e.fields.job, deliveries)
        quiet_since = now_ms()
        if opts.max_jobs and done_count >= opts.max_jobs then break end
      elseif opts.idle_exit_ms and now_ms() - quiet_since > opts.idle_exit_ms then
        break
      end
    end
  end)
  stopping = true
  beat:cancel()
  watch:cancel()
  pcall(beat.wait, beat)
  pcall(watch.wait, watch)
  pcall(r.call, r, "HDEL", K.workers, me)
  r:close()
  rw:close()
  rb:close()
  if not result then error(failure, 0) end
  return done_count
end

return M
