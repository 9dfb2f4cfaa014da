-- make bench-wan: Wan2.1-T2V-1.3B at full size on random weights in the official layout
-- (tools/wan_random.py), stage by stage: umT5-XXL on a 40-token prompt, a DiT step at
-- 320x192x17 (1200 tokens) with and without guidance (GFLOP/s over the sgemm ceiling
-- measured in this run), the VAE decode of 17 frames, and the peak RSS of the whole
-- pipeline at 320x192x17 and 480x272x33, and at 832x480x81 estimated from one guided DiT
-- block and one decode measured at full size.
-- usage: zoe bench/wan.lua CHECKPOINT_DIR [stage ...]   (stages: t5 dit vae pipeline)
local zoe = require "zoe"
local T = zoe.tensor

local dir = arg[1] or "build/wan-random"
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

local function sgemm_ceiling()
  local a, b = T.randn({1200, 1536}, {seed = 1}), T.randn({1536, 1536}, {seed = 2})
  local out = T.empty(1200, 1536)
  local best = math.huge
  for _ = 1, 5 do
    local t0 = now()
    T.matmul(a, b, out)
    best = math.min(best, now() - t0)
  end
  return 2 * 1200 * 1536 * 1536 / best / 1e9
end

local model = zoe.models.load(dir)
print(("zoe bench-wan: %s, %d threads, gemm %s, OPENBLAS_CORETYPE=%s"):format(dir, zoe.threads(),
  zoe.gemm_backend and zoe.gemm_backend() or "openblas", os.getenv("OPENBLAS_CORETYPE") or "unset"))
