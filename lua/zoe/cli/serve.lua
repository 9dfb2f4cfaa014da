-- The command `zoe serve [--port N] [--host ADDR] [--out DIR] [--models DIR] [--token T]`:
-- the page and the JSON API (lua/zoe/serve/) on this process's loop until Ctrl-C, which
-- cancels the running renders (their unfinished files are removed) and stops.
local zoe = require "zoe"
local options = require "zoe.cli.options"

local USAGE = [[
usage: zoe serve [options]
  --port N        the port (default 8188; 0: any free port, printed)
  --host ADDR     the address to listen on (default 127.0.0.1); any other needs a token
  --token T       the token every request must carry (default: generated when not on 127.0.0.1)
  --out DIR       where videos, previews and records go (default out)
  --models DIR    a folder of models, searched before the shipped ones
  --max-body N    the largest request body in bytes (default 1048576)
  --queue URL     render on a farm: redis://HOST:PORT/NAME, whose zoe worker processes
                  see --out under the same path (docs/DISTRIBUTED.md)
  -h, --help      this help
The page is http://HOST:PORT/ (with ?token=T when there is a token).]]

local function fail(msg)
  io.stderr:write("zoe serve: ", msg, "\n", USAGE, "\n")
  io.stderr:flush()
  os.exit(2)
end

local function parse(args)
  local o = {port = 8188, host = "127.0.0.1", out = "out", max_body = 1 << 20}
  for key, arg_value, a in options.each(args, function(key) fail(key .. " needs a value") end) do
    if key == "-h" or key == "--help" then
      print(USAGE)
      return nil
    elseif key == "--port" then
      o.port = math.tointeger(tonumber(arg_value()))
      if not o.port or o.port < 0 or o.port > 65535 then fail("--port takes 0..65535") end
    elseif key == "--host" then o.host = arg_value()
    elseif key == "--token" then o.token = arg_value()
    elseif key == "--out" then o.out = arg_value()
    elseif key == "--models" then o.models = arg_value()
    elseif key == "--queue" then
      o.queue = arg_value()
      local okq, err = require("zoe.queue.redis").parse(o.queue)
      if not okq then fail(err) end
    elseif key == "--max-body" then
      o.max_body = math.tointeger(tonumber(arg_value()))
      if not o.max_body or o.max_body < 1024 then fail("--max-body takes a number of bytes >= 1024") end
    else
      fail(("unknown argument '%s'"):format(a))
    end
  end
  return o
end

-- 32 random bytes as hex, from the kernel
local function new_token()
  local f = assert(io.open("/dev/urandom", "rb"))
  local b = f:read(32)
  f:close()
  return (b:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

return function(args)
  local o = parse(args)
  if not o then return end
  zoe.uv.fs_mkdir(o.out, 493) -- 0755; an existing folder is fine
  local st = zoe.uv.fs_stat(o.out)
  if not st or st.type ~= "directory" then fail(("cannot use '%s' as the output folder"):format(o.out)) end
  if o.models then
    local m = zoe.uv.fs_stat(o.models)
    if not m or m.type ~= "directory" then fail(("no models folder '%s'"):format(o.models)) end
    table.insert(zoe.models.path, 1, o.models)
  end
  local loopback = o.host == "127.0.0.1" or o.host == "::1"
  if not loopback and not o.token then o.token = new_token() end
  local serve = require "zoe.serve"
  local ok, app = pcall(serve.start, o)
  if not ok then
    io.stderr:write("zoe serve: ", tostring(app):gsub("^[^:]*:%d+: ", ""), "\n")
    os.exit(1)
  end
  local host = o.host:find(":", 1, true) and "[" .. o.host .. "]" or o.host
  print(("zoe serve: http://%s:%d/%s  (outputs in %s; Ctrl-C stops)"):format(host, app:port(),
    o.token and "?token=" .. o.token or "", o.out))
  app:run()
  print("zoe serve: stopped")
end
