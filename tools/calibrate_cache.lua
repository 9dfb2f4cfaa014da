-- Calibrates the step caches on a model from a few uncached runs and writes what they learn
-- beside the model (DIR/cache_calibration.json; lua/zoe/cache/calibration.lua says what):
--
--   bin/zoe tools/calibrate_cache.lua MODEL [--prompt TEXT]... [--steps N] [--out FILE]
--
-- Without --prompt, zoe-tiny uses the eight prompts below (from its world's grammar, none of
-- them held out for evaluation); other models need prompts. Each prompt is one run with the
-- model's default settings (seeds 1000, 1001, ...).
local zoe = require "zoe"
local calibration = require "zoe.cache.calibration"

local USAGE = "usage: bin/zoe tools/calibrate_cache.lua MODEL [--prompt TEXT]... [--steps N] [--out FILE]"

local TINY_PROMPTS = {
  "a red circle moving right on a white background",
  "a blue square moving up and a yellow triangle growing on a black background",
  "a green diamond shrinking on a beige background",
  "an orange triangle moving left and a cyan circle staying still on a navy background",
  "a purple square moving down on a gray background",
  "a pink circle growing and a green square moving right on a white background",
  "a yellow diamond moving up on a navy background",
  "a cyan triangle shrinking and a red diamond moving down on a black background",
}

local args = {...}
if #args == 0 and arg then args = arg end
local model_name, prompts, opts, out = nil, {}, {}, nil
local i = 1
while i <= #args do
  local a = args[i]
  if a == "--prompt" then
    prompts[#prompts + 1] = args[i + 1]
    i = i + 1
  elseif a == "--steps" then
    opts.steps = tonumber(args[i + 1])
    i = i + 1
  elseif a == "--out" then
    out = args[i + 1]
    i = i + 1
  elseif a:sub(1, 2) == "--" then
    error(("calibrate_cache: unknown option %s\n%s"):format(a, USAGE), 0)
  else
    model_name = a
  end
  i = i + 1
end
if not model_name then error(USAGE, 0) end
local model = zoe.models.load(model_name)
if #prompts == 0 then
  if model.name ~= "zoe-tiny" then error("calibrate_cache: give the prompts to calibrate on (--prompt TEXT)", 0) end
  prompts = TINY_PROMPTS
end
opts.on_prompt = function(k, n) io.stderr:write(("calibrated on %d/%d prompts\n"):format(k, n)) end
local cal = calibration.measure(model, prompts, opts)
local path = calibration.write(model, cal, out)
print(("%s: teacache polynomial from %d pairs (rms error %.4f), magcache norms over %d evaluations -> %s")
  :format(model.name, cal.teacache.samples, cal.teacache.rmse, #cal.magcache.norms.sigmas, path))
