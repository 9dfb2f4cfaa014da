-- Wan2.1 in the layouts people have: the official .pth checkpoints (read through the
-- restricted unpickler), Hugging Face UMT5 and diffusers names (mapped onto ours: the
-- fixture's keys renamed through the mapping give the same outputs), and the official
-- release folder recognized by zoe.models.load.
local t = require "testlib"
local zoe = require "zoe"
local wan = require "zoe.arch.wan"
local t5 = require "zoe.arch.t5"
local wan_vae = require "zoe.arch.wan_vae"
local names = require "zoe.family.wan_names"
local util = require "zoe.arch.util"

local fx = require "wan_fixtures"
fx.require_fixtures("Wan2.1 layouts")
local root, config, relerr = fx.root, fx.config, fx.relerr

-- the fixture's weights under the other layout's names (a plain table)
local function renamed_copy(w, fn)
  local out, seen = {}, {}
  for _, k in ipairs(w:keys()) do
    local n = fn(k)
    if type(n) == "table" then n = n[1] end
    assert(n, "no mapping for " .. k)
    assert(not seen[n], "two names map to " .. n)
    seen[n] = true
    out[n] = w[k]
  end
  return out
end

t.test("the mappings agree with the diffusers converter's names", function()
  t.eq(names.dit_diffusers("blocks.3.self_attn.o.weight"), "blocks.3.attn1.to_out.0.weight")
  t.eq(names.dit_diffusers("blocks.0.norm3.bias"), "blocks.0.norm2.bias")
  t.eq(names.dit_diffusers("blocks.1.ffn.0.weight"), "blocks.1.ffn.net.0.proj.weight")
  t.eq(names.dit_diffusers("head.modulation"), "scale_shift_table")
  t.eq(names.dit_diffusers("time_projection.1.bias"), "condition_embedder.time_proj.bias")
  t.eq(t5.LAYOUTS.hf.layer(5).gate, "encoder.block.5.layer.1.DenseReluDense.wi_0.weight")
  t.eq(t5.LAYOUTS.hf.layer(0).pos_table, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight")
  t.eq(names.vae_diffusers("decoder.upsamples.3.time_conv.weight"), "decoder.up_blocks.0.upsamplers.0.time_conv.weight")
  t.eq(names.vae_diffusers("decoder.upsamples.4.shortcut.weight"), "decoder.up_blocks.1.resnets.0.conv_shortcut.weight")
  t.eq(names.vae_diffusers("encoder.middle.1.to_qkv.weight"), "encoder.mid_block.attentions.0.to_qkv.weight")
  t.eq(names.vae_diffusers("encoder.downsamples.5.time_conv.bias"), "encoder.down_blocks.5.time_conv.bias")
  t.eq(names.vae_diffusers("conv1.weight"), "quant_conv.weight")
end)

t.test("umT5 from Hugging Face names and from the official bf16 .pth", function()
  local cfg, io_ = config("umt5"), zoe.load(root .. "umt5/io.safetensors")
  local w = zoe.load(root .. "umt5/weights.safetensors")
  -- official name -> Hugging Face name, through the two layouts' roles
  local official, hf_names = {}, {}
  official["token_embedding.weight"], hf_names["token_embedding.weight"] = true, "shared.weight"
  official["norm.weight"], hf_names["norm.weight"] = true, "encoder.final_layer_norm.weight"
  for i = 0, cfg.num_layers - 1 do
    local a, b = t5.LAYOUTS.wan.layer(i), t5.LAYOUTS.hf.layer(i)
    for role, name in pairs(a) do hf_names[name] = b[role] end
  end
  local hf = renamed_copy(w, function(n) return hf_names[n] end)
  local out = t5.encoder(cfg, hf, {layout = "hf"})(io_.ids, io_.mask)
  t.ok(relerr(out, io_.out) < 1e-4, "HF names")
  -- the .pth holds the same tensors rounded to bf16: it must give what those rounded weights give
  local pth = zoe.load(root .. "umt5/weights-bf16.pth")
  t.eq(pth["blocks.0.attn.q.weight"]:dtype(), "bf16", "stays half precision")
  local rounded = {}
  for _, k in ipairs(w:keys()) do rounded[k] = w[k]:to("bf16") end
  local want = t5.encoder(cfg, rounded)(io_.ids, io_.mask)
  t.ok(relerr(t5.encoder(cfg, pth)(io_.ids, io_.mask), want) < 1e-6, "bf16 .pth equals the rounded weights")
end)

t.test("DiT from diffusers names", function()
  local cfg, io_ = config("dit"), zoe.load(root .. "dit/io.safetensors")
  local w = zoe.load(root .. "dit/weights.safetensors")
  local d = renamed_copy(w, names.dit_diffusers)
  t.ok(relerr(wan.dit(cfg, util.renamed(d, names.dit_diffusers))(io_.x, io_.t, io_.context), io_.out) < 1e-4)
end)

t.test("VAE from diffusers names and from the official .pth", function()
  local cfg, io_ = config("vae"), zoe.load(root .. "vae/io.safetensors")
  local w = zoe.load(root .. "vae/weights.safetensors")
  local per = cfg.num_res_blocks + 1
  local rn = function(n) return names.vae_diffusers(n, per) end
  local v = wan_vae.new(cfg, util.renamed(renamed_copy(w, rn), rn))
  t.ok(relerr(v:decode(io_.z, io_.latent_mean, io_.latent_std), io_.decoded) < 1e-4, "diffusers names")
  local p = wan_vae.new(cfg, zoe.load(root .. "vae/weights.pth"))
  t.ok(relerr(p:decode(io_.z, io_.latent_mean, io_.latent_std), io_.decoded) < 1e-4, "official .pth")
end)

t.test("zoe.models.load recognizes the official release folder", function()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute(("mkdir -p '%s/google/umt5-xxl'"):format(dir)))
  local cfg = config("dit")
  cfg._class_name = "WanModel"
  local fh = assert(io.open(dir .. "/config.json", "wb"))
  fh:write(zoe.json.encode(cfg))
  fh:close()
  local links = {
    ["diffusion_pytorch_model.safetensors"] = "dit/weights.safetensors",
    ["models_t5_umt5-xxl-enc-bf16.pth"] = "umt5/weights-bf16.pth",
    ["Wan2.1_VAE.pth"] = "vae/weights.pth",
  }
  local here = os.getenv("PWD")
  for name, src in pairs(links) do
    assert(os.execute(("ln -s '%s/%s%s' '%s/%s'"):format(here, root, src, dir, name)))
  end
  t.raises(function() zoe.models.load(dir) end, "a Wan2.1 folder without google/umt5-xxl/tokenizer.json")
  assert(os.execute(("cp tests/fixtures/tokenizer/*.json '%s/google/umt5-xxl/tokenizer.json' 2>/dev/null || echo '{}' > '%s/google/umt5-xxl/tokenizer.json'"):format(dir, dir)))
  local m = zoe.models.load(dir)
  t.eq(m.cfg.dit.dim, cfg.dim)
  t.eq(m.cfg.t5.dim, 4096, "umT5-XXL")
  t.eq(m.defaults.steps, 50)
  t.eq(m.defaults.shift, 5.0)
  t.eq(m.defaults.sampler, "unipc")
  t.eq(m.defaults.frames, 81)
  t.ok(m.defaults.negative:find("色调艳丽"), "Wan's default negative prompt")
  t.ok(m.defaults.integer_timesteps, "Wan gives the DiT integer timesteps")
  local io_ = zoe.load(root .. "dit/io.safetensors")
  t.ok(relerr(m:dit()(io_.x, io_.t, io_.context), io_.out) < 1e-4, "its DiT runs")
  os.execute(("rm -rf '%s'"):format(dir))
end)
t.done()
