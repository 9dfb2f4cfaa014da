-- Wan2.1 as people download it: the official release folder, or the diffusers layout.
-- describe(dir) returns the description zoe.family.wan loads (nil: not a Wan folder).
--   official:  config.json (WanModel), diffusion_pytorch_model.safetensors (or its
--              .index.json shards), models_t5_umt5-xxl-enc-bf16.pth, Wan2.1_VAE.pth,
--              google/umt5-xxl/tokenizer.json
--   diffusers: model_index.json (WanPipeline), transformer/, text_encoder/ (UMT5EncoderModel
--              shards), vae/, tokenizer/
local models = require "zoe.models"
local names = require "zoe.family.wan_names"
local t5 = require "zoe.arch.t5"

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

local function dit_config(c)
  return {patch_size = c.patch_size or {1, 2, 2}, text_len = c.text_len or 512, in_dim = c.in_dim or 16,
          dim = c.dim, ffn_dim = c.ffn_dim, freq_dim = c.freq_dim or 256, text_dim = c.text_dim or 4096,
          out_dim = c.out_dim or 16, num_heads = c.num_heads, num_layers = c.num_layers,
          qk_norm = c.qk_norm ~= false, cross_attn_norm = c.cross_attn_norm ~= false, eps = c.eps or 1e-6}
end

local function official(dir)
  local cfg = models.read_json(dir .. "/config.json")
  if cfg._class_name ~= "WanModel" and not (cfg.dim and cfg.num_layers) then return nil end
  local dit = first(dir, {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json"})
  local t5 = first(dir, {"models_t5_umt5-xxl-enc-bf16.pth", "models_t5_umt5-xxl-enc-bf16.safetensors"})
  local vae = first(dir, {"Wan2.1_VAE.pth", "Wan2.1_VAE.safetensors"})
  local tok = first(dir, {"google/umt5-xxl/tokenizer.json", "tokenizer.json"})
  local missing = {}
  if not dit then missing[#missing + 1] = "diffusion_pytorch_model.safetensors" end
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
  local tc = models.read_json(dir .. "/transformer/config.json")
  local ec = models.read_json(dir .. "/text_encoder/config.json")
  local vc = models.read_json(dir .. "/vae/config.json")
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

function M.describe(dir)
  if exists(dir .. "/model_index.json") then return diffusers(dir) end
  if exists(dir .. "/config.json") then return official(dir) end
  return nil
end

return M
