-- make bench-ltx: LTX-Video 2B at full size on random weights (tools/ltx_random.py, the
-- diffusers layout), stage by stage: one transformer forward at 512x320x65 (9x10x16 latent,
-- 1440 tokens) without and with guidance, the VAE decode of that clip, T5 v1.1 XXL on a
-- 40-token prompt, and the whole pipeline at 704x512x161 estimated from parts measured at
-- full size (a guided block at 7392 tokens, a decode of 17 frames at 704x512, the pipeline
-- run whole at 512x320x65).
-- usage: zoe bench/ltx.lua CHECKPOINT_DIR [stage ...]   (stages: transformer vae t5 full)
local zoe = require "zoe"
local T = zoe.tensor

local dir = arg[1] or "build/ltx-random/diffusers"
local want = {}
for i = 2, #arg do want[arg[i]] = true end
local all = next(want) == nil

local function now() return zoe.uv.hrtime() / 1e9 end
local function status(field)
  for line in io.lines("/proc/self/status") do
    local v = line:match("^" .. field .. ":%s+(%d+)")
    if v then return tonumber(v) * 1024 end
  end
end
local function reset_peak()
  local f = io.open("/proc/self/clear_refs", "w")
  if f then f:write("5") f:close() end
end
local function gb(b) return b / 2 ^ 30 end
local function load_avg()
  local f = io.open("/proc/loadavg")
  local s = f and f:read("l") or "?"
  if f then f:close() end
  return s:match("^(%S+ %S+ %S+)") or s
end

local model = zoe.models.load(dir)
print(("zoe bench-ltx: %s (LTX-Video %s), %d threads, gemm %s"):format(dir, model.version, zoe.threads(),
  zoe.gemm_backend and zoe.gemm_backend() or "openblas"))
local results = {}
local function row(name, seconds, flop, rss, key)
  if key then
    print(("RESULT %s %.4f"):format(key, seconds))
    results[key] = seconds
  end
  print(("%-44s %8.2f s %s %s  (load %s)"):format(name, seconds, flop and ("%6.1f GFLOP/s"):format(flop / seconds / 1e9) or "",
    rss and ("peak RSS %.2f GB"):format(gb(rss)) or "", load_avg()))
end

-- one forward's FLOPs: projections and feed-forward, self-attention, cross-attention
local D, LAYERS, LC = 2048, 28, 64
local function forward_flop(L, B)
  return B * LAYERS * (2 * L * D * (4 * D + 2 * 4 * D + 2 * D) + 4 * L * L * D + 4 * L * LC * D)
end

-- the transformer runs at the checkpoint's precision (bf16 weights: bf16 products), as the pipeline runs it
local _, before = zoe.precision(model.precision or "auto")
local tr = model:transformer()
local kv1 = tr.cross_kv(T.randn({1, LC, 4096}, {seed = 1}))
local kv2 = tr.cross_kv(T.randn({2, LC, 4096}, {seed = 1}))

if all or want.transformer then
  local grid = {9, 10, 16}
  local x = T.randn({1, 1440, 128}, {seed = 2})
  local opts = {grid = grid, rope_scale = {8 / 25, 32, 32}}
  tr.forward(x, 500, kv1, opts) -- page the weights in
  reset_peak()
  local t0 = now()
  tr.forward(x, 500, kv1, opts)
  row("transformer forward 512x320x65 (1440 tokens)", now() - t0, forward_flop(1440, 1), status("VmHWM"), "transformer")
  t0 = now()
  tr.forward(T.cat({x, x}, 1), 500, kv2, opts)
  row("  the same with guidance (batch 2)", now() - t0, forward_flop(1440, 2), status("VmHWM"))
end
zoe.precision(before)

if all or want.vae then
  local vae = model:vae()
  vae.generator = T.generator(3)
  local z = T.randn({1, 128, 9, 10, 16}, {seed = 4})
  reset_peak()
  local t0 = now()
  local video = vae:decode(z, {timestep = model.decode_timestep})
  row("VAE decode 512x320x65", now() - t0, nil, status("VmHWM"), "vae")
  assert(video:size(3) == 65 and video:size(4) == 320 and video:size(5) == 512)
end

