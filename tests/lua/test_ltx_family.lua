-- The LTX-Video family (lua/zoe/family/ltx.lua, ltx_files.lua) on the ltx-tiny fixtures
-- (../shared/fixtures/ltx-tiny) and the CogVideoX fixture's tiny T5 v1.1: the official
-- single file's names for every diffusers name (single_file_keys.json), the VAE's layout
-- read back from a single file's keys, a diffusers folder and a single file recognized and
-- run, the guided LTXPipeline run step by step (1e-4), text-to-video and image-to-video
-- through zoe.pipeline, and the versions it does not run refused with the supported ones.
local t = require "testlib"
local zoe = require "zoe"
local ltx = require "zoe.arch.ltx"
local files = require "zoe.family.ltx_files"
local T = zoe.tensor

local FIX = "../shared/fixtures/ltx-tiny/"
local T5 = "../shared/fixtures/cogvideox-tiny/t5/"
local fh = io.open(FIX .. "README.md")
if not fh then
  t.skip("LTX-Video family", "../shared/fixtures/ltx-tiny is absent")
  t.done()
end
fh:close()

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
local function json(path) return zoe.json.decode(read(path)) end
local function abs(p) return (io.popen("realpath '" .. p .. "'"):read("l")) end

local root = os.tmpname()
os.remove(root)
local function write(path, text)
  assert(os.execute(("mkdir -p '%s'"):format(path:match("^(.*)/"))))
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end
local function link(path, target)
  assert(os.execute(("mkdir -p '%s' && ln -s '%s' '%s'"):format(path:match("^(.*)/"), abs(target), path)))
end

