-- Wan2.1 as single files (ComfyUI's repackaged files, city96's GGUFs): each part told by its keys,
-- with or without ComfyUI's DiT prefixes, umT5 under Hugging Face's names, configs from the
-- shapes; zoe.models.load{dit =, t5 =, vae =, tokenizer =} and a ComfyUI models folder; what is
-- not supported yet (I2V-14B's CLIP branch, VACE, Wan2.2) refused by name.
local t = require "testlib"
local zoe = require "zoe"
local tiny = require "tiny_wan"
local t5 = require "zoe.arch.t5"
local wf = require "zoe.family.wan_files"
local T = zoe.tensor

local tmp = os.tmpname()
os.remove(tmp)
os.execute(("mkdir -p '%s/ref' '%s/comfy/diffusion_models' '%s/comfy/text_encoders' '%s/comfy/vae'"):format(tmp, tmp, tmp, tmp))
tiny.write(tmp .. "/ref")
local ref = zoe.models.load(tmp .. "/ref")
local cfg = tiny.config

-- a file holding 'w' with every name mapped by fn (nil: dropped)
local function save_renamed(path, w, fn, extra)
  local out = {}
  for _, k in ipairs(w:keys()) do
    local n = fn(k)
    if n then out[n] = w[k] end
  end
  for k, v in pairs(extra or {}) do out[k] = v end
  zoe.save(path, out)
  return path
end

local dw, tw, vw = zoe.load(tmp .. "/ref/dit.safetensors"), zoe.load(tmp .. "/ref/t5.safetensors"), zoe.load(tmp .. "/ref/vae.safetensors")
local hf = {["token_embedding.weight"] = "shared.weight", ["norm.weight"] = "encoder.final_layer_norm.weight"}
for i = 0, cfg.t5.num_layers - 1 do
  local a, b = t5.LAYOUTS.wan.layer(i), t5.LAYOUTS.hf.layer(i)
  for role, name in pairs(a) do hf[name] = b[role] end
end
local files = {
  dit = save_renamed(tmp .. "/wan2.1_t2v_tiny_bf16.safetensors", dw, function(n) return "model.diffusion_model." .. n end),
  t5 = save_renamed(tmp .. "/umt5_tiny.safetensors", tw, function(n) return hf[n] end),
  vae = tmp .. "/ref/vae.safetensors",
  tokenizer = tmp .. "/ref/tokenizer.json",
}
local over = {dit = {num_heads = cfg.dit.num_heads, text_len = cfg.dit.text_len}, latent = cfg.latent,
              sampling = cfg.sampling}

t.test("each part is told by its keys; the configs come from the shapes", function()
  local kind, info = wf.classify(files.dit)
  t.eq({kind, info.prefix, info.config.dim, info.config.num_layers, info.config.in_dim, info.config.ffn_dim},
       {"dit", "model.diffusion_model.", 32, 2, 20, 64})
  kind, info = wf.classify(files.t5)
  t.eq({kind, info.layout, info.config.num_heads, info.config.dim_ffn, info.config.vocab}, {"t5", "hf", 2, 48, 64})
  kind, info = wf.classify(files.vae)
  t.eq({kind, info.config.z_dim, info.config.num_res_blocks}, {"vae", 8, 1})
  t.eq(info.config.dim_mult, {1, 2, 2, 2})
  t.eq(info.config.temperal_downsample, {false, true, true})
end)

t.test("a city96 GGUF is told as a DiT", function()
  local city96 = "../shared/fixtures/gguf/wan-tiny-q8_0-city96.gguf"
  if not t.exists(city96) then return t.skip("a city96 GGUF is told as a DiT", city96 .. " is absent") end
  t.eq((wf.classify(city96)), "dit")
end)

t.test("zoe.models.load{dit =, t5 =, vae =, tokenizer =}: the same model as the folder", function()
  local spec = {dit = files.dit, t5 = files.t5, vae = files.vae, tokenizer = files.tokenizer, config = over}
  local m = zoe.models.load(spec)
  local x = T.randn({20, 2, 8, 8}, {seed = 1}) -- the tiny model takes image conditioning: 8 + 12 channels
  local emb = ref:encode_text("a red circle")
  t.eq((m:encode_text("a red circle") - emb):abs():max():item(), 0)
  local kv = ref:cross_kv(emb)
  local a, b = ref:dit().forward({x}, 500, kv)[1], m:dit().forward({x}, 500, m:cross_kv(emb))[1]
  t.eq((a - b):abs():max():item(), 0)
  local frames = zoe.pipeline.text2video{model = m, prompt = "a red circle", steps = 2, seed = 3, width = 32,
    height = 32, frames = 5}
  local want = zoe.pipeline.text2video{model = ref, prompt = "a red circle", steps = 2, seed = 3, width = 32,
    height = 32, frames = 5}
  t.eq((frames - want):abs():max():item(), 0)
  -- the recipe names the files, so replay loads the same model
  local out = tmp .. "/files.mp4"
  local _, record = zoe.pipeline.text2video{model = m, prompt = "a red circle", steps = 2, seed = 3, width = 32,
    height = 32, frames = 5, out = out}
  t.eq(record.recipe.model.dit, files.dit)
  local again = zoe.pipeline.replay(out)
  t.eq((again - frames):abs():max():item(), 0)
  t.raises(function() zoe.models.load{dit = files.t5, t5 = files.t5, vae = files.vae, tokenizer = files.tokenizer} end,
    "is a t5 file")
  t.raises(function() zoe.models.load{dit = files.dit, t5 = files.t5, vae = files.vae} end, "give tokenizer")
  t.raises(function() zoe.models.load{dit = files.dit, t5 = files.t5, vae = files.vae, tokenizer = files.tokenizer} end,
    "num_heads")
end)

t.test("a GGUF DiT (zoe convert) in place of the safetensors", function()
  local gguf = tmp .. "/tiny-q8_0.gguf"
  require("zoe.cli.convert").convert(files.dit, gguf, "q8_0")
  local m = zoe.models.load{dit = gguf, t5 = files.t5, vae = files.vae, tokenizer = files.tokenizer, config = over}
  t.eq(m.precision, "bf16") -- int8 products, attention in bf16
  local x = T.randn({20, 2, 8, 8}, {seed = 1}) -- the tiny model takes image conditioning: 8 + 12 channels
  local kv = ref:cross_kv(ref:encode_text("a red circle"))
  local a, b = ref:dit().forward({x}, 500, kv)[1], m:dit().forward({x}, 500, kv)[1]
  local err = (a - b):norm():item() / a:norm():item()
  t.ok(err < 2e-2, "q8_0 DiT: " .. err)
end)

t.test("a ComfyUI models folder: the one DiT, text encoder and VAE by their keys", function()
  local c = tmp .. "/comfy"
  local w = zoe.load(files.dit)
  os.execute(("cp '%s' '%s/text_encoders/'"):format(files.t5, c))
  os.execute(("cp '%s' '%s/vae/wan_2.1_vae.safetensors'"):format(files.vae, c))
  os.execute(("cp '%s' '%s/tokenizer.json'"):format(files.tokenizer, c))
  save_renamed(c .. "/diffusion_models/dit.safetensors", w, function(n) return n:gsub("^model%.diffusion_model%.", "") end)
  t.raises(function() zoe.models.load(c) end, "num_heads") -- dim 32: found, and the heads asked for
  save_renamed(c .. "/diffusion_models/other.safetensors", w, function(n) return n end)
  t.raises(function() zoe.models.load(c) end, "2 Wan2.1 dit files")
end)

t.test("an official release folder with a GGUF DiT in place of the safetensors", function()
  local d = tmp .. "/official"
  os.execute(("mkdir -p '%s/google/umt5-xxl'"):format(d))
  local f = io.open(d .. "/config.json", "w")
  f:write('{"_class_name": "WanModel", "model_type": "t2v", "dim": 32, "ffn_dim": 64, "num_heads": 2, "num_layers": 2}')
  f:close()
  os.execute(("cp '%s' '%s/models_t5_umt5-xxl-enc-bf16.safetensors'"):format(files.t5, d))
  os.execute(("cp '%s' '%s/Wan2.1_VAE.safetensors'"):format(files.vae, d))
  os.execute(("cp '%s' '%s/google/umt5-xxl/tokenizer.json'"):format(files.tokenizer, d))
  require("zoe.cli.convert").convert(files.dit, d .. "/wan2.1-t2v-tiny-Q8_0.gguf", "q8_0")
  local desc = zoe.models.describe(d)
  t.eq(desc.files.dit, "wan2.1-t2v-tiny-Q8_0.gguf")
  t.eq(desc.config.dit.dim, 32)
  require("zoe.cli.convert").convert(files.dit, d .. "/second-Q4_K.gguf", "q4_k")
  t.raises(function() zoe.models.describe(d) end, "several GGUF DiTs")
end)

t.test("I2V-14B's CLIP branch, VACE and Wan2.2 are refused by name", function()
  local extra = {["model.diffusion_model.blocks.0.cross_attn.k_img.weight"] = T.zeros(32, 32)}
  local i2v = save_renamed(tmp .. "/i2v.safetensors", zoe.load(files.dit), function(n) return n end, extra)
  t.raises(function() wf.classify(i2v) end, "image-to-video DiT (I2V-14B")
  local vace = save_renamed(tmp .. "/vace.safetensors", zoe.load(files.dit), function(n) return n end,
    {["model.diffusion_model.vace_blocks.0.before_proj.weight"] = T.zeros(4, 4)})
  t.raises(function() wf.classify(vace) end, "VACE")
  os.execute(("cp '%s' '%s/wan2.2_t2v_high_noise_14B_fp16.safetensors'"):format(files.dit, tmp))
  t.raises(function() wf.classify(tmp .. "/wan2.2_t2v_high_noise_14B_fp16.safetensors") end, "Wan2.2 files")
  local ti2v = {}
  for _, k in ipairs(dw:keys()) do ti2v[k] = dw[k] end
  ti2v["patch_embedding.weight"] = T.zeros(32, 48, 1, 2, 2)
  zoe.save(tmp .. "/ti2v.safetensors", ti2v)
  t.raises(function() wf.classify(tmp .. "/ti2v.safetensors") end, "Wan2.2 TI2V-5B")
  -- an official folder of I2V-14B
  os.execute(("mkdir -p '%s/i2v14b'"):format(tmp))
  local f = io.open(tmp .. "/i2v14b/config.json", "w")
  f:write('{"_class_name": "WanModel", "model_type": "i2v", "dim": 5120, "num_layers": 40}')
  f:close()
  t.raises(function() zoe.models.load(tmp .. "/i2v14b") end, "image-to-video (I2V-14B / FLF2V")
end)

os.execute(("rm -rf '%s'"):format(tmp))
t.done()
