-- One guided denoise step of zoe-tiny (cond and uncond as one batch of two, as the pipeline
-- runs it) at the model's default size, with f32 products (the default) and with bf16 products
-- (zoe.precision "bf16"); prints the best of N and the peak RSS, in the form bench_tiny.sh reads.
-- usage: zoe bench/tiny_step.lua [MODEL] [REPS]
local zoe = require "zoe"
local T = zoe.tensor

local model = zoe.models.load(arg[1] or "zoe-tiny")
local reps = tonumber(arg[2]) or 20
local s = model.defaults
local kv = model:cross_kv(model:encode_text("a red circle moving right and a green triangle moving up on a white background"))
local kv0 = model:cross_kv(model:encode_text(""))
local z, f, h, w = table.unpack(model:latent_shape(s.frames, s.height, s.width))
local x = T.randn({z, f, h, w}, {seed = 1})
local xs = T.stack({x, x}, 1)
local den = model:denoiser()
local cfg = s.cfg or 4

local function step()
  local out = den(xs, 500.0, {kv, kv0})
  return out[2] + (out[1] - out[2]) * cfg
end
local function measure(precision)
  local _, before = zoe.precision(precision)
  step() -- warm up: weights paged in, caches built
  local best, total = math.huge, 0
  for _ = 1, reps do
    local t0 = zoe.uv.hrtime()
    step()
    local dt = (zoe.uv.hrtime() - t0) / 1e9
    best, total = math.min(best, dt), total + dt
  end
  zoe.precision(before)
  return best, total / reps
end

for _, precision in ipairs {"f32", "bf16"} do
  local best, mean = measure(precision)
  local hwm
  for line in io.lines("/proc/self/status") do hwm = hwm or tonumber(line:match("^VmHWM:%s+(%d+)")) end
  print(("zoe denoise step %dx%dx%d (batch 2), %s products: best %.2f ms, mean %.2f ms over %d; peak RSS %.0f MB"):format(
    s.width, s.height, s.frames, precision, best * 1e3, mean * 1e3, reps, hwm / 1024))
  print(("RESULT zoe_%s %.6f %.0f"):format(precision, best, hwm / 1024))
end
