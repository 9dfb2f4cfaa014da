-- A step cache's wall-time speed-up on Wan2.1-T2V-1.3B at full size: a 20-step run uncached and
-- with the skip pattern a policy makes on zoe-tiny (the same evaluations skipped, laid on Wan by
-- zoe.cache.pattern), in one process, one after the other.
--
--   bin/zoe bench/cache_wan.lua CHECKPOINT_DIR [POLICY THRESHOLD] [WIDTH HEIGHT FRAMES]
--
-- On a random-weight checkpoint (tools/wan_random.py) only the time means anything: its
-- pictures are noise whether cached or not, so no quality is measured here.
local zoe = require "zoe"

local dir = arg[1] or error("usage: bin/zoe bench/cache_wan.lua CHECKPOINT_DIR [POLICY THRESHOLD] [W H F]", 0)
local policy, threshold = arg[2] or "teacache", tonumber(arg[3] or "0.2")
local W, H, F = tonumber(arg[4] or "320"), tonumber(arg[5] or "192"), tonumber(arg[6] or "17")
local STEPS = 20

local function now() return zoe.uv.hrtime() / 1e9 end
local function load()
  local f = io.open("/proc/loadavg")
  local s = f and f:read("l") or "?"
  if f then f:close() end
  return s:match("^(%S+)") or s
end

-- the pattern: what the policy skips on zoe-tiny in a 20-step run of its own
local _, tiny = zoe.pipeline.text2video{model = "zoe-tiny", prompt = "a red circle moving right on a white background",
  seed = 1, steps = STEPS, cache = policy, cache_threshold = threshold, preview = false}
local pattern = tiny.recipe.cache
print(("pattern: %s %g on zoe-tiny, %d steps: %.2f of %d evaluations; cond skips %s, uncond skips %s")
  :format(policy, threshold, STEPS, tiny.evaluations.evaluations, tiny.evaluations.uncached,
          zoe.json.encode(pattern.skipped.cond or {}), zoe.json.encode(pattern.skipped.uncond or {})))

local model = zoe.models.load(dir)
local spec = {model = model, prompt = "a red circle moving left", width = W, height = H, frames = F, steps = STEPS,
              seed = 1, preview = false}
model.text_cache = {}
local rows = {}
for _, run in ipairs {{name = "uncached"}, {name = "pattern", cache = zoe.cache.pattern(pattern)}} do
  local s = {}
  for k, v in pairs(spec) do s[k] = v end
  s.cache = run.cache
  -- the process CPU time of denoising: what a busy machine disturbs least
  local cpu0
  s.on_step = function(state)
    if state.step == 1 then cpu0 = os.clock() end -- (after step 1: the same uncached step in both runs)
    if state.step == STEPS then s.cpu = os.clock() - cpu0 end
  end
  local l0, t0 = load(), now()
  local _, rec = zoe.pipeline.text2video(s)
  rows[#rows + 1] = {name = run.name, total = now() - t0, denoise = rec.timings.denoise, load0 = l0, load1 = load(),
                     cpu = s.cpu, evaluations = rec.evaluations and rec.evaluations.evaluations or 2 * STEPS}
  io.stderr:write(("%s done\n"):format(run.name))
end
print(("Wan2.1 at %dx%dx%d, %d UniPC steps, guided (batch of 2), %s"):format(W, H, F, STEPS, dir))
print("| run | DiT evaluations | denoise s (wall) | steps 2-20, CPU s | whole run s | load average before, after |")
print("|---|---|---|---|---|---|")
for _, r in ipairs(rows) do
  print(("| %s | %.0f | %.1f | %.1f | %.1f | %s, %s |"):format(r.name, r.evaluations, r.denoise, r.cpu, r.total,
                                                             r.load0, r.load1))
end
print(("speed-up: %.2fx in evaluations, %.2fx denoising wall time, %.2fx CPU time of steps 2-20, %.2fx whole run")
  :format(rows[1].evaluations / rows[2].evaluations, rows[1].denoise / rows[2].denoise, rows[1].cpu / rows[2].cpu,
          rows[1].total / rows[2].total))
