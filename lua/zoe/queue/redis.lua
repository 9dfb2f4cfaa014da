-- A Redis client for jobs on the loop, over zoe.hiredis (lhiredis.c): each call waits
-- (zoe.await) for its reply; a lost connection is opened again and the call repeated,
-- so a worker goes on when Redis restarts or its connection is cut.
--
--   local r = redis.open("redis://127.0.0.1:6379/farm")  -- r.host, r.port, r.name
--   local id = r:call("XADD", "s", "*", "k", "v")
--   r:close()
--
-- Every command this farm sends is safe to repeat (an event or a job added twice is
-- harmless: results are idempotent), which is what makes repeating after a lost reply
-- right. A Redis error reply (a wrong command) is raised, never repeated.
local zoe = require "zoe"

local M = {}

-- redis://HOST[:PORT]/NAME -> host, port, name (NAME: the queue, letters, digits, -_.:)
function M.parse(url)
  if type(url) ~= "string" then return nil, "a queue is a redis://HOST:PORT/NAME address" end
  local host, port, name = url:match("^redis://([^:/]+):?(%d*)/([%w_.:%-]+)$")
  if not host then
    return nil, ("'%s' is not a queue address: redis://HOST:PORT/NAME (NAME: letters, digits, - _ . :)"):format(url)
  end
  port = port == "" and 6379 or tonumber(port)
  if port < 1 or port > 65535 then return nil, ("'%s': port %d is out of range"):format(url, port) end
  return host, port, name
end

local Client = {}
Client.__index = Client

-- opts: log = fn(text) for "connection lost, reconnecting" notes; timeout_ms for a reply
-- (default 10 s; a blocking command adds its own BLOCK time); client_name (CLIENT SETNAME:
-- CLIENT LIST shows whose connection is whose).
function M.open(url, opts)
  local host, port, name = M.parse(url)
  if not host then error(port, 2) end
  opts = opts or {}
  return setmetatable({url = url, host = host, port = port, name = name, log = opts.log,
    timeout_ms = opts.timeout_ms or 10000, waiters = nil, reconnects = 0, client_name = opts.client_name}, Client)
end

local function note(self, text)
  if self.log then self.log(text) end
end

-- A connected zoe.hiredis connection, made (again) if needed; one attempt at a time,
-- others wait for it. Retries every 0.1 s to 1 s until it connects.
function Client:connection()
  if self.closed then error("redis: the client is closed", 0) end
  local c = self.conn
  if c and c:status() == "connected" then return c end
  if self.waiters then -- someone is connecting: wait for them
    zoe.await(function(cb) table.insert(self.waiters, cb) end)
    return self:connection()
  end
  self.waiters = {}
  local ok, c2 = pcall(self.connect_now, self, c)
  local waiters = self.waiters
  self.waiters = nil
  for _, wake in ipairs(waiters) do wake() end
  if not ok then error(c2, 0) end -- canceled while it waited: the others try themselves
  self.conn = c2
  if self.closed then error("redis: the client is closed", 0) end
  return c2
end

function Client:connect_now(c)
  local delay, said = 100, false
  while not self.closed do
    if c then c:close() end
    local ok, err = zoe.await(function(cb)
      local conn, e = zoe.hiredis.connect(self.host, self.port, cb)
      c = conn
      if not conn then cb(false, e) end
    end)
    if ok then break end
    c = nil
    if not said then
      note(self, ("redis %s:%d: %s; trying again"):format(self.host, self.port, tostring(err)))
      said = true
    end
    zoe.sleep(delay)
    delay = math.min(delay * 2, 1000)
  end
  if c and self.client_name then c:command({"CLIENT", "SETNAME", self.client_name}, function() end) end
  if said and c then
    self.reconnects = self.reconnects + 1
    note(self, ("redis %s:%d: connected again"):format(self.host, self.port))
  end
  return c
end

-- One command on connection c; its reply, or nil, message, kind ("reply" or "io").
local function send(c, args, timeout_ms)
  local timer
  local reply, err, kind = zoe.await(function(cb)
    local ok, e = c:command(args, cb)
    if not ok then return cb(nil, e, "io") end
    timer = zoe.uv.new_timer()
    timer:start(timeout_ms, 0, function()
      cb(nil, "no reply in time", "io")
      c:close() -- what was sent on it is given up; the call is repeated on a new one
    end)
  end)
  if timer then timer:close() end
  return reply, err, kind
end

-- r:call(word, ...) -> the reply (false for a nil reply). Raises on a Redis error reply.
function Client:call(...)
  local args = {...}
  local timeout = self.timeout_ms
  for i, a in ipairs(args) do -- a blocking read waits its BLOCK time before it answers
    if type(a) == "string" and a:upper() == "BLOCK" then timeout = timeout + (tonumber(args[i + 1]) or 0) end
  end
  while true do
    local c = self:connection()
    local reply, err, kind = send(c, args, timeout)
    if reply ~= nil then return reply end
    -- a Redis that is still loading its append-only file answers LOADING: wait, like for a connection
    if kind == "reply" and not tostring(err):find("^LOADING") then
      error(("redis %s: %s"):format(tostring(args[1]), err), 0)
    end
    if kind == "io" then
      note(self, ("redis %s:%d: %s; reconnecting"):format(self.host, self.port, tostring(err)))
      c:close()
    end
    zoe.sleep(50)
  end
end

-- Sends without waiting for the reply (progress notes): dropped when not connected.
function Client:send(...)
  local c = self.conn
  if c and c:status() == "connected" then c:command({...}, function() end) end
end

function Client:close()
  self.closed = true
  if self.conn then self.conn:close() end
  self.conn = nil
end

-- A stream entry list ({{id, {k1, v1, k2, v2}}, ...}) as {{id =, fields = {k1 = v1, ...}}, ...}.
function M.entries(list)
  local out = {}
  for _, e in ipairs(list or {}) do
    if type(e) == "table" and type(e[2]) == "table" then
      local f = {}
      for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
      out[#out + 1] = {id = e[1], fields = f}
    end
  end
  return out
end

-- A flat {k1, v1, k2, v2} reply (HGETALL) as a table.
function M.hash(list)
  local t = {}
  for i = 1, #(list or {}), 2 do t[list[i]] = list[i + 1] end
  return t
end

return M
