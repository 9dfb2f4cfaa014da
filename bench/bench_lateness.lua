-- bench_lateness: how live the loop stays while a generation runs in a job. A zoe.uv timer
-- fires every 10 ms on the loop thread; its worst lateness (how long after its due time it
-- ran) is printed next to the longest single op of the run (the longest task the compute
-- thread ran), since the loop can be late by at most one op when every heavy op leaves the
-- loop thread. Two runs: a 60-step zoe-tiny render, and one Wan2.1 DiT forward at 320x192x17
-- on the full-size random checkpoint (ZOE_WAN_RANDOM, build/wan-random or ../wan-random;
-- skipped, saying so, when none is there); and how soon job:cancel() ends a zoe-tiny render.
-- Nothing passes or fails on time.
local zoe = require "zoe"
local uv = zoe.uv

local function now_ms() return uv.hrtime() / 1e6 end

-- Runs fn in a job while a 10 ms timer measures its lateness; returns the worst lateness
-- (ms), the number of ticks and the job's seconds.
local function measure(fn)
  local period, worst, ticks = 10, 0, 0
  local timer = uv.new_timer()
  local due = now_ms() + period
  timer:start(period, period, function()
    local t = now_ms()
    worst = math.max(worst, t - due)
    ticks = ticks + 1
    due = t + period
  end)
  local t0 = now_ms()
  local j = zoe.spawn(fn)
  j:wait()
  local took = (now_ms() - t0) / 1e3
  timer:stop()
  timer:close()
  return worst, ticks, took
end

-- the longest op of the run: on the compute thread, or inline in the job
local function report(what, worst, ticks, took)
  local st = zoe.offload_stats(true)
  print(("%-44s %6.2f s, %5d ticks of 10 ms: worst timer lateness %7.1f ms; longest single op %.1f ms (%d ops offloaded, %d inline, longest inline %.2f ms)")
    :format(what, took, ticks, worst, math.max(st.longest_offloaded_ms, st.longest_inline_ms), st.offloaded, st.inline,
      st.longest_inline_ms))
end

local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p " .. tmp)
-- warm up once (weights paged in, rates of every op kind learned), then measure
local function tiny(steps)
  return function()
    zoe.pipeline.text2video{model = "zoe-tiny", prompt = "a red circle moving right on a white background",
      seed = 1, steps = steps, out = tmp .. "/tiny.mp4"}
  end
end
measure(tiny(4))
zoe.offload_stats(true)
report("zoe-tiny render, 60 steps (64x64x17)", measure(tiny(60)))

-- cancel latency: job:cancel() at step 5 of a 400-step render, to the job's end (a REPL's
-- :cancel and Ctrl-C do the same from the loop), against the longest op of that run
do
  local step = 0
  local j = zoe.spawn(function()
    zoe.pipeline.text2video{model = "zoe-tiny", prompt = "a red circle moving right on a white background",
      seed = 1, steps = 400, out = tmp .. "/cancel.mp4", on_step = function(s) step = s.step end}
  end)
  while step < 5 and j:status() == "running" do zoe.sleep(1) end
  local at, t0 = step, now_ms()
  j:cancel()
  pcall(j.wait, j)
  local st = zoe.offload_stats(true)
  print(("%-44s job:cancel() at step %d: the job ended %.1f ms later (%s, at step %d); longest single op %.1f ms")
    :format("zoe-tiny render, canceled", at, now_ms() - t0, j:status(), step,
      math.max(st.longest_offloaded_ms, st.longest_inline_ms)))
end
os.execute("rm -rf " .. tmp)

-- the checkpoint make bench-wan writes (WAN_RANDOM), or one shared beside the repository
local dir
local places = {"build/wan-random", "../wan-random"}
if os.getenv("ZOE_WAN_RANDOM") then table.insert(places, 1, os.getenv("ZOE_WAN_RANDOM")) end
for _, d in ipairs(places) do
  local f = io.open(d .. "/Wan2.1_VAE.pth", "rb")
  if f then
    f:close()
    dir = dir or d
  end
end
if not dir then
  print(("Wan DiT step skipped: no full-size checkpoint (Wan2.1_VAE.pth last written) in %s; make bench-wan writes one")
    :format(table.concat(places, ", ")))
  return
end
local T = zoe.tensor
-- one step as the pipeline takes it: the model inside the sampler's coroutine, unguided
-- (a random 40-token context stands in for the text encoder's output)
local model = zoe.models.load(dir)
local _, before = zoe.precision(model.precision or "auto")
local kv = model:cross_kv(T.randn({40, 4096}, {seed = 3}))
local function step()
  zoe.sample{model_batch = model:denoiser(), kind = "flow", sampler = "euler", steps = 1, shift = 5,
    noise = T.randn({16, 5, 24, 40}, {seed = 5}), cond = kv, cfg = 1}
end
measure(step) -- pages the weights in
zoe.offload_stats(true)
report("Wan2.1 DiT step 320x192x17 (1200 tokens)", measure(step))
zoe.precision(before)
