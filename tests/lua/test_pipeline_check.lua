-- What a run checks before it computes anything (lua/zoe/pipeline_check.lua): every setting,
-- the output path, the memory the run needs against what the machine has, the length of the
-- prompt, NaN weights at the first step; and what it says first about how long it will take
-- (zoe.estimate). "Before anything is computed" is checked as no op having run.
local t = require "testlib"
local zoe = require "zoe"
local tiny = require "tiny_wan"
local check = require "zoe.pipeline_check"
local T = zoe.tensor

local dir = os.tmpname()
os.remove(dir)
assert(os.execute(("mkdir -p '%s'"):format(dir)))
tiny.write(dir)
local model = zoe.models.load(dir)

local function ops()
  local s = zoe.offload_stats()
  return s.offloaded + s.inline
end

-- the error of a run with these settings, raised before any op ran
local function refused(spec, ...)
  spec.model = spec.model or model
  spec.prompt = spec.prompt or "a red circle"
  local before = ops()
  local ok, err = pcall(zoe.pipeline.text2video, spec)
  t.eq(ok, false, "refused")
  t.eq(ops(), before, "no op ran before the refusal")
  err = tostring(err)
  for _, want in ipairs {...} do t.ok(err:find(want, 1, true), ("'%s' in: %s"):format(want, err)) end
  t.ok(not err:find("%.lua:%d+:"), "no position of the runtime's own code: " .. err)
  return err
end

t.test("the output: folder, extension, a still for many frames", function()
  refused({out = dir .. "/missing/a.mp4"}, "the folder '" .. dir .. "/missing' does not exist")
  refused({out = "/proc/a.mp4"}, "cannot write in the folder '/proc'")
  refused({out = dir .. "/a"}, "has no extension")
  refused({out = dir .. "/a.avi2"}, "unknown extension '.avi2'")
  refused({out = dir .. "/a.png", frames = 5}, "a .png holds one frame and this run makes 5", "frame%04d.png")
  t.eq(check.output(dir .. "/f%04d.png", 5), nil, "a pattern takes many frames")
  t.eq(check.output(dir .. "/a.png", 1), nil, "one frame fits a .png")
end)

t.test("numbers: fps, cfg NaN, steps bound, seed; every problem in one message", function()
  refused({fps = 0}, "fps must be a number of frames per second above 0")
  refused({fps = -8}, "got -8")
  refused({cfg = 0 / 0}, "cfg must be a number (not nan or inf)", "got nan")
  refused({cfg = math.huge}, "got inf")
  refused({steps = 1e9}, "steps must be an integer from 1 to 1000, got 1000000000")
  refused({steps = 2.5}, "got 2.5")
  refused({seed = -1}, "seed must be an integer")
  refused({width = 40}, "width must be a positive multiple of 16")
  local err = refused({fps = 0, cfg = 0 / 0, out = dir .. "/x.xyz"}, "fps", "cfg", "unknown extension")
  t.eq(select(2, err:gsub("; ", "")), 2, "three problems, one message: " .. err)
end)

