-- The command `zoe queue status|cancel redis://HOST:PORT/NAME [RUN|all]`: the whole farm
-- at a glance, or a run canceled everywhere (queue/admin.lua).
local USAGE = [[
usage: zoe queue status redis://HOST:PORT/NAME        workers (machine, job, step) and runs
       zoe queue status redis://HOST:PORT/NAME --json the same as JSON
       zoe queue cancel redis://HOST:PORT/NAME RUN    cancel a run everywhere ("all": every run)
]]

local function exit(code, msg)
  if msg then io.stderr:write(msg, "\n") end
  io.stderr:flush()
  os.exit(code)
end

return function(args)
  local what, url = args[1], args[2]
  if what == "-h" or what == "--help" then io.stdout:write(USAGE) return end
  if (what ~= "status" and what ~= "cancel") or not url then exit(2, USAGE) end
  local ok, err = require("zoe.queue.redis").parse(url)
  if not ok then exit(2, "zoe queue: " .. err) end
  local admin = require "zoe.queue.admin"
  local run_ok, e = pcall(function()
    if what == "status" then
      local s = admin.status(url)
      if args[3] == "--json" then print(require("zoe").json.encode(s)) else print(admin.format(s, url)) end
    else
      if not args[3] then exit(2, "zoe queue cancel: which run? (zoe queue status lists them; all: every run)") end
      for _, run in ipairs(admin.cancel(url, args[3])) do print("canceled " .. run) end
    end
  end)
  if not run_ok then exit(1, "zoe queue: " .. tostring(e)) end
end
