-- The CogVideoX family: a diffusers folder recognized and loaded (tiny models made from the
-- fixtures by tests/lua/cogvideox_tiny.lua), its defaults, the messages for folders it cannot
-- run, the guided sampling run of the reference pipeline reproduced through the family's own
-- denoiser and sampling settings, text encoding as CogVideoXPipeline does it, and the
-- pipelines (text2video, image2video on the 1.5-I2V layout) end to end.
local t = require "testlib"
local zoe = require "zoe"
local guidance = require "zoe.guidance"
local t5 = require "zoe.arch.t5"
local T = zoe.tensor

local fx = require "cogvideox_fixtures"
fx.require_fixtures("CogVideoX family")
local tiny = require "cogvideox_tiny"

local tmp = os.tmpname()
local dir = tiny.make(tmp .. ".2b")
local dir_i2v = tiny.make(tmp .. ".i2v", {i2v = true})

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

t.test("a diffusers CogVideoX folder is recognized, with the 2B defaults", function()
  local m = zoe.models.load(dir)
  t.eq(m.family, "cogvideox")
  t.eq(m.variant, "2b")
  t.eq(m.kind, "vp_v")
  t.eq(m.text_len, 7, "the transformer's max_text_seq_length")
  local d = m.defaults
  t.eq({d.sampler, d.schedule, d.steps, d.cfg, d.dynamic_cfg, d.width, d.height, d.frames, d.fps, d.negative},
    {"cogvideox_ddim", "trailing", 50, 6.0, true, 720, 480, 49, 8, ""})
  t.eq({m.sample_settings.snr_shift, m.sample_settings.zero_snr}, {3.0, true})
  local i = zoe.models.load(dir_i2v)
  t.eq({i.variant, i.supports_i2v, i.defaults.sampler, i.sample_settings.snr_shift}, {"1.5-5b-i2v", true, "cogvideox_dpm", 1.0})
  t.eq(i:latent_shape(9, 32, 48), {4, 4, 4, 6}, "1.5: 3 latent frames padded to 4")
  t.eq(m:latent_shape(9, 32, 48), {4, 3, 4, 6})
  t.raises(function() m:latent_shape(8, 30, 48) end, "frames must be 4n+1 (1, 5, 9, 13, 17, ..., 49), got 8; height must be a positive multiple of 16")
end)

t.test("folders it cannot run say which variants it can", function()
  local bad = tiny.make(tmp .. ".v2v")
  write(bad .. "/model_index.json", '{"_class_name": "CogVideoXVideoToVideoPipeline"}')
  t.raises(function() zoe.models.load(bad, {fresh = true}) end,
    "CogVideoXVideoToVideoPipeline is not supported; zoe runs CogVideoXPipeline and CogVideoXImageToVideoPipeline folders "
      .. "(CogVideoX-2B, CogVideoX-5B, CogVideoX-5B-I2V, CogVideoX1.5-5B and CogVideoX1.5-5B-I2V)")
  write(bad .. "/model_index.json", '{"_class_name": "CogVideoXPipeline"}')
  local cfg = fx.config("transformer_2b")
  cfg.use_learned_positional_embeddings = true
  write(bad .. "/transformer/config.json", zoe.json.encode(cfg))
  t.raises(function() zoe.models.load(bad, {fresh = true}) end, "is not a supported variant (CogVideoX-2B,")
  os.remove(bad .. "/vae/diffusion_pytorch_model.safetensors")
  t.raises(function() zoe.models.load(bad, {fresh = true}) end, "a CogVideoX folder without vae/diffusion_pytorch_model.safetensors")
  os.execute(("rm -rf '%s'"):format(bad))
end)

t.test("the pipeline's guided run, through the family's denoiser and sampling settings", function()
  local m = zoe.models.load(dir)
  local S = zoe.load(fx.root .. "sampling/io.safetensors")
  local spec = {model_batch = m:denoiser(), kind = m.kind, sampler = m.defaults.sampler, schedule = "trailing", steps = 6,
                x = S["cfg.latents_init"][1]:permute(2, 1, 3, 4):contiguous(), -- [F, C, h, w] -> ours [C, F, h, w]
                cond = S["cfg.prompt_embeds"][1], uncond = S["cfg.negative_prompt_embeds"][1], cfg = guidance.dynamic(6, 6)}
  for k, v in pairs(m.sample_settings) do spec[k] = v end
  local lat = S["cfg.latents"]
  for state in zoe.sampler.steps(spec) do
    fx.close(state.x:permute(2, 1, 3, 4), lat[state.step][1], 1e-4, "step " .. state.step)
  end
end)

