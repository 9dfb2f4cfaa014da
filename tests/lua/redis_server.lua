-- A redis-server of a test's own on a loopback port, in a folder of its own:
--   local srv = redis_server.start{appendonly = true}   -- nil, why when redis-server is missing
--   srv.port, srv:url("name"), srv:kill() (SIGKILL), srv:restart(), srv:stop()
-- With appendonly, every write is synced before Redis answers (appendfsync always), so a
-- SIGKILL loses nothing it acknowledged.
local zoe = require "zoe"
local uv = zoe.uv

local M = {}

local function exists(path) return uv.fs_stat(path) ~= nil end

local function find_server()
  for _, dir in ipairs {"/usr/bin", "/usr/local/bin", "/usr/sbin"} do
    if exists(dir .. "/redis-server") then return dir .. "/redis-server" end
  end
end

-- Whether something answers PING on the port.
local function answers(port)
  return zoe.await(function(cb)
    local c, err
    c, err = zoe.hiredis.connect("127.0.0.1", port, function(connected)
      if not connected then return cb(false) end
      c:command({"PING"}, function(r) c:close() cb(r == "PONG") end)
    end)
    if not c then cb(false, err) end
  end)
end

local Server = {}
Server.__index = Server

function Server:url(name) return ("redis://127.0.0.1:%d/%s"):format(self.port, name) end

function Server:launch()
  local args = {"--port", tostring(self.port), "--bind", "127.0.0.1", "--dir", self.dir, "--save", "",
    "--daemonize", "no", "--logfile", self.dir .. "/redis.log", "--protected-mode", "no"}
  if self.appendonly then
    for _, a in ipairs {"--appendonly", "yes", "--appendfsync", "always"} do args[#args + 1] = a end
  end
  local ended = {}
  self.ended = ended
  self.handle = uv.spawn(self.exe, {args = args}, function(code, signal)
    ended.code, ended.signal = code, signal
    if ended.wake then ended.wake() end
  end)
  if not self.handle then return false end
  for _ = 1, 500 do
    if ended.code then return false end -- the port was taken: another one
    if answers(self.port) then return true end
    zoe.sleep(10)
  end
  return false
end

function Server:wait_end()
  if self.ended.code == nil then zoe.await(function(cb) self.ended.wake = cb end) end
  self.handle:close()
end

function Server:kill()
  self.handle:kill("sigkill")
  self:wait_end()
end

function Server:stop()
  if self.ended.code == nil then
    self.handle:kill("sigterm")
    self:wait_end()
  end
  os.execute("rm -rf '" .. self.dir .. "'")
end

function Server:restart()
  assert(self:launch(), "redis-server did not start again on port " .. self.port)
end

function M.start(opts)
  opts = opts or {}
  local exe = find_server()
  if not exe then return nil, "redis-server is not installed (make deps installs it)" end
  local dir = os.tmpname()
  os.remove(dir)
  assert(uv.fs_mkdir(dir, 448))
  local self = setmetatable({exe = exe, dir = dir, appendonly = opts.appendonly}, Server)
  math.randomseed(uv.hrtime() + uv.os_getpid())
  for _ = 1, 20 do
    self.port = math.random(20000, 45000)
    if not answers(self.port) and self:launch() then return self end
    if self.handle and not self.handle:is_closing() then
      if self.ended.code == nil then self.handle:kill("sigkill") self:wait_end() else self.handle:close() end
    end
  end
  return nil, "could not start redis-server on a free port"
end

return M
