-- make bench-cogvideox: CogVideoX-2B at full size on random weights in the diffusers layout
-- (tools/cogvideox_random.py), stage by stage: T5-XXL on one prompt (226 tokens, as the
-- pipeline pads it), one transformer forward at 320x192x17 (1200 video tokens + 226 text), the
-- VAE decode of 17 frames, and the peak RSS of the whole pipeline at 320x192x17 and, estimated
-- from parts measured at full size, at 720x480x49.
-- usage: zoe bench/cogvideox.lua MODEL_DIR [stage ...]   (stages: t5 dit vae pipeline)
local zoe = require "zoe"
local T = zoe.tensor

local dir = arg[1] or "../cogvideox-random/CogVideoX-2b"
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

local model = zoe.models.load(dir)
print(("zoe bench-cogvideox: %s (%s), %d threads, OPENBLAS_CORETYPE=%s"):format(dir, model.variant, zoe.threads(),
  os.getenv("OPENBLAS_CORETYPE") or "unset"))
local function row(name, seconds, flop, rss, key)
  if key then print(("RESULT %s %.4f"):format(key, seconds)) end
  print(("%-44s %8.2f s %s %s"):format(name, seconds, flop and ("%7.1f GFLOP/s"):format(flop / seconds / 1e9) or (" "):rep(14),
    rss and ("peak RSS %.2f GB"):format(gb(rss)) or ""))
end

local tc = model.tcfg
local D, E = tc.num_attention_heads * tc.attention_head_dim, tc.time_embed_dim
-- one forward's FLOPs at S tokens (L video): q, k, v, o, the feed-forward, attention, the patch
-- and text projections
local function forward_flop(S, L)
  return tc.num_layers * (2 * S * (4 * D * D + 8 * D * D) + 4 * S * S * D) + 2 * 226 * 4096 * D + 2 * L * 64 * D
end

local _, precision_before = zoe.precision(model.precision or "auto")

if all or want.t5 then
  local enc = model:text_encoder()
  local ids = T.tensor(model:tokenizer():encode("a red circle moving left on a white background", {length = 226}):totable(), "i32")
  enc(ids:unsqueeze(1)) -- page the weights in
  reset_peak()
  local dt = math.huge
  for _ = 1, 3 do -- best of 3 (the PyTorch side does the same)
    local t0 = now()
    local out = enc(ids:unsqueeze(1))
    dt = math.min(dt, now() - t0)
    assert(out:size(2) == 226)
  end
  local flop = 24 * (2 * 226 * (4 * 4096 * 4096 + 3 * 4096 * 10240) + 4 * 226 * 226 * 4096)
  row("T5-XXL, one prompt (226 tokens, streamed)", dt, flop, status("VmHWM"), "t5")
  model:release_text_encoder()
end

if all or want.dit then
  local tr = model:transformer()
  local x = T.randn({1, 5, 16, 24, 40}, {seed = 5})
  local text = T.randn({1, 226, 4096}, {seed = 3})
  tr.forward(x, T.tensor({500}), text) -- page the weights in
  reset_peak()
  local dt = math.huge
  for _ = 1, 2 do
    local t0 = now()
    tr.forward(x, T.tensor({500}), text)
    dt = math.min(dt, now() - t0)
  end
  row("transformer forward 320x192x17 + 226 text", dt, forward_flop(1426, 1200), status("VmHWM"), "dit")
  model:release_denoiser()
end

zoe.precision(precision_before)

if all or want.vae then
  local vae = model:vae()
  local z = T.randn({16, 5, 24, 40}, {seed = 6})
  vae:decode(T.randn({16, 1, 24, 40}, {seed = 7})) -- map the weights
  reset_peak()
  local t0 = now()
  local video = vae:decode(z, {tiling = false})
  row("VAE decode, 17 frames at 320x192", now() - t0, nil, status("VmHWM"), "vae")
  assert(video:size(2) == 17)
end

if all or want.pipeline then
  -- the whole pipeline: its peak, and the peak of each part (text + denoise, then decode + write)
  local release = model.release_denoiser
  model.release_denoiser = function(self)
    release(self)
    reset_peak() -- the decode's own peak starts once the transformer has given its pages back
  end
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
    for _, p in ipairs {tmp, tmp .. ".mp4", tmp .. ".json"} do os.remove(p) end
    row(("whole pipeline %dx%dx%d, 2 steps"):format(w, h, f), now() - t0, nil, math.max(denoise_peak, decode_peak))
    print(("%-44s text + denoise %.2f GB, decode + write %.2f GB"):format("", gb(denoise_peak), gb(decode_peak)))
    return denoise_peak, decode_peak
  end
  local denoise_small = run(320, 192, 17)
  model.release_denoiser = release
  -- 720x480x49 whole is hours here. Its denoise part is estimated as the pipeline's at 320x192x17
  -- plus what one guided block needs more at 17550 + 226 tokens than at 1200 + 226 (every block
  -- needs the same activations) ...
  local tr = model:transformer()
  local emb = tr.time(T.tensor({500, 500})):silu()
  local roles = {}
  local function block(F, h, w)
    local L = F * (h // 2) * (w // 2)
    local x = T.randn({2, 226 + L, D}, {seed = 5})
    local cos, sin = tr.rope(F, h * 8, w * 8)
    collectgarbage()
    zoe.mem_trim()
    reset_peak()
    local t0 = now()
    zoe.nn.cogvideox_block(x, emb, roles[1], {heads = tc.num_attention_heads, text = 226, eps = tc.norm_eps or 1e-5,
      rope_cos = cos, rope_sin = sin})
    local peak = status("VmHWM")
    row(("one guided transformer block, %d + 226 tokens"):format(L), now() - t0, nil, peak)
    return peak
  end
  roles[1] = tr.roles and tr.roles[1] or error("bench: the transformer does not expose its block roles")
  local denoise_full = denoise_small + block(13, 60, 90) - block(5, 24, 40)
  tr, emb = nil, nil
  model:release_denoiser()
  -- ... and the decode part as one tile's first frame batch (tiles are decoded one after the
  -- other, each through every frame batch; the first batch, 3 latent frames to 9, is the
  -- largest), plus the whole video's output (f32 [3, 49, 480, 720]: the tiles' decoded and
  -- blended copies and the joined one)
  collectgarbage()
  zoe.mem_trim()
  reset_peak()
  local vae = model:vae()
  local lh, lw = vae:tile_steps()
  local t0 = now()
  vae:decode(T.randn({16, 3, lh, lw}, {seed = 6}), {tiling = false})
  local tile = status("VmHWM")
  row(("VAE decode of one %dx%d tile, 9 frames"):format(lw * 8, lh * 8), now() - t0, nil, tile)
  local decode_full = tile + 3 * (3 * 49 * 480 * 720 * 4)
  print(("%-44s estimated peak RSS %.2f GB: denoise %.2f, decode %.2f (target <= 16 GB)"):format(
    "whole pipeline 720x480x49", gb(math.max(denoise_full, decode_full)), gb(denoise_full), gb(decode_full)))
end
