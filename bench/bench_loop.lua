-- bench_loop: what one offload to the compute thread costs, and the threshold
-- from which ops leave the loop thread. Everything is measured in this run;
-- nothing passes or fails on time.
local zoe = require "zoe"
local T = zoe.tensor
local uv = zoe.uv

local function now() return uv.hrtime() / 1e9 end

-- seconds per call of fn: the best of 'reps' runs of n calls
local function time(n, fn, reps)
  local best = math.huge
  for _ = 1, reps or 3 do
    local t0 = now()
    for _ = 1, n do fn() end
    best = math.min(best, now() - t0)
  end
  return best / n
end

local in_use = zoe.offload_us()
local f = io.open("/proc/loadavg")
if f then print("load average " .. f:read("l"):match("^(%S+ %S+ %S+)")) f:close() end

-- 1. a job running 10,000 small ops, inline and offloaded
local N = 10000
local a, b = T.ones(16), T.ones(16)
local function small() a:add_(b) end
zoe.offload_us(math.huge)
local inline = time(N, small)
zoe.offload_us(0)
local offloaded = time(N, small)
local cost_us = (offloaded - inline) * 1e6
print(("%d x add_(16 floats) in a job: inline %.2f us/op, offloaded %.2f us/op (%.1fx)")
  :format(N, inline * 1e6, offloaded * 1e6, offloaded / inline))
print(("one offload costs %.2f us (target <= 20 us)"):format(cost_us))

-- 2. inline time against lz_task.cost, for a few kinds of op
print()
print("inline time per unit of lz_task.cost (each binding counts its own units):")
print(("  %-22s %12s %12s %10s"):format("op", "cost", "time (us)", "ns/unit"))
zoe.offload_us(math.huge)
local kinds = {}
local function row(kind, label, cost, fn)
  local per = time(math.max(3, math.floor(2e5 / cost)), fn)
  kinds[kind] = per * 1e9 / cost -- the largest size is listed last and wins
  print(("  %-22s %12.0f %12.2f %10.3f"):format(label, cost, per * 1e6, per * 1e9 / cost))
end
for _, n in ipairs{1000, 10000, 100000, 1000000} do
  local x, y = T.ones(n), T.ones(n)
  row("add_", "add_ " .. n, n, function() x:add_(y) end)
end
for _, n in ipairs{1000, 10000, 100000, 1000000} do
  local x = T.ones(n)
  row("tanh", "tanh " .. n, 4 * n, function() return x:tanh() end)
end
for _, n in ipairs{32, 64, 128, 256} do
  local x = T.ones(n, n)
  row("matmul", ("matmul %dx%dx%d"):format(n, n, n), 2 * n * n * n, function() return x:matmul(x) end)
end
zoe.offload_us(in_use)

-- 3. the threshold: ops predicted to take ten times an offload or more leave the loop
print()
print(("threshold: ops predicted to take >= 10 x %.1f us = %.0f us are offloaded; in use: %.0f us (ZOE_OFFLOAD_US)")
  :format(cost_us, 10 * cost_us, in_use))
for _, kind in ipairs{"add_", "tanh", "matmul"} do
  print(("  %-8s offloaded from a cost of %.3g units (%.3f ns/unit)"):format(kind, in_use * 1e3 / kinds[kind], kinds[kind]))
end
