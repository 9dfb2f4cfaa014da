-- The command `zoe worker --queue redis://HOST:PORT/NAME [--idle-ms N] [--max-jobs N]
-- [--exit-when-idle MS]`: takes the farm's jobs until stopped (queue/worker.lua).
local options = require "zoe.cli.options"

local USAGE = [[
usage: zoe worker --queue redis://HOST:PORT/NAME [options]
  --queue URL            the farm's Redis and queue name
  --idle-ms N            a job taken by a worker that went silent this long is taken
                         over (default 30000; a live worker renews its jobs every N/3)
  --max-deliveries N     a job whose workers died N times is failed (default 3)
  --max-jobs N           stop after N jobs
  --exit-when-idle MS    stop when no job came for MS milliseconds
  -h, --help             this help
Results go into each job's shared folder (its cache/), as zoe storyboard writes them.
]]

local function exit(code, msg)
  if msg then io.stderr:write(msg, "\n") end
  io.stderr:flush()
  os.exit(code)
end

return function(args)
  local o = {}
  local function missing(key) exit(2, ("zoe worker: %s needs a value\n%s"):format(key, USAGE)) end
  for key, arg_value, a in options.each(args, missing) do
    local function number()
      local n = math.tointeger(tonumber(arg_value()))
      if not n or n < 1 then exit(2, ("zoe worker: %s takes a whole number >= 1"):format(key)) end
      return n
    end
    if key == "-h" or key == "--help" then io.stdout:write(USAGE) return
    elseif key == "--queue" then o.queue = arg_value()
    elseif key == "--idle-ms" then o.idle_ms = number()
    elseif key == "--max-deliveries" then o.max_deliveries = number()
    elseif key == "--max-jobs" then o.max_jobs = number()
    elseif key == "--exit-when-idle" then o.idle_exit_ms = number()
    else exit(2, ("zoe worker: unknown argument '%s'\n%s"):format(a, USAGE)) end
  end
  if not o.queue then exit(2, "zoe worker: which queue? --queue redis://HOST:PORT/NAME\n" .. USAGE) end
  local ok, err = require("zoe.queue.redis").parse(o.queue)
  if not ok then exit(2, "zoe worker: " .. err) end
  o.log = function(text) print(text) end
  local done = require("zoe.queue.worker").run(o)
  print(("zoe worker: %d jobs done"):format(done))
end