if all or want.t5 or want.full then
  local ids = T.cat({T.arange(100, 138, "i32"), T.tensor({1}, "i32")})
  local enc = model:text_encoder()
  enc(ids:unsqueeze(1), T.ones({1, 39}, "i32")) -- page in
  reset_peak()
  local dt = math.huge
  for _ = 1, 3 do
    local t0 = now()
    enc(ids:unsqueeze(1), T.ones({1, 39}, "i32"))
    dt = math.min(dt, now() - t0)
  end
  row("T5 v1.1 XXL, 39-token prompt (streamed)", dt, nil, status("VmHWM"), "t5")
  model:release_text_encoder()
end

if all or want.full then
  -- the pipeline whole at 512x320x65, 2 steps: the peak of text + denoise and of decode + write
  local function pipeline(w, h, f)
    collectgarbage()
    zoe.mem_trim()
    reset_peak()
    local denoise_peak
    local release = model.release_denoiser
    model.release_denoiser = function(self)
      denoise_peak = status("VmHWM")
      release(self)
      reset_peak()
    end
    local tmp = os.tmpname()
    local t0 = now()
    zoe.pipeline.text2video{model = model, prompt = "a red ball on the grass", width = w, height = h, frames = f,
      steps = 2, seed = 1, release_text_encoder = true, out = tmp .. ".mp4"}
    local total = now() - t0
    model.release_denoiser = release
    local decode_peak = status("VmHWM")
    for _, p in ipairs {tmp, tmp .. ".mp4", tmp .. ".json"} do os.remove(p) end
    row(("whole pipeline %dx%dx%d, 2 steps"):format(w, h, f), total, nil, math.max(denoise_peak, decode_peak))
    print(("%-44s text + denoise %.2f GB, decode + write %.2f GB"):format("", gb(denoise_peak), gb(decode_peak)))
    return denoise_peak, decode_peak
  end
  local small_denoise = pipeline(512, 320, 65)
  -- one guided block at 1440 and at 7392 tokens (the activations every block needs)
  local _, prec = zoe.precision(model.precision or "auto")
  tr = model:transformer()
  kv2 = tr.cross_kv(T.randn({2, LC, 4096}, {seed = 1}))
  local temb = tr.time({500, 500})
  local function block(grid)
    local L = grid[1] * grid[2] * grid[3]
    local x = T.randn({2, L, D}, {seed = 5})
    local cos, sin = tr.rope(grid, {8 / 25, 32, 32})
    collectgarbage()
    zoe.mem_trim()
    tr.block(1, x:narrow(2, 1, 64), temb, nil, 0, kv2, cos:narrow(1, 1, 64), sin:narrow(1, 1, 64)) -- page in
    reset_peak()
    local t0 = now()
    tr.block(1, x, temb, nil, 0, kv2, cos, sin)
    local dt = now() - t0
    row(("one guided transformer block, %d tokens"):format(L), dt, forward_flop(L, 2) / LAYERS, status("VmHWM"))
    return dt, status("VmHWM")
  end
  local _, small_block = block({9, 10, 16})
  local step, big_block = block({21, 16, 22})
  step = step * LAYERS
  zoe.precision(prec)
  model:release_denoiser()
  -- the decode at full frame size, 17 frames (3 latent frames), streamed
  collectgarbage()
  zoe.mem_trim()
  local vae = model:vae()
  vae.generator = T.generator(3)
  reset_peak()
  local t0 = now()
  vae:decode(T.randn({1, 128, 3, 16, 22}, {seed = 6}), {timestep = model.decode_timestep, on_frames = function() end})
  local dec17 = now() - t0
  local dec17_peak = status("VmHWM")
  row("VAE decode 704x512, 17 frames", dec17, nil, dec17_peak)
  -- 161 frames: the stream's stages hold the same few frames; the output grows by 144 frames of
  -- f32 [3, T, 512, 704] (once as chunks, once joined)
  local decode_full = dec17_peak + 2 * 3 * 144 * 512 * 704 * 4
  local denoise_full = small_denoise + big_block - small_block
  local steps = model.defaults.steps
  local t5 = results.t5 or 0
  local total = t5 + steps * step + dec17 * 161 / 17
  print(("%-44s estimated %.0f s (%.1f h): T5 %.1f s, %d guided steps of %.0f s (28 blocks at 7392 tokens), decode %.0f s"):format(
    "whole pipeline 704x512x161", total, total / 3600, t5, steps, step, dec17 * 161 / 17))
  print(("%-44s estimated peak RSS %.2f GB: text + denoise %.2f, decode + write %.2f (target <= 10 GB)"):format(
    "", gb(math.max(denoise_full, decode_full)), gb(denoise_full), gb(decode_full)))
end
