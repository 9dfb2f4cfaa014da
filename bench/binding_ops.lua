-- What the binding costs per op: small ops (where the binding's own work, not the kernel,
-- is the time) and the ops a model step is made of, each the best of N repetitions of a
-- batch, in CPU microseconds per op. Written against the API every revision since the typed
-- tasks shares, so tools/bench_revs.sh can run it on builds of two revisions in one run.
-- usage: zoe bench/binding_ops.lua [REPS]   prints "RESULT name us_per_op"
local zoe = require "zoe"
local T, nn = zoe.tensor, zoe.nn

local reps = tonumber(arg[1]) or 7

-- CPU time (os.clock: every thread of the process), which a loaded machine moves far less
-- than wall time: a small op runs on this thread, and its cost here is the binding's work
-- (argument checks, the task, its collection) besides the kernel's.
local function best_us(batch, fn)
  fn() -- warm up: caches, arenas, the loop's op rates
  local best = math.huge
  for _ = 1, reps do
    collectgarbage()
    local t0 = os.clock()
    for _ = 1, batch do fn() end
    collectgarbage() -- what the ops left for the collector is part of their cost
    best = math.min(best, (os.clock() - t0) * 1e6 / batch)
  end
  return best
end

local a, b = T.randn({16}, {seed = 1}), T.randn({16}, {seed = 2})
local x = T.randn({1, 64, 256}, {seed = 3})
local w, bias = T.randn({256, 256}, {seed = 4}) * 0.05, T.randn({256}, {seed = 5})
local g = T.ones({256})
local q = T.randn({1, 64, 4, 64}, {seed = 6})
local xl = T.randn({1, 1024, 1024}, {seed = 7})
local wl = T.randn({1024, 1024}, {seed = 8}) * 0.03

local cases = {
  {"add 16", 20000, function() return a:add(b) end},
  {"mul_ 16", 20000, function() return a:mul_(1.0) end},
  {"view+contiguous 64x256", 20000, function() return x:view(64, 256):contiguous() end},
  {"linear 64x256x256", 2000, function() return nn.linear(x, w, bias) end},
  {"rms_norm 64x256", 5000, function() return nn.rms_norm(x, g, 1e-6) end},
  {"layer_norm 64x256", 5000, function() return nn.layer_norm(x, g, nil, 1e-6) end},
  {"attention 64 tokens 4x64", 1000, function() return nn.attention(q, q, q, {scale = 0.125}) end},
  {"linear 1024x1024x1024", 4, function() return nn.linear(xl, wl) end},
}
for _, c in ipairs(cases) do
  local us = best_us(c[2], c[3])
  print(("RESULT %s %.3f"):format((c[1]:gsub(" ", "_")), us))
end