t.test("prompts: invalid UTF-8 is the prompt's fault; a long prompt says what it drops", function()
  refused({prompt = "a red \255 circle"}, "the prompt is not valid UTF-8 (at byte 7)")
  refused({negative = "\192"}, "the negative prompt is not valid UTF-8")
  local notes = {}
  local note = zoe.note
  zoe.note = function(text) notes[#notes + 1] = text end
  local long = ("red "):rep(40)
  zoe.pipeline.text2video{model = model, prompt = long, steps = 1, seed = 1}
  zoe.note = note
  local n = model:count_tokens(long)
  t.ok(n > model.text_len)
  t.eq(notes[1], ("text2video: the prompt is %d tokens and tiny-random reads %d: the last %d tokens are dropped")
    :format(n, model.text_len, n - model.text_len))
end)

t.test("samplers are found as users spell them, and recorded by their own name", function()
  for spelled, name in pairs {["DPM++ 2M"] = "dpmpp_2m", ["dpm++ 2m sde"] = "dpmpp_2m_sde", ["Euler A"] = "euler_ancestral",
                              ["UniPC"] = "unipc", ["dpmpp-2m"] = "dpmpp_2m", ["euler_ancestral"] = "euler_ancestral"} do
    t.eq(select(2, zoe.sampler.get(spelled)), name, spelled)
  end
  local _, record = zoe.pipeline.text2video{model = model, prompt = "x", steps = 2, seed = 1, sampler = "DPM++ 2M"}
  t.eq(record.recipe.sampler, "dpmpp_2m")
  refused({sampler = "dpm 3m"}, "unknown sampler 'dpm 3m'")
end)

t.test("a run that cannot fit is refused with the estimate; one that fits runs", function()
  local available = check.available
  check.available = function() return 400e6 end
  refused({width = 512, height = 512, frames = 17}, "this run needs about", "more than the 0.4 GB this machine has available",
    "512x512, 17 frames")
  check.available = available
  refused({width = 4096, height = 4096, frames = 1000001}, "this run needs about")
  refused({width = 100000, height = 100000}, "this run needs about")
  local est = model:memory_estimate{width = 64, height = 64, frames = 5, cfg = 3}
  t.ok(est.bytes < 400e6, "a small run's estimate")
  zoe.pipeline.text2video{model = model, prompt = "x", steps = 1, seed = 1, width = 64, height = 64}
end)

-- The estimate against the peak a fresh process reaches (zoe-tiny at 256x256x17: decode
-- bound): within the 20% the calibration holds, with room for another machine's libraries.
t.test("the memory estimate is near the measured peak (zoe-tiny, 256x256x17)", function()
  local zoe_bin = os.getenv("ZOE_TEST_ZOE") or "bin/zoe"
  local script = dir .. "/peak.lua"
  local f = assert(io.open(script, "w"))
  f:write([[
    local zoe = require "zoe"
    zoe.pipeline.text2video{prompt = "a red circle", width = 256, height = 256, frames = 17, steps = 2, seed = 1}
    for line in io.lines("/proc/self/status") do
      local v = line:match("^VmHWM:%s+(%d+)")
      if v then print(v * 1024) end
    end
  ]])
  f:close()
  local p = io.popen(("'%s' --quiet '%s'"):format(zoe_bin, script))
  local peak = tonumber(p:read("a"))
  p:close()
  local est = zoe.models.load("zoe-tiny"):memory_estimate{width = 256, height = 256, frames = 17, cfg = 4}
  print(("# zoe-tiny 256x256x17: estimate %.0f MB, measured peak %.0f MB"):format(est.bytes / 2 ^ 20, peak / 2 ^ 20))
  t.ok(est.bytes > 0.6 * peak and est.bytes < 1.6 * peak, ("estimate %d vs peak %d bytes"):format(est.bytes, peak))
end)

t.test("weights holding NaN stop the run at its first step, with the likely cause", function()
  local bad = dir .. "-nan"
  assert(os.execute(("cp -r '%s' '%s'"):format(dir, bad)))
  local w = zoe.load(bad .. "/dit.safetensors")
  local all = {}
  for _, k in ipairs(w:keys()) do all[k] = w:get(k):clone() end
  all["head.head.weight"]:fill_(0 / 0)
  w = nil
  zoe.save(bad .. "/dit.safetensors", all)
  local steps = 0
  local err = t.raises(function()
    zoe.pipeline.text2video{model = bad, prompt = "x", seed = 1, steps = 3, out = bad .. "/nan.mp4",
      on_step = function() steps = steps + 1 end}
  end, "the first step's prediction holds NaN or Inf values: tiny-random's weights are likely damaged")
  t.eq(steps, 0, "stopped at the first step: " .. err)
  t.eq(io.open(bad .. "/nan.mp4"), nil, "no video")
  os.execute(("rm -rf '%s'"):format(bad))
end)

t.test("the time estimate: from the rates learned and kept, printed first for a long run", function()
  local est = require "zoe.estimate"
  local kind = ("decode:test-%d"):format(math.random(1, 1e9)) -- not one a run before kept
  est.learn(kind, 100, 2.0)
  t.near(est.rates()[kind], 2e7, 1e-9, "ns per unit")
  est.learn(kind, 100, 16.0) -- moves a third of the way, in log space
  t.near(est.rates()[kind], 2e7 * 2, 1e-9)
  local e = est.time {{stage = "decode", kind = kind, units = 50, count = 2},
                      {stage = "text", kind = "never-timed", units = 1e6, count = 1, flops_per_unit = 10}}
  t.near(e.stages.decode, 4.0, 1e-9)
  t.eq(e.rough, {"never-timed"})
  t.near(e.stages.text, 1e7 * est.ns_per_flop() / 1e9, 1e-9, "flops at this machine's product speed")
  t.eq(est.format(42), "42 s")
  t.eq(est.format(3725), "1 h 02 min")
  -- the run's own estimate, printed before it starts (every run counts as long here)
  local notes = {}
  local note, long = zoe.note, zoe.pipeline.ESTIMATE_NOTE_S
  zoe.note = function(text) notes[#notes + 1] = text end
  zoe.pipeline.ESTIMATE_NOTE_S = 0
  zoe.pipeline.text2video{model = model, prompt = "x", steps = 3, seed = 1}
  zoe.note, zoe.pipeline.ESTIMATE_NOTE_S = note, long
  t.ok(notes[1] and notes[1]:find("^text2video: about .- on this machine %(text .-, denoise 3 steps .-, decode .-%)"),
    tostring(notes[1]))
  local e2 = zoe.pipeline.estimate{model = model, prompt = "x", steps = 3, seed = 1}
  t.ok(e2.seconds > 0 and e2.stages.denoise > 0 and e2.bytes > 0 and e2.memory.decode > 0, "pipeline.estimate")
  t.eq(e2.rough, {}, "every kind timed by the run before")
  -- a DiT block's rate is learned by size class too, and that is the one the estimate reads
  local sized = 0
  for k in pairs(zoe.offload_rates()) do sized = sized + (k:match("^wan_block@%d+$") and 1 or 0) end
  t.ok(sized >= 1, "wan_block timed by size class")
end)

-- zoe-tiny's DiT blocks run several times slower per flop than Wan's: a rate timed at one
-- size serves sizes up to two classes (16x the cost) away, as a rough figure, and no further.
t.test("the time estimate takes an op's rate at the size the run calls it", function()
  local est = require "zoe.estimate"
  local kind = ("test_op_%d"):format(math.random(1, 1e9))
  local rates = est.rates
  est.rates = function() return {[kind .. "@10"] = 2.0, [kind .. "@6"] = 9.0, [kind] = 50} end
  local function time(units) return est.time {{stage = "denoise", kind = kind, units = units, count = 3, flops_per_unit = 1}} end
  local e = time(4 ^ 10 * 2)
  t.near(e.seconds, 3 * 2.0 * 4 ^ 10 * 2 / 1e9, 1e-9, "its own size class")
  t.eq(e.rough, {})
  e = time(4 ^ 12 * 2)
  t.near(e.seconds, 3 * 2.0 * 4 ^ 12 * 2 / 1e9, 1e-9, "the nearest class, two away")
  t.eq(e.rough, {kind})
  e = time(4 ^ 7)
  t.near(e.seconds, 3 * 9.0 * 4 ^ 7 / 1e9, 1e-9, "the nearer of two classes")
  e = time(4 ^ 14)
  est.rates = rates
  t.near(e.seconds, 3 * 4 ^ 14 * est.ns_per_flop() / 1e9, 1e-9, "four classes away: the products' speed, not a rate of another size")
  t.eq(e.rough, {kind})
  t.eq(est.size_class(4 ^ 17), 17)
  t.eq(est.size_class(4 ^ 18 - 1), 17)
end)

t.done()