t.test("text: padded to the full length, encoded without a mask, every row kept, cached", function()
  local m = zoe.models.load(dir)
  local emb, ids = m:encode_text("a red circle")
  t.eq(emb:shape(), {7, 32})
  local list = ids:totable()
  t.eq(#list, 7)
  local w = zoe.load(dir .. "/text_encoder/model.safetensors")
  local enc = t5.encoder(t5.config_from_hf(fx.config("t5")), w, {layout = "hf"})
  fx.close(emb, enc(ids:unsqueeze(1))[1], 1e-6, "T5 on all the padded ids")
  t.ok(m:encode_text("a red circle") == emb, "the second encoding is the cached one")
  local weighted = zoe.prompt.encode(m, "a (red:1.5) circle")
  t.eq(weighted:shape(), {7, 32}, "weighted prompts keep every row")
end)

t.test("text2video end to end: streamed decode, a record with the dynamic guidance", function()
  local out = tmp .. ".mp4"
  local frames, rec = zoe.pipeline.text2video{model = dir, prompt = "a red circle", steps = 3, frames = 9, width = 48,
                                              height = 32, seed = 7, out = out}
  t.eq(frames:shape(), {3, 9, 32, 48})
  t.ok(frames:min():item() >= -1 and frames:max():item() <= 1)
  t.eq({rec.recipe.sampler, rec.recipe.dynamic_cfg, rec.recipe.cfg}, {"cogvideox_ddim", true, 6.0})
  t.eq(zoe.video.info(out).frames, 9)
  local again = zoe.pipeline.text2video{model = dir, prompt = "a red circle", steps = 3, frames = 9, width = 48,
                                        height = 32, seed = 7, dynamic_cfg = false}
  t.ok(fx.relerr(again, frames) > 1e-3, "dynamic_cfg = false changes the run")
  t.raises(function()
    zoe.pipeline.text2video{model = dir, prompt = {{text = "a", from = 1, to = 5}, {text = "b", from = 6, to = 9}},
                            steps = 1, frames = 9, width = 48, height = 32}
  end, "prompt travel is not supported")
  os.remove(out)
  os.remove(tmp .. ".json")
end)

t.test("image2video on the 1.5-I2V layout; text2video on it too", function()
  local img = T.rand(3, 32, 48) * 2 - 1
  local frames = zoe.pipeline.image2video{model = dir_i2v, prompt = "a red circle", image = img, steps = 2, frames = 9,
                                          width = 48, height = 32, seed = 3}
  t.eq(frames:shape(), {3, 9, 32, 48}, "the padding latent frame dropped before decoding")
  local plain = zoe.pipeline.text2video{model = dir_i2v, prompt = "a red circle", steps = 2, frames = 9, width = 48,
                                        height = 32, seed = 3}
  t.eq(plain:shape(), {3, 9, 32, 48})
  t.raises(function() zoe.pipeline.image2video{model = dir, prompt = "x", image = img, steps = 1, frames = 9, width = 48, height = 32} end,
    "does not take an image")
end)

t.test("storyboards render on CogVideoX: a cut, a continued shot (image-to-video), a crossfade", function()
  local out = tmp .. ".board"
  local b = {title = "cog board", model = dir_i2v, size = {48, 32}, fps = 8, characters = {hero = "a red circle"},
    shots = {
      {prompt = "{hero} moving left", frames = 9, seed = 1, steps = 2},
      {prompt = "{hero} moving right", frames = 9, continuity = "continue", steps = 2},
      {prompt = "a blue square", frames = 5, seed = 3, steps = 2, transition = {"crossfade", frames = 2}},
    }}
  local r = zoe.storyboard.render(zoe.storyboard(b), {out = out})
  t.eq({r.rendered, r.reused}, {3, 0})
  t.eq(zoe.video.info(r.final).frames, r.frames)
  local again = zoe.storyboard.render(zoe.storyboard(b), {out = out})
  t.eq({again.rendered, again.reused}, {0, 3}, "the cache holds every shot")
  os.execute(("rm -rf '%s'"):format(out))
end)

t.test("step caches: the hook gives the uncached frames at threshold 0 and reuses per branch", function()
  local spec = {model = dir, prompt = "a red circle", steps = 4, frames = 9, width = 48, height = 32, seed = 7}
  local function run(cache)
    local s = {cache = cache}
    for k, v in pairs(spec) do s[k] = v end
    return zoe.pipeline.text2video(s)
  end
  local plain = run()
  for _, name in ipairs {"first_block", "easycache"} do
    t.eq(fx.relerr(run(zoe.cache[name]{threshold = 0}), plain), 0, name .. " at threshold 0")
  end
  local seen
  local f, record = run({name = "mine", signal = "modulated", decide = function(_, s)
    seen = s.signal:shape()
    return not (s.branch == "cond" and s.step >= 3)
  end})
  t.eq(#seen, 2, "the time embedding, one row per branch")
  t.eq(record.recipe.cache.skipped.cond, {3, 4}, "cond reused at steps 3 and 4, uncond ran alone")
  t.eq(record.evaluations.evaluations, 6)
  t.ok(fx.relerr(f, plain) > 0, "and the frames change")
end)

os.execute(("rm -rf '%s.2b' '%s.i2v'"):format(tmp, tmp))
os.remove(tmp)
t.done()
