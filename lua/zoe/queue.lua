-- zoe.queue: a render farm on Redis Streams from Lua and the REPL (docs/DISTRIBUTED.md).
--
--   zoe.queue.status("redis://host:6379/films")  -- workers (machine, job, step) and runs;
--                                                -- prints as `zoe queue status` does
--   zoe.queue.cancel("redis://host:6379/films", run or "all")
--   zoe.queue.worker{queue = url, idle_ms =, max_jobs =, idle_exit_ms =}  -- be a worker
--   zoe.queue.render(settings, {queue = url, out = DIR, on_event = fn(id, fields)})
--     -- one text2video (settings as data) on the farm: waits, returns {file =, record =}
--     -- (DIR/001.mp4); what a front end such as zoe serve --queue submits
-- Storyboards and sweeps go to a farm with their own option: zoe.storyboard.render(board,
-- {out =, queue = url}), zoe.sweep{..., out =, queue = url}.
local admin = require "zoe.queue.admin"

local M = {}

function M.status(url)
  local s = admin.status(url)
  return setmetatable(s, {__tostring = function(t) return admin.format(t, url) end})
end

function M.cancel(url, run) return admin.cancel(url, run) end

function M.worker(opts) return require("zoe.queue.worker").run(opts) end

function M.render(settings, opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.model = settings.model
  o.title = o.title or settings.prompt
  local got, run = require("zoe.queue.sweep").videos({{settings = settings, label = ""}}, o)
  got[1].run = run
  return got[1]
end

M.job = require "zoe.queue.job" -- the job format: keys(name), check, encode, decode

return M
