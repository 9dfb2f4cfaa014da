-- zoe.hiredis (an asynchronous Redis connection on the loop) and the queue's client
-- (lua/zoe/queue/redis.lua) against a redis-server of the test's own: the stream
-- commands a farm uses with the values Redis gives, errors of both kinds, and a client
-- that goes on when its connection is cut and when Redis restarts.
local t = require "testlib"
local zoe = require "zoe"
local redis = require "zoe.queue.redis"
local server = require "redis_server"

local srv, why = server.start{appendonly = true}
if not srv then
  t.skip("redis", why)
  t.done()
  return
end

t.test("queue addresses", function()
  t.eq({redis.parse("redis://10.0.0.2:6380/farm-1")}, {"10.0.0.2", 6380, "farm-1"})
  t.eq({redis.parse("redis://host/q")}, {"host", 6379, "q"})
  local ok, err = redis.parse("http://host/q")
  t.eq(ok, nil)
  t.ok(err:find("redis://HOST:PORT/NAME", 1, true), err)
end)

local function raw_call(c, args)
  return zoe.await(function(cb) assert(c:command(args, cb)) end)
end

t.test("the binding: replies as Lua values, errors by kind", function()
  local c
  local ok, err = zoe.await(function(cb) c = zoe.hiredis.connect("127.0.0.1", srv.port, cb) end)
  t.eq(ok, true, err)
  t.eq(c:status(), "connected")
  t.eq(raw_call(c, {"SET", "k", "v"}), "OK")
  t.eq(raw_call(c, {"GET", "k"}), "v")
  t.eq(raw_call(c, {"GET", "missing"}), false, "a nil reply is false")
  t.eq(raw_call(c, {"INCRBY", "n", 41}), 41, "numbers go as words, integers come back as integers")
  t.eq(raw_call(c, {"SET", "bin", "a\0b"}), "OK")
  t.eq(raw_call(c, {"GET", "bin"}), "a\0b", "binary safe")
  local r, msg, kind = raw_call(c, {"NOSUCHCOMMAND"})
  t.eq(r, nil)
  t.eq(kind, "reply")
  t.ok(msg:find("unknown command", 1, true), msg)
  c:close()
  t.eq(c:status(), "closed")
  local sent, e = c:command({"PING"}, function() end)
  t.eq(sent, nil)
  t.ok(type(e) == "string", "a closed connection says why it cannot send")
end)

t.test("a refused connection calls back with the reason", function()
  local ok, err = zoe.await(function(cb) zoe.hiredis.connect("127.0.0.1", 1, cb) end)
  t.eq(ok, false)
  t.ok(err:lower():find("refused", 1, true), err)
end)

t.test("stream commands: XGROUP, XADD, XREADGROUP, XACK, XPENDING, XAUTOCLAIM", function()
  local r = redis.open(srv:url("t"))
  t.eq(r:call("XGROUP", "CREATE", "s", "g", "0", "MKSTREAM"), "OK")
  local id1 = r:call("XADD", "s", "*", "job", "one")
  local id2 = r:call("XADD", "s", "*", "job", "two")
  t.ok(id1:match("^%d+%-%d+$") and id2 > id1, id1 .. " " .. id2)
  local got = r:call("XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "s", ">")
  local e = redis.entries(got[1][2])
  t.eq(got[1][1], "s")
  t.eq(#e, 1)
  t.eq(e[1].id, id1)
  t.eq(e[1].fields.job, "one")
  -- bob reads the second; alice's first stays pending until she acknowledges it
  e = redis.entries(r:call("XREADGROUP", "GROUP", "g", "bob", "COUNT", "5", "STREAMS", "s", ">")[1][2])
  t.eq(#e, 1)
  t.eq(e[1].fields.job, "two")
  t.eq(r:call("XACK", "s", "g", id2), 1)
  t.eq(r:call("XREADGROUP", "GROUP", "g", "bob", "COUNT", "1", "BLOCK", "50", "STREAMS", "s", ">"), false,
    "nothing new: a nil reply after the BLOCK time")
  local pend = r:call("XPENDING", "s", "g", "-", "+", "10")
  t.eq(#pend, 1)
  t.eq(pend[1][1], id1)
  t.eq(pend[1][2], "alice")
  t.eq(pend[1][4], 1, "delivered once")
  zoe.sleep(30)
  -- alice died: carol claims what has been idle 20 ms
  local claim = r:call("XAUTOCLAIM", "s", "g", "carol", "20", "0-0", "COUNT", "10")
  t.eq(claim[1], "0-0", "the scan is complete")
  e = redis.entries(claim[2])
  t.eq(#e, 1)
  t.eq(e[1].id, id1)
  t.eq(e[1].fields.job, "one")
  pend = r:call("XPENDING", "s", "g", "-", "+", "10")
  t.eq(pend[1][2], "carol")
  t.eq(pend[1][4], 2, "delivered twice")
  t.eq(r:call("XACK", "s", "g", id1), 1)
  t.eq(#r:call("XPENDING", "s", "g", "-", "+", "10"), 0)
  local ok, err = pcall(r.call, r, "XADD", "s")
  t.eq(ok, false)
  t.ok(err:find("^redis XADD: ERR"), err)
  r:close()
end)

t.test("the client goes on when its connection is cut", function()
  local notes = {}
  local r = redis.open(srv:url("t"), {log = function(s) notes[#notes + 1] = s end})
  t.eq(r:call("CLIENT", "SETNAME", "victim"), "OK")
  t.eq(r:call("SET", "a", "1"), "OK")
  local admin = redis.open(srv:url("t"))
  t.eq(admin:call("CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal") >= 1, true)
  -- a blocking read was in flight on some other job when the cut came: it is repeated
  local reader = zoe.spawn(function()
    return r:call("BLPOP", "list", "5")
  end)
  zoe.sleep(100)
  admin:call("CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal")
  admin = redis.open(srv:url("t"))
  admin:call("RPUSH", "list", "x")
  local got = reader:wait()
  t.eq(got, {"list", "x"})
  t.eq(r:call("GET", "a"), "1")
  t.ok(r.reconnects >= 1 or #notes >= 1, "it noticed: " .. table.concat(notes, "; "))
  r:close()
  admin:close()
end)

t.test("Redis killed and restarted (append-only file): the client waits and goes on", function()
  local r = redis.open(srv:url("t"), {log = function() end})
  t.eq(r:call("SET", "kept", "yes"), "OK")
  srv:kill()
  local job = zoe.spawn(function() return r:call("GET", "kept") end)
  zoe.sleep(300)
  t.eq(job:status(), "running", "it waits for Redis")
  srv:restart()
  t.eq(job:wait(), "yes", "the write synced before the kill is there")
  r:close()
end)

srv:stop()
t.done()
