-- Jobs on the loop: spawn/wait, offloading to the compute thread, progress,
-- cancellation (and how fast it lands), zoe.sleep, zoe.await, luv, leaks.
-- This file's main chunk is itself a job (the zoe command runs scripts as jobs).
local t = require "testlib"
local zoe = require "zoe"
local T = zoe.tensor
local uv = zoe.uv

local function seconds_since(t0) return (uv.hrtime() - t0) / 1e9 end

-- every element equal (for finite floats a - b == 0 exactly when a == b)
local function same(a, b)
  if a:dtype() ~= b:dtype() then return false end
  local sa, sb = a:shape(), b:shape()
  if #sa ~= #sb then return false end
  for i = 1, #sa do if sa[i] ~= sb[i] then return false end end
  return a:sub(b):abs():max():item() == 0
end

t.test("the main chunk runs as a job", function()
  local me = zoe.current()
  t.ok(me, "zoe.current() inside the script")
  t.eq(me:status(), "running")
  t.ok(#zoe.jobs() >= 1)
end)

t.test("spawn, wait, status, result", function()
  local j = zoe.spawn(function(a, b) zoe.sleep(5) return a + b, "sum" end, 20, 22)
  t.eq(j:status(), "running")
  local x, s = j:wait()
  t.eq(x, 42)
  t.eq(s, "sum")
  t.eq(j:status(), "done")
  local r = table.pack(j:result())
  t.eq(r.n, 2)
  t.eq(r[1], 42)
  t.ok(tostring(j):find("done", 1, true), tostring(j))
end)

t.test("a failed job: wait raises its error, result gives nil and the message", function()
  local j = zoe.spawn(function() error("boom") end)
  local err = t.raises(function() j:wait() end, "boom")
  t.ok(err:find("test_loop.lua:%d+: boom"), err)
  t.eq(j:status(), "failed")
  local v, msg = j:result()
  t.eq(v, nil)
  t.ok(msg:find("boom", 1, true))
  t.ok(j:info().traceback:find("stack traceback", 1, true))
end)

t.test("a job cannot wait for itself", function()
  local j
  j = zoe.spawn(function() return j:wait() end)
  t.raises(function() j:wait() end, "cannot wait for itself")
end)

t.test("sleeping jobs wake in time order", function()
  local order = {}
  local a = zoe.spawn(function() zoe.sleep(60) order[#order + 1] = "a" end)
  local b = zoe.spawn(function() zoe.sleep(10) order[#order + 1] = "b" end)
  local c = zoe.spawn(function() order[#order + 1] = "c" end)
  a:wait(); b:wait(); c:wait()
  t.eq(order, {"c", "b", "a"})
end)

t.test("two jobs' progress events interleave", function()
  local A, B = T.randn(128, 128), T.randn(128, 128)
  local events = {}
  local function worker(stage, n)
    for i = 1, n do
      local x = A:matmul(B) -- offloaded: the job yields while it runs
      zoe.progress{stage = stage, step = i, steps = n, extra = x:shape()[1]}
    end
  end
  local saved = zoe.offload_us(0) -- every product goes to the compute thread, whatever its size
  local ja, jb = zoe.spawn(worker, "a", 5), zoe.spawn(worker, "b", 5)
  local last = {} -- each job's last event (which job ends last depends on the machine's load)
  for _, j in ipairs{ja, jb} do
    j:on("progress", function(e)
      events[#events + 1] = e.stage .. e.step
      last[j] = e
    end)
  end
  ja:wait(); jb:wait()
  zoe.offload_us(saved)
  t.eq(#events, 10)
  -- neither job ran its five steps in one go
  local first_b, last_a
  for i, e in ipairs(events) do
    if e:sub(1, 1) == "b" and not first_b then first_b = i end
    if e:sub(1, 1) == "a" then last_a = i end
  end
  t.ok(first_b < last_a, "interleaved: " .. table.concat(events, " "))
  for _, j in ipairs{ja, jb} do
    local seen = last[j]
    t.eq(seen.steps, 5)
    t.eq(seen.step, 5)
    t.eq(seen.extra, 128, "fields given to zoe.progress travel with the event")
    t.ok(seen.job == j and seen.id == j:id(), "an event names its own job")
    t.ok(seen.rate >= 0 and seen.elapsed >= 0)
  end
end)

t.test("offloaded results equal inline results exactly", function()
  local g = T.generator(7)
  local a, b = g:randn(96, 384), g:randn(384, 200)
  local big_a, big_b = g:randn(2048, 1024), g:randn(1024, 1024) -- 4.3 GFlop: gemm splits it in panels
  local function compute()
    local m = a:matmul(b):mul(0.05)
    return {m, m:exp():add(1):log(), m:softmax(2), m:sum(1), T.cat({m, m}, 1), m:tanh(), big_a:matmul(big_b)}
  end
  local saved = zoe.offload_us(math.huge)
  local inline = compute()
  zoe.offload_us(0) -- everything goes to the compute thread
  local offloaded = compute()
  local nested -- in a coroutine of the job's, the ops go to the compute thread too
  local co = coroutine.wrap(function() nested = compute() end)
  co()
  zoe.offload_us(saved)
  for i = 1, #inline do
    t.ok(same(inline[i], offloaded[i]), "offloaded result " .. i .. " differs")
    t.ok(same(inline[i], nested[i]), "nested-coroutine result " .. i .. " differs")
  end
end)

-- A timer set to fire at once, from inside a heavy op's caller: its callback runs on the
-- loop's next turn, so what it sees is whether the job was waiting for the op (the op ran on
-- the compute thread and the loop went on) or had already finished it (the op ran inline,
-- holding the loop). No clock is read.
local function op_with_probe(seen, job, A)
  local timer = uv.new_timer()
  timer:start(0, 0, function()
    seen[#seen + 1] = job():info().waiting
    timer:close()
  end)
  return A:matmul(A) -- 512^3: milliseconds, predicted far above the offload threshold
end

t.test("the loop runs callbacks while a heavy op runs inside a sampler inside a job", function()
  local A = T.randn(512, 512)
  local seen, j = {}, nil
  local function model(x) op_with_probe(seen, function() return j end, A) return x * 0.5 end
  local spec = {model = model, kind = "flow", sampler = "euler", steps = 3, x = T.ones(4)}
  j = zoe.spawn(zoe.sample, spec)
  local x = j:wait()
  t.eq(seen, {"in matmul (compute thread)", "in matmul (compute thread)", "in matmul (compute thread)"})
  spec.model = function(y) return y * 0.5 end
  t.ok(same(x, zoe.sample(spec)), "the same latent as without the op")
end)

t.test("... and inside a user's coroutine.wrap inside a job, at any depth", function()
  local A = T.randn(512, 512)
  local seen, j = {}, nil
  local probe = function() return j end
  j = zoe.spawn(function()
    local gen = coroutine.wrap(function()
      for i = 1, 3 do
        op_with_probe(seen, probe, A)
        coroutine.yield(i) -- the user's own yields still come back to the user
      end
      local inner = coroutine.wrap(function() op_with_probe(seen, probe, A) return "deep" end)
      local deeper = coroutine.wrap(function() return inner() end)
      return deeper()
    end)
    return {gen(), gen(), gen(), gen()}
  end)
  t.eq(j:wait(), {1, 2, 3, "deep"})
  t.eq(#seen, 4)
  for i = 1, 4 do t.eq(seen[i], "in matmul (compute thread)", "probe " .. i) end
end)

t.test("the job's coroutine library: resume, wrap and close behave as Lua's", function()
  local co = coroutine.create(function(a, b)
    local c = coroutine.yield(a + b)
    T.randn(256, 256):matmul(T.randn(256, 256)) -- an offloaded op between user yields
    zoe.sleep(1)
    return c * 2, "end"
  end)
  t.eq({coroutine.resume(co, 1, 2)}, {true, 3})
  t.eq(coroutine.status(co), "suspended")
  t.eq({coroutine.resume(co, 21)}, {true, 42, "end"})
  t.eq(coroutine.status(co), "dead")
  t.eq({coroutine.resume(co)}, {false, "cannot resume dead coroutine"})
  -- errors: resume returns them, wrap raises them with a position and closes the coroutine
  local bad = coroutine.create(function() zoe.sleep(1) error("inner", 0) end)
  t.eq({coroutine.resume(bad)}, {false, "inner"})
  local closed = false
  local w = coroutine.wrap(function()
    local _ <close> = setmetatable({}, {__close = function() closed = true end})
    zoe.sleep(1)
    error("wrapped")
  end)
  local err = t.raises(w, "wrapped")
  t.ok(err:find("test_loop.lua:%d+: wrapped"), err)
  t.eq(closed, true, "the failed coroutine's to-be-closed variables were closed")
  local idle = coroutine.create(function() coroutine.yield() end)
  coroutine.resume(idle)
  t.eq(coroutine.close(idle), true)
  t.eq(coroutine.status(idle), "dead")
  t.eq(select(2, coroutine.resume(coroutine.running())), "cannot resume non-suspended coroutine")
end)

t.test("a coroutine waiting for the loop belongs to its job: others cannot resume or close it", function()
  local inner
  local j = zoe.spawn(function()
    inner = coroutine.create(function() zoe.sleep(50) return "slept" end)
    return select(2, coroutine.resume(inner))
  end)
  repeat zoe.sleep(1) until inner and j:info().waiting == "sleeping"
  local ok, msg = coroutine.resume(inner)
  t.eq(ok, false)
  t.ok(msg:find("waits for the loop", 1, true), msg)
  t.raises(function() coroutine.close(inner) end, "waits for the loop")
  t.eq(j:wait(), "slept")
end)

t.test("a user's coroutine busy in Lua inside a job lets the loop turn, and is canceled there", function()
  local flag = false
  local busy = zoe.spawn(function()
    return coroutine.wrap(function()
      local t0 = uv.hrtime()
      while not flag and seconds_since(t0) < 10 do end
      return flag
    end)()
  end)
  zoe.sleep(30) -- returns only if the busy coroutine is preempted
  flag = true
  t.eq(busy:wait(), true)
  local forever = zoe.spawn(function() coroutine.wrap(function() while true do end end)() end)
  zoe.sleep(30)
  forever:cancel()
  t.raises(function() forever:wait() end, "canceled")
end)

-- A cancel lands inside a long op, not after it: its latency against the time the same op
-- takes whole, measured in this run (a ratio, so a loaded machine slows both sides alike).
local function cancel_lands_inside(name, op)
  local t0 = uv.hrtime()
  zoe.spawn(op):wait()
  local whole = seconds_since(t0)
  local j = zoe.spawn(op)
  repeat zoe.sleep(5) until j:info().waiting:find(name, 1, true)
  zoe.sleep(math.min(100, whole * 100)) -- a tenth of the op in
  t.ok(j:status() == "running", "still running")
  t0 = uv.hrtime()
  t.eq(j:cancel(), true)
  local ok, err = pcall(j.wait, j)
  local latency = seconds_since(t0)
  t.eq(ok, false)
  t.ok(tostring(err):find("canceled", 1, true), err)
  t.eq(j:status(), "canceled")
  t.ok(j:info().error:find("during " .. name, 1, true), j:info().error)
  print(("# %s: canceled %.3f s after the request; the whole op takes %.3f s"):format(name, latency, whole))
  t.ok(latency < 0.5 * whole, ("cancel took %.3f s of an op of %.3f s"):format(latency, whole))
end

t.test("a cancel during a long product lands inside it", function()
  local a, b = T.randn(4096, 4096), T.randn(4096, 4096) -- 137 GFlop: gemm checks between ~16 GFlop panels
  cancel_lands_inside("matmul", function() return a:matmul(b) end)
end)

t.test("a cancel during long attention in bf16 lands inside it", function()
  local q = T.randn({1, 8192, 12, 128}) -- 412 GFlop on the bf16 kernel
  local _, was = zoe.precision("bf16")
  cancel_lands_inside("attention", function() return zoe.nn.attention(q, q, q) end)
  zoe.precision(was)
end)

t.test("cancel wakes a sleeping job, and a job that never started never runs", function()
  local ran = false
  local sleeper = zoe.spawn(function() zoe.sleep(60000) ran = true end)
  local never = zoe.spawn(function() ran = true end)
  t.eq(never:cancel(), true) -- before the loop turned: it has not started
  zoe.sleep(5)
  t.eq(sleeper:info().waiting, "sleeping")
  local t0 = uv.hrtime()
  sleeper:cancel()
  t.raises(function() sleeper:wait() end, "canceled")
  t.ok(seconds_since(t0) < 1)
  t.raises(function() never:wait() end, "canceled")
  t.eq(never:status(), "canceled")
  t.eq(ran, false)
  t.eq(sleeper:cancel(), false, "canceling a finished job")
end)

t.test("a job busy in Lua lets the loop turn, and can be canceled", function()
  local flag = false
  local spins = 0
  local busy = zoe.spawn(function()
    local t0 = uv.hrtime()
    while not flag and seconds_since(t0) < 10 do spins = spins + 1 end
    return flag
  end)
  zoe.sleep(30) -- returns only if the busy job is preempted
  flag = true
  t.eq(busy:wait(), true, "the main job ran while the other spun")
  local forever = zoe.spawn(function() while true do spins = spins + 1 end end)
  zoe.sleep(30)
  forever:cancel()
  t.raises(function() forever:wait() end, "canceled")
end)

t.test("the cancel error is raised once: cleanup code after pcall runs", function()
  local cleaned = false
  local j = zoe.spawn(function()
    local ok = pcall(zoe.sleep, 60000)
    zoe.sleep(1) -- not canceled again
    cleaned = not ok
    return "finished anyway"
  end)
  zoe.sleep(5)
  j:cancel()
  t.eq(j:wait(), "finished anyway")
  t.eq(cleaned, true)
  t.eq(j:status(), "done")
end)

t.test("a canceled job closes its to-be-closed variables: what it wrote stays", function()
  local path = os.tmpname()
  local a, b = T.randn(2048, 2048), T.randn(2048, 2048)
  local j = zoe.spawn(function()
    local f <close> = assert(io.open(path, "w"))
    f:write("partial output\n")
    for _ = 1, 100 do a:matmul(b) end
    f:write("never\n")
  end)
  repeat zoe.sleep(10) until j:info().waiting:find("matmul", 1, true)
  j:cancel()
  pcall(j.wait, j)
  local f = assert(io.open(path))
  t.eq(f:read("a"), "partial output\n")
  f:close()
  os.remove(path)
end)

t.test("zoe.await turns a luv callback into a return value", function()
  local timer = uv.new_timer()
  local what, n = zoe.await(function(cb) timer:start(10, 0, function() cb("fired", 42) end) end)
  timer:close()
  t.eq(what, "fired")
  t.eq(n, 42)
  local path = os.tmpname()
  local err, fd = zoe.await(uv.fs_open, path, "w", 420)
  t.eq(err, nil)
  t.eq(select(2, zoe.await(uv.fs_write, fd, "abc", 0)), 3)
  zoe.await(uv.fs_close, fd)
  t.eq(io.open(path):read("a"), "abc")
  os.remove(path)
  t.ok(package.loaded.luv == nil or package.loaded.luv == uv, "require 'luv' is zoe.uv")
end)

t.test("100 spawned and canceled jobs leave nothing behind", function()
  local a = T.randn(64, 64)
  collectgarbage()
  local before = zoe.mem().live
  local jobs = {}
  for i = 1, 100 do
    jobs[i] = zoe.spawn(function() -- runs until canceled
      local x = a
      while true do
        x = x:matmul(a):tanh()
        if i % 2 == 0 then zoe.sleep(1) end
      end
    end)
  end
  zoe.sleep(20)
  for _, j in ipairs(jobs) do j:cancel() end
  local canceled = 0
  for _, j in ipairs(jobs) do
    if not pcall(j.wait, j) then canceled = canceled + 1 end
  end
  t.eq(canceled, 100)
  t.eq(#zoe.jobs(), 1, "only the main job is left")
  jobs = nil
  collectgarbage()
  collectgarbage()
  t.eq(zoe.mem().live, before, "live C memory back where it was")
end)

local function stock_lua()
  local zoe_bin = os.getenv("ZOE_TEST_ZOE") or "bin/zoe"
  local lib = zoe_bin:gsub("bin/zoe$", "lib/?.so")
  local code = [[
    local zoe = require "zoe"
    local a = zoe.tensor.ones(64, 64)
    local s = a:matmul(a):sum():item()
    local j = zoe.spawn(function(x) zoe.sleep(5) return x * 2 end, 21)
    print(s, j:wait(), zoe.current() == nil)
  ]]
  local cmd = ("LUA_CPATH='%s' LUA_PATH='lua/?.lua;lua/?/init.lua;;' lua5.4 -e %q 2>&1"):format(lib, code)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  t.eq(out, "262144.0\t42\ttrue\n")
end
local stock_name = "stock lua5.4 loading zoe.so: ops run inline, wait runs the loop"
if os.getenv("ASAN_OPTIONS") then
  -- lua5.4 is not built with ASan (its runtime would have to be preloaded), and it unloads
  -- zoe.so at exit, after which LSan takes the allocator's cache for leaks
  t.skip(stock_name, "not under sanitizers")
else
  t.test(stock_name, stock_lua)
end

t.done()
