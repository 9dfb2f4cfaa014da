-- Wan2.1 as people download it: the official release folder (its DiT may be a GGUF), the
-- diffusers layout, a ComfyUI models folder, or single files (describe_files), each part told
-- by its keys. describe(dir) returns the description zoe.family.wan loads (nil: not a Wan
-- folder). What Zoetrope does not run yet (I2V-14B's CLIP branch, VACE, Wan2.2) is refused
-- by name, never loaded with its extra inputs ignored.
--   official:  config.json (WanModel), diffusion_pytorch_model.safetensors (or its
--              .index.json shards), models_t5_umt5-xxl-enc-bf16.pth, Wan2.1_VAE.pth,
--              google/umt5-xxl/tokenizer.json
--   diffusers: model_index.json (WanPipeline), transformer/, text_encoder/ (UMT5EncoderModel
--              shards), vae/, tokenizer/
local zoe = require "zoe"
local models = require "zoe.models"
local names = require "zoe.family.wan_names"
local t5 = require "zoe.arch.t5"
local util = require "zoe.arch.util"

local M = {}

local function exists(p)
  local f = io.open(p, "rb")
  if f then f:close() return true end
  return false
end

-- Wan2.1's fixed parts (wan/configs): umT5-XXL, the VAE and its latent statistics.
M.UMT5_XXL = {vocab = 256384, dim = 4096, dim_attn = 4096, dim_ffn = 10240, num_heads = 64,
              num_layers = 24, num_buckets = 32}
M.VAE = {dim = 96, z_dim = 16, dim_mult = {1, 2, 4, 4}, num_res_blocks = 2, attn_scales = {},
         temperal_downsample = {false, true, true}}
M.LATENT = {
  mean = {-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715,
          0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921},
  std = {2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652,
         1.5579, 1.6382, 1.1253, 2.8251, 1.9160},
}
-- Wan's defaults (generate.py, text2video.py): UniPC, 50 steps, shift 5, guidance 5, 16 fps, 832x480x81.
M.SAMPLING = {sampler = "unipc", steps = 50, shift = 5.0, cfg = 5.0, fps = 16, width = 832, height = 480,
              frames = 81}

local function first(dir, list)
  for _, p in ipairs(list) do
    if exists(dir .. "/" .. p) then return p end
  end
end

-- the weights files in a folder (not its subfolders), sorted
local function list(dir)
  local out = {}
  local req = zoe.uv.fs_scandir(dir)
  while req do
    local name, kind = zoe.uv.fs_scandir_next(req)
    if not name then break end
    if kind ~= "directory" and (name:match("%.safetensors$") or name:match("%.gguf$") or name:match("%.pth$")) then
      out[#out + 1] = dir .. "/" .. name
    end
  end
  table.sort(out)
  return out
end

local function dit_config(c)
  return {patch_size = c.patch_size or {1, 2, 2}, text_len = c.text_len or 512, in_dim = c.in_dim or 16,
          dim = c.dim, ffn_dim = c.ffn_dim, freq_dim = c.freq_dim or 256, text_dim = c.text_dim or 4096,
          out_dim = c.out_dim or 16, num_heads = c.num_heads, num_layers = c.num_layers,
          qk_norm = c.qk_norm ~= false, cross_attn_norm = c.cross_attn_norm ~= false, eps = c.eps or 1e-6}
end

M.dit_config = dit_config

-- a GGUF DiT (city96's, or zoe convert's) in place of the release's safetensors
local function gguf_in(dir)
  local files = {}
  for _, path in ipairs(list(dir)) do
    if path:match("%.gguf$") then files[#files + 1] = path:match("([^/]+)$") end
  end
  if #files > 1 then
    error(("%s: several GGUF DiTs (%s): keep one, or give the files to zoe.models.load{dit =, ...}"):format(dir,
      table.concat(files, ", ")), 0)
  end
  return files[1]
end

local function official(dir)
  local cfg = models.read_json(dir .. "/config.json")
  if cfg._class_name ~= "WanModel" and not (cfg.dim and cfg.num_layers) then return nil end
  if cfg.model_type == "i2v" or cfg.model_type == "flf2v" or exists(dir .. "/models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth") then
    error(("%s: Wan2.1 image-to-video (I2V-14B / FLF2V, with the CLIP image encoder) is not supported yet"):format(dir), 0)
  end
  if cfg.model_type == "vace" then error(("%s: Wan2.1 VACE is not supported yet"):format(dir), 0) end
  if exists(dir .. "/Wan2.2_VAE.pth") or exists(dir .. "/high_noise_model/config.json") or cfg.model_type == "ti2v" then
    error(("%s: a Wan2.2 release is not supported yet: only Wan2.1 (T2V 1.3B and 14B)"):format(dir), 0)
  end
  local dit = first(dir, {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json"})
    or gguf_in(dir)
  local t5 = first(dir, {"models_t5_umt5-xxl-enc-bf16.pth", "models_t5_umt5-xxl-enc-bf16.safetensors"})
  local vae = first(dir, {"Wan2.1_VAE.pth", "Wan2.1_VAE.safetensors"})
  local tok = first(dir, {"google/umt5-xxl/tokenizer.json", "tokenizer.json"})
  local missing = {}
  if not dit then missing[#missing + 1] = "diffusion_pytorch_model.safetensors (or a .gguf DiT)" end
  if not t5 then missing[#missing + 1] = "models_t5_umt5-xxl-enc-bf16.pth" end
  if not vae then missing[#missing + 1] = "Wan2.1_VAE.pth" end
  if not tok then missing[#missing + 1] = "google/umt5-xxl/tokenizer.json" end
  if #missing > 0 then
    error(("%s: a Wan2.1 folder without %s"):format(dir, table.concat(missing, ", ")), 0)
  end
  return {
    dir = dir, name = dir:match("([^/]+)$"), family = "wan", tokenizer = tok,
    files = {t5 = t5, dit = dit, vae = vae},
    config = {t5 = M.UMT5_XXL, dit = dit_config(cfg), vae = M.VAE, latent = M.LATENT, sampling = M.SAMPLING},
  }
end

local function diffusers(dir)
  local index = models.read_json(dir .. "/model_index.json")
  if not tostring(index._class_name or ""):find("^Wan") then return nil end
  if index._class_name ~= "WanPipeline" or index.image_encoder or index.transformer_2 or index.boundary_ratio then
    error(("%s: %s%s is not supported yet: only Wan2.1's WanPipeline (text-to-video)"):format(dir, index._class_name,
      (index.transformer_2 or index.boundary_ratio) and " with two experts (Wan2.2)" or ""), 0)
  end
  local tc = models.read_json(dir .. "/transformer/config.json")
  local ec = models.read_json(dir .. "/text_encoder/config.json")
  local vc = models.read_json(dir .. "/vae/config.json")
  if vc.z_dim == 48 then error(("%s: Wan2.2 TI2V-5B (its 48-channel VAE) is not supported yet"):format(dir), 0) end
  local heads, hd = tc.num_attention_heads, tc.attention_head_dim
  local dit = dit_config{patch_size = tc.patch_size, text_len = 512, in_dim = tc.in_channels, dim = heads * hd,
    ffn_dim = tc.ffn_dim, freq_dim = tc.freq_dim, text_dim = tc.text_dim, out_dim = tc.out_channels,
    num_heads = heads, num_layers = tc.num_layers, cross_attn_norm = tc.cross_attn_norm, eps = tc.eps}
  ec.model_type = ec.model_type or "umt5" -- Wan's text encoder is UMT5EncoderModel
  local text = t5.config_from_hf(ec)
  local vae = {dim = vc.base_dim or 96, z_dim = vc.z_dim or 16, dim_mult = vc.dim_mult or {1, 2, 4, 4},
               num_res_blocks = vc.num_res_blocks or 2, attn_scales = vc.attn_scales or {},
               temperal_downsample = vc.temperal_downsample or {false, true, true}}
  local function weights(sub, base)
    return first(dir, {sub .. "/" .. base .. ".safetensors", sub .. "/" .. base .. ".safetensors.index.json"})
  end
  local per = vae.num_res_blocks + 1
  return {
    dir = dir, name = dir:match("([^/]+)$"), family = "wan", tokenizer = "tokenizer/tokenizer.json",
    t5_layout = "hf",
    files = {t5 = weights("text_encoder", "model"), dit = weights("transformer", "diffusion_pytorch_model"),
             vae = weights("vae", "diffusion_pytorch_model")},
    config = {t5 = text, dit = dit, vae = vae,
              latent = {mean = vc.latents_mean or M.LATENT.mean, std = vc.latents_std or M.LATENT.std},
              sampling = M.SAMPLING},
    rename = {dit = names.dit_diffusers,
              vae = function(n) return names.vae_diffusers(n, per) end},
  }
end

-- ---------------------------------------------------------------- single files

-- ComfyUI's repackaged Wan (Comfy-Org/Wan_2.1_ComfyUI_repackaged) and city96's GGUFs: a DiT under
-- "model.diffusion_model." or "diffusion_model." (or none; .gguf or .safetensors, fp16, bf16,
-- fp8), umT5-XXL under Hugging Face's names (umt5_xxl_fp16.safetensors, ..._fp8_e4m3fn_scaled),
-- the VAE under the official names (wan_2.1_vae.safetensors). Each part is told by its keys.
local DIT_PREFIXES = {"model.diffusion_model.", "diffusion_model.", "model.", ""}

local function has(w, name) return w[name] ~= nil end

-- What is not supported yet, said instead of loading and ignoring it.
local function refuse_dit(path, w, prefix)
  local function k(n) return has(w, prefix .. n) end
  if k("img_emb.proj.1.weight") or k("blocks.0.cross_attn.k_img.weight") then
    error(("%s: a Wan2.1 image-to-video DiT (I2V-14B / FLF2V: the CLIP image branch img_emb and the "
      .. "k_img/v_img projections) is not supported yet"):format(path), 0)
  end
  if k("vace_blocks.0.before_proj.weight") or k("vace_patch_embedding.weight") then
    error(("%s: a Wan2.1 VACE DiT is not supported yet"):format(path), 0)
  end
end

local function refuse_wan22(path, what)
  local base = (path:match("([^/]+)$") or path):lower()
  if base:find("wan2[._%-]?2") or base:find("wan22") then
    error(("%s: Wan2.2 files (%s) are not supported yet: only Wan2.1 (T2V 1.3B and 14B)"):format(path, what), 0)
  end
end

local function count_blocks(w, prefix)
  local n = 0
  while has(w, ("%sblocks.%d.self_attn.q.weight"):format(prefix, n)) do n = n + 1 end
  return n
end

-- A DiT file: its name prefix and the config its shapes give (heads: dim / 128, Wan's head size).
function M.inspect_dit(path, w)
  w = w or zoe.load(path)
  for _, prefix in ipairs(DIT_PREFIXES) do
    if has(w, prefix .. "blocks.0.self_attn.q.weight") and has(w, prefix .. "patch_embedding.weight") then
      refuse_dit(path, w, prefix)
      refuse_wan22(path, "a DiT")
      local pe = w[prefix .. "patch_embedding.weight"]
      local dim, numel = pe:size(1), pe:numel()
      local in_dim = pe:dim() >= 2 and pe:size(2) or nil
      local head = w[prefix .. "head.head.weight"]
      local c = {dim = dim, in_dim = in_dim, patch_size = {1, 2, 2},
                 ffn_dim = w[prefix .. "blocks.0.ffn.0.weight"]:size(1),
                 freq_dim = w[prefix .. "time_embedding.0.weight"]:size(2),
                 text_dim = w[prefix .. "text_embedding.0.weight"]:size(2),
                 num_layers = count_blocks(w, prefix),
                 qk_norm = has(w, prefix .. "blocks.0.self_attn.norm_q.weight"),
                 cross_attn_norm = has(w, prefix .. "blocks.0.norm3.weight")}
      if pe:dim() == 5 then c.patch_size = {pe:size(3), pe:size(4), pe:size(5)} end
      local p = c.patch_size[1] * c.patch_size[2] * c.patch_size[3]
      c.in_dim = c.in_dim or numel // (dim * p)
      if pe:dim() < 5 and numel ~= dim * c.in_dim * p then c.in_dim = numel // (dim * p) end
      c.out_dim = head:size(1) // p
      if c.in_dim == 48 then
        error(("%s: a Wan2.2 TI2V-5B DiT (48 latent channels) is not supported yet"):format(path), 0)
      end
      if dim % 128 == 0 then c.num_heads = dim // 128 end
      return {prefix = prefix, config = c}
    end
  end
  if has(w, "blocks.0.attn1.to_q.weight") or has(w, "transformer.blocks.0.attn1.to_q.weight") then
    local prefix = has(w, "blocks.0.attn1.to_q.weight") and "" or "transformer."
    if has(w, prefix .. "condition_embedder.image_embedder.ff.net.0.proj.weight") or has(w, prefix .. "blocks.0.attn2.add_k_proj.weight") then
      error(("%s: a Wan2.1 image-to-video DiT (the CLIP image branch) is not supported yet"):format(path), 0)
    end
    refuse_wan22(path, "a DiT")
    local function g(n) return w[prefix .. names.dit_diffusers(n)] end
    local pe, dim = g("patch_embedding.weight"), g("patch_embedding.weight"):size(1)
    local c = {dim = dim, in_dim = pe:size(2), patch_size = {pe:size(3), pe:size(4), pe:size(5)},
               ffn_dim = g("blocks.0.ffn.0.weight"):size(1), freq_dim = g("time_embedding.0.weight"):size(2),
               text_dim = g("text_embedding.0.weight"):size(2), num_layers = count_blocks(util.renamed(w,
                 function(n) return prefix .. names.dit_diffusers(n) end), ""),
               qk_norm = true, cross_attn_norm = true}
    c.out_dim = g("head.head.weight"):size(1) // (c.patch_size[1] * c.patch_size[2] * c.patch_size[3])
    if dim % 128 == 0 then c.num_heads = dim // 128 end
    return {prefix = prefix, diffusers = true, config = c}
  end
end

-- A text encoder file: umT5 under the official names (Wan's .pth) or Hugging Face's.
function M.inspect_t5(path, w)
  w = w or zoe.load(path)
  local layout = has(w, "token_embedding.weight") and has(w, "blocks.0.attn.q.weight") and "wan"
    or (has(w, "encoder.block.0.layer.0.SelfAttention.q.weight") and "hf") or nil
  if not layout then return nil end
  local L = t5.LAYOUTS[layout]
  local emb = layout == "wan" and w["token_embedding.weight"] or (w["shared.weight"] or w["encoder.embed_tokens.weight"])
  local l0 = L.layer(0)
  local n = 0
  while has(w, L.layer(n).q) do n = n + 1 end
  local pos = w[l0.pos_table]
  return {layout = layout, config = {vocab = emb:size(1), dim = emb:size(2), dim_attn = w[l0.q]:size(1),
    dim_ffn = w[l0.fc1]:size(1), num_heads = pos:size(2), num_layers = n, num_buckets = pos:size(1)}}
end

-- A VAE file: the official names (Wan2.1_VAE.pth, ComfyUI's wan_2.1_vae.safetensors) or diffusers'.
function M.inspect_vae(path, w)
  w = w or zoe.load(path)
  local official = has(w, "encoder.conv1.weight") and has(w, "decoder.conv1.weight") and has(w, "conv2.weight")
  local diffusers = has(w, "encoder.conv_in.weight") and has(w, "post_quant_conv.weight")
  if not (official or diffusers) then return nil end
  local z = (official and w["conv2.weight"] or w["post_quant_conv.weight"]):size(1)
  if z == 48 then error(("%s: the Wan2.2 VAE (48 latent channels) is not supported yet"):format(path), 0) end
  refuse_wan22(path, "a VAE")
  local base = (official and w["encoder.conv1.weight"] or w["encoder.conv_in.weight"]):size(1)
  local c = {dim = base, z_dim = z, dim_mult = M.VAE.dim_mult, num_res_blocks = M.VAE.num_res_blocks,
             attn_scales = {}, temperal_downsample = M.VAE.temperal_downsample}
  if official then -- the encoder's levels: residual blocks, then a resample (with a time conv or not)
    local mult, tds, per, run, k = {}, {}, nil, 0, 0
    while true do
      local p = ("encoder.downsamples.%d."):format(k)
      if has(w, p .. "residual.2.weight") then
        run = run + 1
        mult[#mult + (run == 1 and 1 or 0)] = w[p .. "residual.2.weight"]:size(1) // base
      elseif has(w, p .. "resample.1.weight") then
        per = per or run
        tds[#tds + 1] = has(w, p .. "time_conv.weight")
        run = 0
      else
        break
      end
      k = k + 1
    end
    if #mult > 0 then c.dim_mult, c.num_res_blocks, c.temperal_downsample = mult, per or run, tds end
  end
  return {diffusers = diffusers and not official, config = c}
end

-- Which part a file is (by its keys): "dit", "t5" or "vae", and what inspecting it found.
function M.classify(path)
  local w = zoe.load(path)
  local d = M.inspect_dit(path, w)
  if d then return "dit", d end
  local t = M.inspect_t5(path, w)
  if t then return "t5", t end
  local v = M.inspect_vae(path, w)
  if v then return "vae", v end
  return nil
end

local function merge(base, over)
  local out = {}
  for k, v in pairs(base or {}) do out[k] = v end
  for k, v in pairs(over or {}) do out[k] = v end
  return out
end

-- {dit =, t5 =, vae =, tokenizer = [, config = {dit =, t5 =, vae =}, name =]}: the parts as files,
-- each recognized by its keys (a file given as the wrong part is said so); shapes give the configs
-- (config overrides what shapes cannot tell: the tiny models' head counts, text_len).
function M.describe_files(spec)
  local parts = {}
  for _, part in ipairs {"dit", "t5", "vae"} do
    local path = spec[part]
    if type(path) ~= "string" then error(("zoe.models.load: give %s = the %s file"):format(part, part), 0) end
    local kind, info = M.classify(path)
    if kind ~= part then
      error(("zoe.models.load: %s = '%s' is %s"):format(part, path, kind and ("a " .. kind .. " file") or
        "not a Wan2.1 DiT, umT5 or VAE file (none of their keys)"), 0)
    end
    parts[part] = info
  end
  if type(spec.tokenizer) ~= "string" then
    error("zoe.models.load: give tokenizer = umT5's tokenizer.json (google/umt5-xxl; single files do not carry it)", 0)
  end
  local over = spec.config or {}
  local dcfg = merge(parts.dit.config, over.dit)
  if not dcfg.num_heads then
    error(("zoe.models.load: %s has dim %d, not a multiple of Wan's head size 128: give config = {dit = "
      .. "{num_heads = N}}"):format(spec.dit, dcfg.dim), 0)
  end
  local dit_prefix = parts.dit.prefix
  local rename = {}
  if parts.dit.diffusers then
    rename.dit = function(n) return dit_prefix .. names.dit_diffusers(n) end
  elseif dit_prefix ~= "" then
    rename.dit = function(n) return dit_prefix .. n end
  end
  local vcfg = merge(parts.vae.config, over.vae)
  if parts.vae.diffusers then
    local per = vcfg.num_res_blocks + 1
    rename.vae = function(n) return names.vae_diffusers(n, per) end
  end
  local name = spec.name or (spec.dit:match("([^/]+)$") or spec.dit):gsub("%.%w+$", "")
  return {
    dir = ".", name = name, family = "wan", tokenizer = spec.tokenizer, t5_layout = parts.t5.layout,
    source = {dit = spec.dit, t5 = spec.t5, vae = spec.vae, tokenizer = spec.tokenizer, config = spec.config,
              name = spec.name}, -- what a recipe names to load the same files again
    files = {dit = spec.dit, t5 = spec.t5, vae = spec.vae}, rename = rename,
    config = {t5 = merge(parts.t5.config, over.t5), dit = dit_config(dcfg), vae = vcfg,
              latent = over.latent or M.LATENT, sampling = merge(M.SAMPLING, over.sampling)},
  }
end

-- GGUF drops leading size-1 dims (ggml keeps at most 4, and its writer trims them): the DiT's
-- tensors whose shape the model knows are viewed as it expects when only size-1 dims differ
-- (README of the GGUF fixtures: "take the model's shape"); any other difference is an error.
function M.restore_dims(w, cfg)
  local D, p = cfg.dim, cfg.patch_size or {1, 2, 2}
  local function expected(name)
    if name == "patch_embedding.weight" then return {D, cfg.in_dim, p[1], p[2], p[3]} end
    if name == "head.modulation" then return {1, 2, D} end
    if name:match("^blocks%.%d+%.modulation$") then return {1, 6, D} end
  end
  local function squeeze(shape)
    local out = {}
    for _, n in ipairs(shape) do
      if n ~= 1 then out[#out + 1] = n end
    end
    return table.concat(out, "x")
  end
  return setmetatable({}, {__index = function(_, name)
    local t = w[name]
    local want = t and expected(name)
    if not want then return t end
    local have = t:shape()
    if table.concat(have, "x") == table.concat(want, "x") then return t end
    if squeeze(have) ~= squeeze(want) then
      error(("%s is %s, the model expects %s"):format(name, table.concat(have, "x"), table.concat(want, "x")), 2)
    end
    return t:view(table.unpack(want))
  end})
end

-- A ComfyUI models folder (diffusion_models/ or unet/, text_encoders/ or clip/, vae/): the one
-- Wan2.1 DiT, umT5 and VAE in it, told by their keys, and a tokenizer.json beside them.
local function comfy(dir)
  local found = {}
  for part, subs in pairs {dit = {"diffusion_models", "unet"}, t5 = {"text_encoders", "clip"}, vae = {"vae"}} do
    for _, sub in ipairs(subs) do
      for _, path in ipairs(list(dir .. "/" .. sub)) do
        local ok, kind = pcall(M.classify, path)
        if ok and kind == part then
          found[part] = found[part] or {}
          table.insert(found[part], path)
        end
      end
    end
  end
  if not (found.dit or found.t5 or found.vae) then return nil end
  for _, part in ipairs {"dit", "t5", "vae"} do
    local files = found[part] or {}
    if #files ~= 1 then
      error(("%s: a ComfyUI models folder with %s Wan2.1 %s file%s%s; give the files: zoe.models.load{dit =, t5 =, vae =, "
        .. "tokenizer =}"):format(dir, #files == 0 and "no" or tostring(#files), part, #files == 1 and "" or "s",
        #files > 1 and " (" .. table.concat(files, ", ") .. ")" or ""), 0)
    end
  end
  local tok = first(dir, {"tokenizer.json", "text_encoders/tokenizer.json", "google/umt5-xxl/tokenizer.json"})
  if not tok then error(("%s: a ComfyUI models folder without umT5's tokenizer.json (put it beside the "
    .. "folders, or give tokenizer =)"):format(dir), 0) end
  local desc = M.describe_files{dit = found.dit[1], t5 = found.t5[1], vae = found.vae[1], tokenizer = dir .. "/" .. tok}
  desc.dir, desc.name, desc.source = dir, dir:match("([^/]+)$"), nil
  return desc
end

function M.describe(dir)
  if exists(dir .. "/model_index.json") then return diffusers(dir) end
  if exists(dir .. "/config.json") then return official(dir) end
  if exists(dir .. "/diffusion_models/.") or exists(dir .. "/unet/.") then return comfy(dir) end
  return nil
end

return M
