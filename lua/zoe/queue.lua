-- zoe.queue: a render farm on Redis Streams from Lua and the REPL (docs/DISTRIBUTED.md).
--
--   zoe.queue.status("redis://host:6379/films")  -- workers (machine, job, step) and runs;
--                                                -- prints as `zoe queue status` does
--   zoe.queue.cancel("redis://host:6379/films", run or "all")
--   zoe.queue.worker{queue = url, idle_ms =, max_jobs =, idle_exit_ms =}  -- be a worker
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

M.job = require "zoe.queue.job" -- the job format: keys(name), check, encode, decode

return M
