-- Step caches on zoe-tiny: the wall time of denoising per setting against uncached, in one run,
-- interleaved (uncached, then each setting, round after round, on the same prompts and seeds),
-- median per setting; and the process CPU time, which a busy machine disturbs less.
--
--   bin/zoe bench/bench_cache.lua [ROUNDS] [SETTINGS]   (make bench runs it with 3 rounds)
--   SETTINGS: "teacache:0.1,0.2 first_block:0.2" (the SAMPLING.md table's by default)
local zoe = require "zoe"

local ROUNDS = tonumber(arg and arg[1] or "3")
local SETTINGS = arg and arg[2] or "teacache:0.1,0.2,0.4 magcache:0.02,0.05,0.1 easycache:0.1,0.2,0.4 first_block:0.1,0.2,0.3"
local PROMPTS = {
  {"a red circle moving right and a green square moving up on a white background", 11},
  {"an orange triangle growing on a navy background", 12},
  {"a blue diamond moving down and a yellow circle shrinking on a black background", 13},
}

local settings = {{id = "uncached"}}
for part in SETTINGS:gmatch("%S+") do
  local name, ths = part:match("^([%w_]+):(.+)$")
  for th in ths:gmatch("[^,]+") do settings[#settings + 1] = {id = name .. " " .. th, cache = name, th = tonumber(th)} end
end

local model = zoe.models.load("zoe-tiny")
model.text_cache = {}
local function load()
  local f = io.open("/proc/loadavg")
  local s = f and f:read("l") or "?"
  if f then f:close() end
  return s:match("^(%S+)") or s
end

-- denoising only: the sampler with the model's defaults, wired as the pipeline wires it (the
-- prompts encoded once), timed by the wall clock and by the process CPU time
local cache = require "zoe.cache"
local d = model.defaults
local shape = model:latent_shape(d.frames, d.height, d.width)
local conds = {}
for i, p in ipairs(PROMPTS) do
  conds[i] = {model:text_condition(zoe.prompt.encode(model, p[1]), zoe.prompt.encode(model, d.negative))}
end
local calibration = cache.calibration.load(model)
local function denoise(i, s)
  local policy = cache.policy(s.cache, s.th)
  local runner = policy and cache.runner(policy, {steps = d.steps, model = model, calibration = calibration})
  local mb = model:denoiser(nil, {around_blocks = runner and runner.around})
  if runner then mb = runner:wrap(mb, model.family) end
  zoe.sample{model_batch = mb, kind = model.kind, sampler = d.sampler, schedule = d.schedule, steps = d.steps,
             shift = d.shift, integer_timesteps = d.integer_timesteps, cfg = d.cfg, seed = PROMPTS[i][2],
             noise = zoe.tensor.randn(shape, {seed = PROMPTS[i][2]}), cond = conds[i][1], uncond = conds[i][2]}
  return runner and runner:stats().evaluations or 2 * d.steps
end
local function now() return zoe.uv.hrtime() / 1e9 end

local times = {}
for _, s in ipairs(settings) do times[s.id] = {wall = {}, cpu = {}, evaluations = 0} end
local load0 = load()
for round = 1, ROUNDS do
  for _, s in ipairs(settings) do
    local w0, c0, ev = now(), os.clock(), 0
    for i = 1, #PROMPTS do ev = ev + denoise(i, s) end
    table.insert(times[s.id].wall, now() - w0)
    table.insert(times[s.id].cpu, os.clock() - c0)
    times[s.id].evaluations = ev
  end
end

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end
local base = times.uncached
local bw, bc = median(base.wall), median(base.cpu)
print(("zoe-tiny, %d prompts x %d rounds, settings interleaved; load average %s before, %s after")
  :format(#PROMPTS, ROUNDS, load0, load()))
print("| setting | DiT evaluations per video | fewer evaluations | denoise wall (median) | faster (wall) | faster (CPU time) |")
print("|---|---|---|---|---|---|")
for _, s in ipairs(settings) do
  local t = times[s.id]
  local w, c = median(t.wall), median(t.cpu)
  print(("| %s | %.2f | %.2fx | %.3f s | %.2fx | %.2fx |"):format(s.id, t.evaluations / #PROMPTS,
    base.evaluations / t.evaluations, w / #PROMPTS, bw / w, bc / c))
end