local ceil = sgemm_ceiling()
print(("sgemm ceiling (1200x1536x1536): %.1f GFLOP/s"):format(ceil))
local rows = {}
-- key: the stage's name in the RESULT line that bench/bench_wan.sh compares with PyTorch's
local function row(name, seconds, flop, rss, key)
  if key then print(("RESULT %s %.4f"):format(key, seconds)) end
  local gf = flop and flop / seconds / 1e9
  rows[#rows + 1] = ("%-40s %8.2f s %s %s"):format(name, seconds,
    gf and ("%7.1f GFLOP/s (%.2f of sgemm)"):format(gf, gf / ceil) or (" "):rep(29),
    rss and ("peak RSS %.2f GB"):format(gb(rss)) or "")
  print(rows[#rows])
end

-- the text encoder and the DiT run at the checkpoint's precision, as the pipeline runs
-- them (bf16 weights: every product of some size in bf16, attention's too); the VAE after
-- them as its weights are
local _, precision_before = zoe.precision(model.precision or "auto")

if all or want.t5 then
  -- 40 real tokens: the encoder never sees padding (Wan masks it)
  local ids = T.arange(100, 139, "i32")
  ids = T.cat({ids, T.tensor({1}, "i32")})
  local enc = model:text_encoder()
  enc(ids:unsqueeze(1), T.ones({1, 40}, "i32")) -- page the weights in
  reset_peak()
  -- a prompt takes 1.3 s: best of 3 (the PyTorch side does the same), since the first
  -- seconds after the checkpoint is read from disk vary by 20% here
  local dt, out = math.huge, nil
  for _ = 1, 3 do
    local t0 = now()
    out = enc(ids:unsqueeze(1), T.ones({1, 40}, "i32"))
    dt = math.min(dt, now() - t0)
  end
  local flop = 2 * 40 * (24 * (4 * 4096 * 4096 + 3 * 4096 * 10240)) + 24 * 4 * 40 * 40 * 4096
  row("umT5-XXL, 40-token prompt", dt, flop, status("VmHWM"), "t5")
  assert(out:size(2) == 40)
  model:release_text_encoder()
end

if all or want.dit then
  local dit = model:dit()
  local ctx = T.randn({40, 4096}, {seed = 3})
  local null = T.randn({20, 4096}, {seed = 4})
  local kv1 = dit.cross_kv({ctx})
  local kv2 = dit.cross_kv({ctx, null})
  local x = T.randn({16, 5, 24, 40}, {seed = 5})
  -- one block's FLOPs at 1200 tokens (text keys cached): linears, self- and cross-attention
  local L, D, F, LC = 1200, 1536, 8960, 512
  local flop = 30 * (2 * L * (6 * D * D + 2 * D * F) + 4 * L * L * D + 4 * L * LC * D)
  dit.forward({x}, 500, kv1) -- page the weights in
  reset_peak()
  local t0 = now()
  dit.forward({x}, 500, kv1)
  row("DiT step 320x192x17, no guidance", now() - t0, flop, status("VmHWM"), "dit")
  t0 = now()
  dit.forward({x, x}, 500, kv2)
  row("DiT step 320x192x17, with guidance", now() - t0, 2 * flop, status("VmHWM"))
end

zoe.precision(precision_before)

if all or want.vae then
  local vae = model:vae()
  local z = T.randn({16, 5, 24, 40}, {seed = 6})
  reset_peak()
  local t0 = now()
  local video = vae:decode(z, model.latent.mean, model.latent.std)
  row("VAE decode, 17 frames at 320x192", now() - t0, nil, status("VmHWM"), "vae")
  assert(video:size(2) == 17)
end

if all or want.pipeline then
  -- the whole pipeline at two sizes: its peak, and the peak of each part (text + denoise,
  -- then decode + write: the DiT's pages are given back in between)
  local function run(w, h, f)
    collectgarbage()
    zoe.mem_trim()
    reset_peak()
    local t0, denoise_peak = now(), nil
    local tmp = os.tmpname()
    zoe.pipeline.text2video{model = model, prompt = "a red circle moving left", width = w, height = h,
      frames = f, steps = 2, seed = 1, release_text_encoder = true, out = tmp .. ".mp4",
      on_step = function(state)
        if state.step == state.steps then denoise_peak = status("VmHWM") end
      end}
    local decode_peak = status("VmHWM")
    os.remove(tmp)
    os.remove(tmp .. ".mp4")
    os.remove(tmp .. ".json")
    local peak = math.max(denoise_peak, decode_peak)
    row(("whole pipeline %dx%dx%d, 2 steps"):format(w, h, f), now() - t0, nil, peak)
    print(("%-40s text + denoise %.2f GB, decode + write %.2f GB"):format("", gb(denoise_peak), gb(decode_peak)))
    return denoise_peak
  end
  -- the decode's own peak starts once the DiT has given its pages back
  local release = model.release_denoiser
  model.release_denoiser = function(self)
    release(self)
    reset_peak()
  end
  run(320, 192, 17)
  local mid = run(480, 272, 33)
  -- 832x480x81 whole is an hour of attention here. Its denoise part is estimated as the
  -- pipeline's at 480x272x33 plus what one guided DiT block needs more at full size (every
  -- block needs the same activations; measured at both sizes, 4590 and 32760 tokens) ...
  collectgarbage()
  zoe.mem_trim()
  local dit = model:dit()
  local kv = dit.cross_kv({T.randn({40, 4096}, {seed = 3}), T.randn({20, 4096}, {seed = 4})})
  local _, e0 = dit.time(T.tensor({500, 500}))
  local function block(grid)
    local x = T.randn({2, grid[1] * grid[2] * grid[3], 1536}, {seed = 5})
    collectgarbage()
    zoe.mem_trim()
    reset_peak()
    local t0 = now()
    zoe.nn.wan_block(x, e0, dit.blocks[1], {heads = 12, eps = 1e-6, grid = grid, cross_k = kv[1][1], cross_v = kv[1][2]})
    local peak = status("VmHWM")
    row(("one guided DiT block, %d tokens"):format(grid[1] * grid[2] * grid[3]), now() - t0, nil, peak)
    return peak
  end
  local block_mid = block({9, 17, 30})
  local denoise_full = mid + block({21, 30, 52}) - block_mid
  kv, e0, dit = nil, nil, nil
  -- ... and the decode part as a decode at full frame size on 9 frames, plus the other 72 frames
  -- of output (f32 [3, T, H, W], once as chunks and once joined)
  collectgarbage()
  zoe.mem_trim()
  reset_peak()
  local vae = model:vae()
  local t0 = now()
  vae:decode(T.randn({16, 3, 60, 104}, {seed = 6}), model.latent.mean, model.latent.std)
  local decode9 = status("VmHWM")
  row("VAE decode 832x480, 9 frames", now() - t0, nil, decode9)
  local decode_full = decode9 + 2 * 3 * (81 - 9) * 480 * 832 * 4
  rows[#rows + 1] = ("%-40s estimated peak RSS %.2f GB: denoise %.2f, decode %.2f (target <= 16 GB)"):format(
    "whole pipeline 832x480x81", gb(math.max(denoise_full, decode_full)), gb(denoise_full), gb(decode_full))
  print(rows[#rows])
end