-- a word-level tokenizer inside the tiny T5's 100-entry vocabulary, </s> appended
local words = {"<pad>", "</s>", "<unk>", "a", "red", "blue", "ball", "cat", "walks", "on", "the", "grass"}
local vocab = {}
for i, w in ipairs(words) do vocab[#vocab + 1] = ('"%s": %d'):format(w, i - 1) end
local TOKENIZER = ([[{"version": "1.0", "truncation": null, "padding": null,
 "added_tokens": [{"id": 0, "content": "<pad>", "special": true}, {"id": 1, "content": "</s>", "special": true}],
 "normalizer": null, "pre_tokenizer": {"type": "Whitespace"},
 "post_processor": {"type": "TemplateProcessing",
   "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
   "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
   "special_tokens": {"</s>": {"id": "</s>", "ids": [1], "tokens": ["</s>"]}}},
 "decoder": null, "model": {"type": "WordLevel", "vocab": {%s}, "unk_token": "<unk>"}}]]):format(table.concat(vocab, ", "))

local function text_encoder(dir)
  link(dir .. "/text_encoder/config.json", T5 .. "config.json")
  link(dir .. "/text_encoder/model.safetensors", T5 .. "weights.safetensors")
  write(dir .. "/tokenizer/tokenizer.json", TOKENIZER)
end

-- a diffusers LTXPipeline folder of the fixtures with the given VAE
local function diffusers_folder(name, vae, index)
  local dir = root .. "/" .. name
  write(dir .. "/model_index.json", index or '{"_class_name": "LTXPipeline"}')
  link(dir .. "/transformer/config.json", FIX .. "transformer/config.json")
  link(dir .. "/transformer/diffusion_pytorch_model.safetensors", FIX .. "transformer/weights.safetensors")
  link(dir .. "/vae/config.json", FIX .. vae .. "/config.json")
  link(dir .. "/vae/diffusion_pytorch_model.safetensors", FIX .. vae .. "/weights.safetensors")
  write(dir .. "/scheduler/scheduler_config.json", zoe.json.encode(json(FIX .. "sampling/config.json").scheduler))
  text_encoder(dir)
  return dir
end

-- the fixture's weights under the official single file's names (from single_file_keys.json)
local function single_names(dir)
  local out = {}
  local map = json(FIX .. dir .. "/single_file_keys.json")
  for k, v in pairs(map) do
    if type(v) == "table" then
      for a, b in pairs(v) do out[a] = b end
    end
  end
  return out
end

t.test("the single file's name of every diffusers name, as diffusers' converter maps them", function()
  local n = 0
  for name, want in pairs(single_names("transformer")) do
    t.eq(files.transformer_name(name), want, name)
    n = n + 1
  end
  for _, dir in ipairs {"vae_090", "vae_091", "vae_095"} do
    local namer = files.vae_namer(json(FIX .. dir .. "/config.json"))
    for name, want in pairs(single_names(dir)) do
      t.eq(namer(name), want, dir .. " " .. name)
      n = n + 1
    end
  end
  t.ok(n > 300, "all names checked: " .. n)
end)

-- the fixture VAE's weights under single-file names, as a weights-like object
local function renamed_vae(dir)
  local w, tbl, names = zoe.load(FIX .. dir .. "/weights.safetensors"), {}, {}
  for a, b in pairs(single_names(dir)) do
    tbl[b] = w[a]
    names[#names + 1] = b
  end
  table.sort(names)
  return setmetatable(tbl, {__index = {keys = function() return names end}}), w
end

t.test("a single file's VAE layout read back from its keys: 0.9.0, 0.9.1, 0.9.5", function()
  for dir, version in pairs {vae_090 = "0.9.0", vae_091 = "0.9.1", vae_095 = "0.9.5"} do
    local want = json(FIX .. dir .. "/config.json")
    local got = files.vae_config_from_keys((renamed_vae(dir)))
    for _, k in ipairs {"latent_channels", "patch_size", "block_out_channels", "down_block_types", "decoder_block_out_channels",
                        "layers_per_block", "decoder_layers_per_block", "spatio_temporal_scaling",
                        "decoder_spatio_temporal_scaling", "decoder_inject_noise", "downsample_type", "upsample_residual",
                        "upsample_factor", "timestep_conditioning"} do
      local a, b = got[k], want[k]
      if type(b) == "table" then t.eq(a, b, dir .. " " .. k) else t.eq(a, b, dir .. " " .. k) end
    end
    t.eq(files.vae_version(got), version, dir .. " version")
  end
end)

local folder = diffusers_folder("ltx-091", "vae_091")

t.test("a diffusers folder is recognized: version, defaults, the scheduler's own settings", function()
  local m = zoe.models.load(folder)
  t.eq({m.family, m.version, m.defaults.steps, m.defaults.cfg, m.defaults.fps, m.defaults.sampler, m.defaults.schedule},
    {"ltx", "0.9.1", 40, 3.0, 25, "euler", "flow_dynamic"})
  local so = m.defaults.schedule_opts
  t.eq({so.base_shift, so.max_shift, so.base_seq_len, so.max_seq_len, so.shift_terminal}, {0.95, 2.05, 1024, 4096, 0.1})
  t.eq({m:frames_ok(17), (m:frames_ok(16))}, {true, false})
  t.eq({m:latent_frames(17), m:frame_span(1), select(2, m:frame_span(1))}, {3, 1, 1})
  t.eq({m:frame_span(3)}, {10, 17})
  t.eq(m:latent_shape(17, 64, 96), {8, 3, 2, 3})
  t.raises(function() m:latent_shape(16, 64, 90) end, "frames must be 8n+1 (1, 9, 17, 25, ..., 161), got 16; width must be a positive multiple of 32")
  t.eq(zoe.models.load(diffusers_folder("ltx-090", "vae_090")).version, "0.9.0")
  t.eq(zoe.models.load(diffusers_folder("ltx-095", "vae_095")).version, "0.9.5")
end)

t.test("what a run costs, from its settings: memory by stage, work for zoe.estimate", function()
  local m = zoe.models.load(folder)
  local s = {width = 704, height = 512, frames = 161, cfg = 3, steps = 40}
  local e = m:memory_estimate(s)
  t.eq(e.what, "704x512, 161 frames: 7392 tokens x 2 (guidance)")
  t.ok(e.bytes > e.parts.denoise and e.bytes > e.parts.decode, "the peak is the larger stage plus the process")
  local one = m:memory_estimate({width = 704, height = 512, frames = 161, cfg = 1, steps = 40})
  t.ok(one.parts.denoise < e.parts.denoise, "guidance doubles the batch")
  local w = m:work(s)
  t.eq({w[1].stage, w[2].stage, w[2].kind, w[2].count, w[3].stage}, {"text", "denoise", "ltx_block", 2 * 40, "decode"})
  -- one block at 7392 tokens x 2 with the tiny model's width (32): linears and self-attention
  local N, D = 2 * 7392, 32
  t.eq(w[2].units, 2 * N * D * (6 * D + 8 * D) + 4 * N * 7392 * D, "the units nn.ltx_block counts")
end)

t.test("the guided LTXPipeline run, step by step, through the family's denoiser and zoe.sample", function()
  local m = zoe.models.load(folder)
  local S = zoe.load(FIX .. "sampling/io.safetensors")
  local cond = S["cfg.prompt_embeds"][1]:narrow(1, 1, 9)
  local uncond = S["cfg.negative_prompt_embeds"][1]:narrow(1, 1, 1)
  local c, u = m:text_condition(cond, uncond)
  local spec = {model_batch = m:denoiser(nil, {fps = 25}), kind = "flow", sampler = "euler", schedule = "flow_dynamic",
                steps = 6, x = S["cfg.latents_init_5d"][1], cond = c, uncond = u, cfg = 3}
  for k, v in pairs(m.defaults.schedule_opts) do spec[k] = v end
  local it, r = zoe.sampler.steps(spec)
  local sig = S["cfg.sigmas"]:totable()
  for i = 1, #sig do t.near(r.sigmas[i], sig[i], 0, "sigma " .. i) end
  local worst = 0
  for state in it do
    local got = ltx.pack(state.x:unsqueeze(1))
    local err = t.tensor_relerr(got, S["cfg.latents"][state.step])
    worst = math.max(worst, err)
    if err > 1e-4 then error(("step %d: relative error %.3g"):format(state.step, err), 0) end
  end
  print(("# guided run: worst step relative error %.3g"):format(worst))
end)

t.test("text2video and image2video through zoe.pipeline on the tiny model", function()
  local out = root .. "/a.mp4"
  local frames, record = zoe.pipeline.text2video{model = folder, prompt = "a red ball on the grass", width = 64,
    height = 32, frames = 9, steps = 2, seed = 3, out = out}
  t.eq(frames:shape(), {3, 9, 32, 64}, "frames")
  t.eq(record.recipe.schedule, "flow_dynamic")
  t.eq(zoe.video.info(out).frames, 9, "the video file")
  local again = zoe.pipeline.text2video{model = folder, prompt = "a red ball on the grass", width = 64, height = 32,
    frames = 9, steps = 2, seed = 3}
  t.eq(t.tensor_relerr(again, frames), 0, "the same seed decodes to the same frames (decode noise seeded)")
  local tiled, rec = zoe.pipeline.text2video{model = folder, prompt = "a red ball on the grass", width = 64, height = 32,
    frames = 9, steps = 2, seed = 3, vae_tile = {1, 1}}
  t.eq(tiled:shape(), {3, 9, 32, 64}, "a tiled decode")
  t.eq(rec.recipe.vae_tile, {1, 1}, "its tiles recorded")
  t.eq(zoe.models.load(folder):decode_tile({8, 3, 16, 22}), false, "no tiles unless asked")
  local image = T.rand(3, 32, 64) * 2 - 1
  local latents
  local v = zoe.pipeline.image2video{model = folder, prompt = "a cat walks", image = image, width = 64, height = 32,
    frames = 17, steps = 2, seed = 1, on_step = function(s) latents = s.x end}
  t.eq(v:shape(), {3, 17, 32, 64}, "image2video frames")
  local m = zoe.models.load(folder)
  local z = m:vae():normalize(m:vae():encode(image:view(1, 3, 1, 32, 64)), 1.0)
  t.ok(t.tensor_relerr(latents:narrow(2, 1, 1), z[1]) < 1e-5, "the first latent frame is the image's")
  t.raises(function() zoe.pipeline.text2video{model = folder, prompt = {{text = "a", from = 1, to = 9}}, width = 64,
    height = 32, frames = 9, steps = 1} end, "LTX-Video takes one prompt per clip")
end)

t.test("an official single file beside text_encoder/ and tokenizer/ is recognized by its keys and runs the same", function()
  local dir = root .. "/single"
  local tensors = {}
  for _, part in ipairs {"transformer", "vae_091"} do
    local w = zoe.load(FIX .. part .. "/weights.safetensors")
    for a, b in pairs(single_names(part)) do tensors[b] = w[a] end
  end
  assert(os.execute(("mkdir -p '%s'"):format(dir)))
  zoe.save(dir .. "/ltx-video-2b-v0.9.1.safetensors", tensors, {config = '{"transformer": {"num_attention_heads": 2}}'})
  text_encoder(dir)
  local s = zoe.models.load(dir)
  t.eq({s.family, s.version, s.name}, {"ltx", "0.9.1", "ltx-video-2b-v0.9.1"})
  local want = json(FIX .. "transformer/config.json")
  for _, k in ipairs {"in_channels", "out_channels", "num_layers", "num_attention_heads", "attention_head_dim", "caption_channels"} do
    t.eq(s.cfg.transformer[k], want[k], k)
  end
  local d = zoe.models.load(folder)
  local x = T.randn({2, 8, 3, 2, 3}, {seed = 5})
  local emb = T.randn({4, 32}, {seed = 6})
  local a = s:denoiser(nil, {fps = 24})(x, 500, {s:text_condition(emb), s:text_condition(emb)})
  local b = d:denoiser(nil, {fps = 24})(x, 500, {d:text_condition(emb), d:text_condition(emb)})
  t.eq(t.tensor_relerr(a, b), 0, "the same velocities")
  -- a single file carries no scaling factor (1 in every release; the fixture's is 1.25)
  local vc = d:vae().cfg
  local factor = vc.scaling_factor
  vc.scaling_factor = 1
  local z = T.randn({8, 2, 1, 1}, {seed = 7})
  local same = t.tensor_relerr(s:decode(z, {seed = 2}), d:decode(z, {seed = 2}))
  vc.scaling_factor = factor
  t.eq(same, 0, "the same decode")
end)

t.test("versions this port does not run are refused, naming the supported ones", function()
  t.raises(function() zoe.models.load(diffusers_folder("cond", "vae_095", '{"_class_name": "LTXConditionPipeline"}')) end,
    "the LTX-Video 13B condition pipeline (0.9.7) is not supported; supported: LTX-Video 2B 0.9.0, 0.9.1 and 0.9.5")
  t.raises(function() zoe.models.load(diffusers_folder("up", "vae_095", '{"_class_name": "LTXLatentUpsamplePipeline"}')) end,
    "the LTX-Video 0.9.7 latent upsampler is not supported; supported: LTX-Video 2B")
  local big = diffusers_folder("big", "vae_095")
  assert(os.execute(("rm '%s/transformer/config.json'"):format(big)))
  write(big .. "/transformer/config.json", '{"num_layers": 48, "num_attention_heads": 32, "attention_head_dim": 128}')
  t.raises(function() zoe.models.load(big) end, "a 48-layer, 4096-wide transformer (the 13B model) is not supported")
  local partial = diffusers_folder("partial", "vae_091")
  assert(os.execute(("rm -r '%s/tokenizer'"):format(partial)))
  t.raises(function() zoe.models.load(partial) end, "an LTX-Video folder without tokenizer/ (tokenizer.json or spiece.model)")
end)

t.test("step caches: the hook gives the uncached frames at threshold 0 and reuses per branch", function()
  local spec = {model = folder, prompt = "a red ball on the grass", width = 64, height = 32, frames = 9, steps = 4,
                seed = 3, cfg = 3}
  local function run(cache)
    local s = {cache = cache}
    for k, v in pairs(spec) do s[k] = v end
    return zoe.pipeline.text2video(s)
  end
  local plain = run()
  for _, name in ipairs {"first_block", "easycache"} do
    local f = run(zoe.cache[name]{threshold = 0})
    t.eq(t.tensor_relerr(f, plain), 0, name .. " at threshold 0")
  end
  local seen
  local f, record = run({name = "mine", signal = "modulated", decide = function(_, s)
    seen = s.signal:shape()
    return not (s.branch == "uncond" and s.step >= 3)
  end})
  t.eq(seen, {1, 6, 32}, "the modulation the blocks get (tiny: 2 heads of 16), per branch")
  t.eq(record.recipe.cache.skipped.uncond, {3, 4}, "uncond reused at steps 3 and 4, cond ran alone")
  t.eq(record.evaluations.evaluations, 6)
  t.ok(t.tensor_relerr(f, plain) > 0, "and the frames change")
end)

os.execute(("rm -rf '%s'"):format(root))
t.done()
