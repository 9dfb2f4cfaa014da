-- make bench-wan: Wan2.1-T2V-1.3B at full size on random weights in the official layout
-- (tools/wan_random.py), stage by stage: umT5-XXL on a 40-token prompt, a DiT step at
-- 320x192x17 (1200 tokens) with and without guidance (GFLOP/s over the sgemm ceiling
-- measured in this run), the VAE decode of 17 frames, long sequences (attention at 4590 to
-- 32760 tokens over the bf16 GEMM, a guided block at 32760, the decode at 832x480 tiled and
-- whole), and the peak RSS of the whole pipeline at 320x192x17 and 480x272x33, and at
-- 832x480x81 estimated with its time a step from one guided DiT block and one decode
-- measured at full size.
-- usage: zoe bench/wan.lua CHECKPOINT_DIR [stage ...]   (stages: t5 dit vae long pipeline)
local zoe = require "zoe"
local T = zoe.tensor

local dir = arg[1] or "build/wan-random"
local want = {}
for i = 2, #arg do want[arg[i]] = true end
local all = next(want) == nil

local function now() return zoe.uv.hrtime() / 1e9 end
local ROPE_PAIRS = require("zoe.arch.wan").rope_pairs(128) -- Wan2.1-1.3B: 12 heads of 128

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

