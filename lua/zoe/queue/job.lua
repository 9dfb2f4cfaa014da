-- The job format of a render farm (docs/DISTRIBUTED.md): one job per storyboard shot or
-- sweep setting, as JSON in the field "job" of an entry of the stream zoe:NAME:jobs.
--
--   {"v": 1, "run": RUN, "id": "03", "kind": "shot" | "sweep",
--    "out": "/shared/out/board",        -- the shared folder; the result is out/cache/<key>.mp4
--    "key": KEY, "fields": {...},       -- the cache key and what it hashes (fields.weights:
--                                       --  the model's weights hash, checked by the worker)
--    "mode": "text2video" | "image2video",
--    "settings": {model, prompt, vars, negative, width, height, frames, fps, steps,
--                 sampler, schedule, shift, cfg, seed, lora, ...}, -- text2video's, as data
--    "after": {"id": "02", "key": KEY2, "output_hash": H},  -- image2video: starts from the
--                                       --  last frame of out/cache/<KEY2>.mp4
--    "entry": {"shot": 3},              -- what the cache record holds besides the render's
--    "preview": "shots/03.preview.png"} -- relative to out (optional)
--
-- Everything a worker needs is in the job: any number of front ends (zoe storyboard
-- --queue, zoe.sweep{queue =}, zoe serve --queue) submit the same thing.
local zoe = require "zoe"

local M = {}

M.VERSION = 1
M.GROUP = "workers"

-- The Redis keys of queue NAME.
function M.keys(name)
  local p = "zoe:" .. name .. ":"
  return {
    jobs = p .. "jobs",         -- stream of jobs, consumer group "workers"
    events = p .. "events",     -- stream of what happens: claimed, progress, done, failed, cancel
    workers = p .. "workers",   -- hash: consumer -> JSON {machine, pid, run, job, stage, step, steps, seen}
    runs = p .. "runs",         -- hash: run -> JSON {title, out, jobs, submitted}
    canceled = p .. "canceled", -- set of canceled runs
    run = function(run) return p .. "run:" .. run end, -- hash: job id -> "done" | "failed: why" | ...
  }
end

local function fail(fmt, ...) error(fmt:format(...), 0) end

-- Checks a decoded job; returns it, or raises saying what is wrong.
function M.check(job)
  if type(job) ~= "table" then fail("a job is a JSON object") end
  if job.v ~= M.VERSION then fail("job format version %s (this zoe reads %d)", tostring(job.v), M.VERSION) end
  for _, f in ipairs {"run", "id", "out", "key"} do
    if type(job[f]) ~= "string" or job[f] == "" then fail("job field '%s' must be a string", f) end
  end
  if job.kind ~= "shot" and job.kind ~= "sweep" then fail("job field 'kind' must be \"shot\" or \"sweep\"") end
  if job.mode ~= "text2video" and job.mode ~= "image2video" then
    fail("job field 'mode' must be \"text2video\" or \"image2video\"")
  end
  if type(job.settings) ~= "table" or type(job.fields) ~= "table" then fail("job fields 'settings' and 'fields' must be objects") end
  for k, v in pairs(job.settings) do -- the pipeline checks the names; a job carries data only
    if type(k) ~= "string" or k == "out" or k == "image" or type(v) == "function" or type(v) == "userdata" then
      fail("job setting '%s' cannot be queued (settings are the pipeline's, as data)", tostring(k))
    end
  end
  if job.mode == "image2video" and (type(job.after) ~= "table" or type(job.after.key) ~= "string") then
    fail("an image2video job names the video it starts from in 'after'")
  end
  if job.out:sub(1, 1) ~= "/" then fail("job field 'out' must be an absolute path (a folder every worker sees)") end
  return job
end

function M.encode(job) return zoe.json.encode(M.check(job)) end

function M.decode(text)
  local ok, job = pcall(zoe.json.decode, text)
  if not ok then fail("a job that is not JSON: %s", tostring(job)) end
  return M.check(job)
end

-- Wall-clock milliseconds: what every event, heartbeat and status age is stamped with.
function M.now_ms()
  local s, us = zoe.uv.gettimeofday()
  return s * 1000 + us // 1000
end

-- A run's id: when, where and who, so two submitters never clash.
function M.new_run_id()
  local sec, usec = zoe.uv.gettimeofday()
  return ("%d%06d-%s-%d"):format(sec, usec, zoe.uv.os_gethostname(), math.tointeger(zoe.uv.os_getpid()))
end

-- A folder as an absolute path (workers elsewhere see the shared folder by the same path).
function M.absolute(path)
  if path:sub(1, 1) == "/" then return path end
  return (zoe.uv.cwd() .. "/" .. path):gsub("/%./", "/")
end

return M