-- Long sequences, the sizes of Wan's own 832x480x81 (32760 tokens): self-attention alone
-- (12 heads of 128) against the bf16 GEMM measured just before it (a DiT projection at
-- 4590 tokens, best of 3; the machine's speed drifts, so each ratio has its own), one
-- guided DiT block, and the VAE decode at 832x480 tiled and untiled. Kept for the pipeline
-- stage's estimate at 832x480x81.
local long = {}
if all or want.long then
  local _, before = zoe.precision(model.precision or "auto")
  -- rates in wall-clock time and in CPU time (both threads' seconds, os.clock): on a machine
  -- shared with other work the wall clock moves with the load, the CPU-time ratio much less
  local function gemm_rate()
    local x, w = T.randn({4590, 1536}, {seed = 1}), T.randn({1536, 1536}, {seed = 2}):to(model.precision == "bf16" and "bf16" or "f32")
    local best, cpu = math.huge, math.huge
    for _ = 1, 3 do
      local t0, c0 = now(), os.clock()
      zoe.nn.linear(x, w)
      best, cpu = math.min(best, now() - t0), math.min(cpu, os.clock() - c0)
    end
    local flop = 2 * 4590 * 1536 * 1536
    return flop / best / 1e9, flop / cpu / 1e9
  end
  print(("%-40s %s"):format("long sequences, " .. zoe.precision() .. " products", "load " .. io.popen("cut -d' ' -f1-3 /proc/loadavg"):read("l")))
  for _, L in ipairs {4590, 15000, 32760} do
    local q, k, v = T.randn({1, L, 12, 128}, {seed = 3}), T.randn({1, L, 12, 128}, {seed = 4}), T.randn({1, L, 12, 128}, {seed = 5})
    local rate, cpu_rate = gemm_rate()
    local reps, dt, cpu = L > 20000 and 1 or L > 10000 and 2 or 3, math.huge, math.huge
    for _ = 1, reps do
      local t0, c0 = now(), os.clock()
      zoe.nn.attention(q, k, v)
      dt, cpu = math.min(dt, now() - t0), math.min(cpu, os.clock() - c0)
    end
    local flop = 4 * L * L * 1536
    local gf, cgf = flop / dt / 1e9, flop / cpu / 1e9
    rows[#rows + 1] = ("%-40s %8.2f s %7.1f GFLOP/s (GEMM %5.1f: %.2f); per CPU s %5.1f (GEMM %5.1f: %.2f)"):format(
      ("self-attention %d tokens, 12x128"):format(L), dt, gf, rate, gf / rate, cgf, cpu_rate, cgf / cpu_rate)
    print(rows[#rows])
  end
  do -- the same at 4590 tokens with f32 products (OpenBLAS tiles: the attention of the 118.6 s block)
    local q = T.randn({1, 4590, 12, 128}, {seed = 3})
    local _, prec = zoe.precision("auto")
    local t0 = now()
    zoe.nn.attention(q, q, q)
    local dt = now() - t0
    zoe.precision(prec)
    rows[#rows + 1] = ("%-40s %8.2f s %7.1f GFLOP/s"):format("self-attention 4590 tokens, f32 tiles", dt,
      4 * 4590 * 4590 * 1536 / dt / 1e9)
    print(rows[#rows])
  end
  -- one guided block (batch 2) at 32760 tokens, as a step runs each of the 30
  local dit = model:dit()
  local kv = dit.cross_kv({T.randn({40, 4096}, {seed = 3}), T.randn({20, 4096}, {seed = 4})})
  local _, e0 = dit.time(T.tensor({500, 500}))
  local x = T.randn({2, 32760, 1536}, {seed = 5})
  collectgarbage()
  zoe.mem_trim()
  reset_peak()
  local t0, c0 = now(), os.clock()
  zoe.nn.wan_block(x, e0, dit.blocks[1], {heads = 12, eps = 1e-6, grid = {21, 30, 52}, rope_pairs = ROPE_PAIRS,
    cross_k = kv[1][1], cross_v = kv[1][2]})
  long.block, long.block_peak = now() - t0, status("VmHWM")
  row("one guided DiT block, 32760 tokens", long.block, nil, long.block_peak)
  -- 5.5 TFLOP of products and 13.4 of attention (self and cross)
  local cpu = os.clock() - c0
  long.block_cpu = cpu
  rows[#rows + 1] = ("%-40s %8.2f CPU s over %d threads: %.2f s if the cores were its own"):format("", cpu,
    zoe.threads(), cpu / zoe.threads())
  print(rows[#rows])
  x, kv, e0, dit = nil, nil, nil, nil
  zoe.precision(before)
  model:release_denoiser()
  -- the VAE decode at 832x480 on 17 frames: in the tiles the pipeline picks, then whole
  local vae, z = model:vae(), T.randn({16, 5, 60, 104}, {seed = 6})
  local tile = model:decode_tile(z:shape())
  local function available()
    for line in io.lines("/proc/meminfo") do
      local kb = line:match("^MemAvailable:%s+(%d+)")
      if kb then return tonumber(kb) * 1024 end
    end
  end
  for _, t in ipairs(tile and {tile, false} or {false}) do
    collectgarbage()
    zoe.mem_trim()
    -- whole, it peaks near 10.5 GB: on a machine shared with other work, only when that is free
    if not t and available() < 12 * 2 ^ 30 then
      rows[#rows + 1] = ("%-40s skipped: %.1f GB available, it needs about 11"):format("VAE decode 832x480x17, whole",
        gb(available()))
      print(rows[#rows])
      break
    end
    reset_peak()
    t0 = now()
    local video = vae:decode(z, model.latent.mean, model.latent.std, {tile = t or nil})
    local dt, peak = now() - t0, status("VmHWM")
    assert(video:size(2) == 17)
    video = nil
    if t then long.tiled_decode, long.tiled_peak = dt, peak end
    row(t and ("VAE decode 832x480x17, tiles %dx%d"):format(t[1] * 8, t[2] * 8) or "VAE decode 832x480x17, whole", dt, nil, peak)
  end
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
  -- 832x480x81 whole is half an hour a step here. Its denoise part is estimated as the
  -- pipeline's at 480x272x33 plus what one guided DiT block needs more at full size (every
  -- block needs the same activations; measured at both sizes, 4590 and 32760 tokens, at the
  -- precision the pipeline runs the DiT at), and a step as 30 such blocks ...
  collectgarbage()
  zoe.mem_trim()
  local _, before = zoe.precision(model.precision or "auto")
  local dit = model:dit()
  local kv = dit.cross_kv({T.randn({40, 4096}, {seed = 3}), T.randn({20, 4096}, {seed = 4})})
  local _, e0 = dit.time(T.tensor({500, 500}))
  local function block(grid)
    local x = T.randn({2, grid[1] * grid[2] * grid[3], 1536}, {seed = 5})
    collectgarbage()
    zoe.mem_trim()
    reset_peak()
    local t0, c0 = now(), os.clock()
    zoe.nn.wan_block(x, e0, dit.blocks[1], {heads = 12, eps = 1e-6, grid = grid, rope_pairs = ROPE_PAIRS,
      cross_k = kv[1][1], cross_v = kv[1][2]})
    local dt, peak = now() - t0, status("VmHWM")
    row(("one guided DiT block, %d tokens"):format(grid[1] * grid[2] * grid[3]), dt, nil, peak)
    return peak, dt, os.clock() - c0
  end
  local block_mid = block({9, 17, 30})
  local block_full, block_time, block_cpu = long.block_peak, long.block, long.block_cpu
  if not block_full then block_full, block_time, block_cpu = block({21, 30, 52}) end
  local denoise_full = mid + block_full - block_mid
  kv, e0, dit = nil, nil, nil
  zoe.precision(before)
  model:release_denoiser()
  -- ... and the decode part as the pipeline's tiled decode at full frame size on 17 frames,
  -- plus what grows with the other 64 frames: the result and its clamped copy (f32 [3, T,
  -- H, W]), the decoder's latent-size part (384 channels a latent frame) and a tile's
  -- output over every frame three times (decoded, joined, weighted)
  local tile = model:decode_tile({16, 21, 60, 104})
  local tiled_peak, tiled_time = long.tiled_peak, long.tiled_decode
  if not tiled_peak then
    collectgarbage()
    zoe.mem_trim()
    reset_peak()
    local t0 = now()
    model:vae():decode(T.randn({16, 5, 60, 104}, {seed = 6}), model.latent.mean, model.latent.std, {tile = tile or nil})
    tiled_peak, tiled_time = status("VmHWM"), now() - t0
    row("VAE decode 832x480x17, as the pipeline", tiled_time, nil, tiled_peak)
  end
  local frame = 3 * 480 * 832 * 4
  local per_frame = 2 * frame + 384 * 60 * 104 * 4 / 4 + (tile and 3 * 3 * tile[1] * tile[2] * 64 * 4 or frame)
  local decode_full = tiled_peak + (81 - 17) * per_frame
  rows[#rows + 1] = ("%-40s estimated peak RSS %.2f GB: denoise %.2f, decode %.2f (target <= 16 GB)"):format(
    "whole pipeline 832x480x81", gb(math.max(denoise_full, decode_full)), gb(denoise_full), gb(decode_full))
  print(rows[#rows])
  rows[#rows + 1] = ("%-40s estimated %.1f min a guided step (30 blocks of %.1f s; %.1f min by CPU time on %d threads), decode %.1f min"):format(
    "", 30 * block_time / 60, block_time, 30 * block_cpu / zoe.threads() / 60, zoe.threads(), tiled_time * 81 / 17 / 60)
  print(rows[#rows])
end
