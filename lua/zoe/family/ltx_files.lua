-- LTX-Video as people download it: the diffusers layout (model_index.json, transformer/,
-- vae/, text_encoder/, tokenizer/, scheduler/) or an official single file
-- (ltx-video-2b-v0.9*.safetensors: the transformer under model.diffusion_model., the VAE
-- under vae.) beside a T5 v1.1 XXL text encoder in the Hugging Face layout (text_encoder/
-- and tokenizer/, as the diffusers folders and PixArt's hold it).
-- describe(dir) returns what zoe.family.ltx loads; nil when the folder is not LTX-Video's;
-- an error naming the supported versions for LTX-Video folders this port does not run.
local models = require "zoe.models"
local zoe = require "zoe"

local M = {}

M.SUPPORTED = "supported: LTX-Video 2B 0.9.0, 0.9.1 and 0.9.5 (a diffusers LTXPipeline or "
  .. "LTXImageToVideoPipeline folder, or an official ltx-video-2b-v0.9*.safetensors single file "
  .. "beside text_encoder/ and tokenizer/)"

local function exists(p)
  local f = io.open(p, "rb")
  if f then f:close() return true end
  return false
end

local function first(dir, list)
  for _, p in ipairs(list) do
    if exists(dir .. "/" .. p) then return p end
  end
end

-- ---------------------------------------------------------------- released configurations

-- The 2B transformer of every 2B release (diffusers' converter, the class defaults).
M.TRANSFORMER_2B = {
  in_channels = 128, out_channels = 128, patch_size = 1, patch_size_t = 1, num_attention_heads = 32,
  attention_head_dim = 64, cross_attention_dim = 2048, num_layers = 28, activation_fn = "gelu-approximate",
  qk_norm = "rms_norm_across_heads", norm_elementwise_affine = false, norm_eps = 1e-6, caption_channels = 4096,
  attention_bias = true, attention_out_bias = true,
}

-- The released scheduler (Lightricks/LTX-Video's scheduler_config.json, the converter for
-- 0.9.0/0.9.1): dynamic shift on the token count, the last sigma stretched to 0.1.
M.SCHEDULE = {base_shift = 0.95, max_shift = 2.05, base_seq_len = 1024, max_seq_len = 4096, shift_terminal = 0.1}

-- What a recipe leaves out, per release: the official configs (configs/ltxv-2b-0.9*.yaml:
-- 40 steps, guidance 3, decode timestep 0.05 and noise scale 0.025 where the decoder is
-- timestep-conditioned; their spatio-temporal guidance is not part of diffusers' pipeline
-- and not done here) and inference.py's negative prompt; 704x512, 161 frames at 25 fps
-- (diffusers' LTXPipeline).
M.NEGATIVE = "worst quality, inconsistent motion, blurry, jittery, distorted"
M.DEFAULTS = {
  ["0.9.0"] = {steps = 40, decode_timestep = 0, decode_noise_scale = 0},
  ["0.9.1"] = {steps = 40, decode_timestep = 0.05, decode_noise_scale = 0.025},
  ["0.9.5"] = {steps = 40, decode_timestep = 0.05, decode_noise_scale = 0.025},
}

-- Which release a VAE configuration is (diffusers config.json): its layout, not its shapes.
function M.vae_version(vc)
  local types = vc.down_block_types or {}
  if types[#types] == "LTXVideo095DownBlock3D" then return "0.9.5" end
  for _, v in ipairs(vc.decoder_inject_noise or {}) do
    if v then return "0.9.1" end
  end
  if vc.timestep_conditioning then return "0.9.1" end
  return "0.9.0"
end

-- ---------------------------------------------------------------- single-file names

-- The official single file's name for each diffusers name: the transformer under
-- model.diffusion_model. with four modules renamed; the VAE under vae.
local TRANSFORMER_RENAMES = {
  {"^proj_in%.", "patchify_proj."}, {"^time_embed%.", "adaln_single."},
  {"%.norm_q%.", ".q_norm."}, {"%.norm_k%.", ".k_norm."},
}

function M.transformer_name(name)
  for _, r in ipairs(TRANSFORMER_RENAMES) do name = name:gsub(r[1], r[2]) end
  return "model.diffusion_model." .. name
end

-- The single file numbers the VAE's blocks in one flat list per side; which diffusers block
-- each number is depends on the release (diffusers' converter keeps one table per release,
-- and the original code numbers its block list the same way).
local ENC_OLD = {"down_blocks.0", "down_blocks.0.downsamplers.0", "down_blocks.0.conv_out", "down_blocks.1",
                 "down_blocks.1.downsamplers.0", "down_blocks.1.conv_out", "down_blocks.2", "down_blocks.2.downsamplers.0",
                 "down_blocks.3", "mid_block"}
local ENC_095 = {"down_blocks.0", "down_blocks.0.downsamplers.0", "down_blocks.1", "down_blocks.1.downsamplers.0",
                 "down_blocks.2", "down_blocks.2.downsamplers.0", "down_blocks.3", "down_blocks.3.downsamplers.0", "mid_block"}
local DEC_090 = {"mid_block", "up_blocks.0", "up_blocks.1.upsamplers.0", "up_blocks.1", "up_blocks.2.conv_in",
                 "up_blocks.2.upsamplers.0", "up_blocks.2", "up_blocks.3.conv_in", "up_blocks.3.upsamplers.0", "up_blocks.3"}
local DEC_091 = {"mid_block", "up_blocks.0.upsamplers.0", "up_blocks.0", "up_blocks.1.upsamplers.0", "up_blocks.1",
                 "up_blocks.2.upsamplers.0", "up_blocks.2", "up_blocks.3.upsamplers.0", "up_blocks.3"}
local TABLES = {["0.9.0"] = {ENC_OLD, DEC_090}, ["0.9.1"] = {ENC_OLD, DEC_091}, ["0.9.5"] = {ENC_095, DEC_091}}

-- prefix pairs {diffusers, original} of one release, longest first
local function vae_prefixes(version)
  local pairs_ = {}
  for side, list in pairs {encoder = TABLES[version][1], decoder = TABLES[version][2]} do
    local flat = side == "encoder" and "down_blocks" or "up_blocks"
    for i, d in ipairs(list) do
      local o = ("vae.%s.%s.%d."):format(side, flat, i - 1)
      local group = not d:find("%.conv_in$") and not d:find("downsamplers") and not d:find("upsamplers")
        and not d:find("%.conv_out$")
      if group then
        pairs_[#pairs_ + 1] = {("%s.%s.resnets."):format(side, d), o .. "res_blocks."}
        pairs_[#pairs_ + 1] = {("%s.%s.time_embedder."):format(side, d), o .. "time_embedder."}
      else
        pairs_[#pairs_ + 1] = {("%s.%s."):format(side, d), o}
      end
    end
  end
  pairs_[#pairs_ + 1] = {"decoder.time_embedder.", "vae.decoder.last_time_embedder."}
  table.sort(pairs_, function(a, b) return #a[1] > #b[1] end)
  return pairs_
end

local VAE_FIXED = {
  latents_mean = "vae.per_channel_statistics.mean-of-means",
  latents_std = "vae.per_channel_statistics.std-of-means",
  ["decoder.scale_shift_table"] = "vae.decoder.last_scale_shift_table",
}

-- fn(diffusers VAE name) -> the single file's name, for one VAE configuration
function M.vae_namer(vc)
  local prefixes = vae_prefixes(M.vae_version(vc))
  return function(name)
    if VAE_FIXED[name] then return VAE_FIXED[name] end
    local out
    for _, p in ipairs(prefixes) do
      if name:sub(1, #p[1]) == p[1] then
        out = p[2] .. name:sub(#p[1] + 1)
        break
      end
    end
    out = out or ("vae." .. name)
    out = out:gsub("%.norm3%.", ".norm3.norm."):gsub("%.conv_shortcut%.conv%.", ".conv_shortcut.")
    return out
  end
end

-- ---------------------------------------------------------------- folders

local UNSUPPORTED_PIPELINES = {
  LTXConditionPipeline = "the LTX-Video 13B condition pipeline (0.9.7)",
  LTXLatentUpsamplePipeline = "the LTX-Video 0.9.7 latent upsampler",
}

local function text_encoder(dir)
  local cfg = first(dir, {"text_encoder/config.json"})
  local weights = first(dir, {"text_encoder/model.safetensors", "text_encoder/model.safetensors.index.json"})
  local tok = first(dir, {"tokenizer/tokenizer.json", "tokenizer/spiece.model"})
  return cfg, weights, tok
end

local function refuse(dir, what)
  error(("%s: %s is not supported; %s"):format(dir, what, M.SUPPORTED), 0)
end

-- The 13B transformer (0.9.7: 48 layers, 4096 wide) comes with the condition pipeline and
-- the latent upsampler, which this port does not run.
local function check_transformer(dir, tc)
  local D = (tc.num_attention_heads or 0) * (tc.attention_head_dim or 0)
  if tc.num_layers == 48 or D == 4096 then
    refuse(dir, ("a %d-layer, %d-wide transformer (the 13B model)"):format(tc.num_layers or 0, D))
  end
end

local function diffusers(dir)
  local index = models.read_json(dir .. "/model_index.json")
  local class = tostring(index._class_name or "")
  if not class:find("^LTX") then return nil end
  if UNSUPPORTED_PIPELINES[class] then refuse(dir, UNSUPPORTED_PIPELINES[class]) end
  if exists(dir .. "/latent_upsampler/config.json") then refuse(dir, UNSUPPORTED_PIPELINES.LTXLatentUpsamplePipeline) end
  local tc = models.read_json(dir .. "/transformer/config.json")
  local vc = models.read_json(dir .. "/vae/config.json")
  check_transformer(dir, tc)
  local ecfg, eweights, tok = text_encoder(dir)
  local missing = {}
  local tw = first(dir, {"transformer/diffusion_pytorch_model.safetensors", "transformer/diffusion_pytorch_model.safetensors.index.json"})
  local vw = first(dir, {"vae/diffusion_pytorch_model.safetensors"})
  if not tw then missing[#missing + 1] = "transformer/diffusion_pytorch_model.safetensors" end
  if not vw then missing[#missing + 1] = "vae/diffusion_pytorch_model.safetensors" end
  if not ecfg or not eweights then missing[#missing + 1] = "text_encoder/ (config.json and model*.safetensors)" end
  if not tok then missing[#missing + 1] = "tokenizer/ (tokenizer.json or spiece.model)" end
  if #missing > 0 then error(("%s: an LTX-Video folder without %s"):format(dir, table.concat(missing, ", ")), 0) end
  local schedule = M.SCHEDULE
  if exists(dir .. "/scheduler/scheduler_config.json") then
    local sc = models.read_json(dir .. "/scheduler/scheduler_config.json")
    schedule = {shift_terminal = sc.shift_terminal ~= zoe.json.null and sc.shift_terminal or nil}
    if sc.use_dynamic_shifting then
      schedule.base_shift, schedule.max_shift = sc.base_shift or 0.5, sc.max_shift or 1.15
      schedule.base_seq_len, schedule.max_seq_len = sc.base_image_seq_len or 256, sc.max_image_seq_len or 4096
    else -- a fixed shift s is the exponential time shift with e^mu = s
      schedule.mu = math.log(sc.shift or 1)
    end
  end
  return {
    dir = dir, name = dir:match("([^/]+)$"), family = "ltx", version = M.vae_version(vc),
    files = {text_encoder = eweights, transformer = tw, vae = vw}, tokenizer = tok,
    config = {transformer = tc, vae = vc, text_encoder = models.read_json(dir .. "/" .. ecfg), schedule = schedule},
  }
end

-- ---------------------------------------------------------------- configurations from keys

-- Groups of a checkpoint's names under 'prefix' by the block number that follows it:
-- groups[k] = {rest of the name = true}, and the numbers present in order (a release's
-- numbering skips the blocks a model lacks).
local function groups_under(keys, prefix)
  local groups, pat = {}, "^" .. prefix:gsub("%.", "%%.") .. "(%d+)%.(.*)$"
  for _, name in ipairs(keys) do
    local k, rest = name:match(pat)
    if k then
      k = tonumber(k)
      groups[k] = groups[k] or {}
      groups[k][rest] = true
    end
  end
  local order = {}
  for k in pairs(groups) do order[#order + 1] = k end
  table.sort(order)
  return groups, order
end

local function count(g, pat)
  local n = 0
  while g[pat:format(n)] do n = n + 1 end
  return n
end

local function reversed(t)
  local out = {}
  for i = #t, 1, -1 do out[#out + 1] = t[i] end
  return out
end

-- the diffusers configuration of a single file's transformer: sizes from its shapes, the
-- head count from the file's metadata config (every release: heads of 64)
local function transformer_config(w, meta)
  local P = "model.diffusion_model."
  local proj = w[P .. "patchify_proj.weight"]
  local D = proj:size(1)
  local layers = 0
  while w[("%stransformer_blocks.%d.scale_shift_table"):format(P, layers)] do layers = layers + 1 end
  local mt = meta and meta.transformer or {}
  local heads = mt.num_attention_heads or D // 64
  local c = {}
  for k, v in pairs(M.TRANSFORMER_2B) do c[k] = v end
  c.in_channels, c.out_channels, c.num_layers = proj:size(2), w[P .. "proj_out.weight"]:size(1), layers
  c.num_attention_heads, c.attention_head_dim, c.cross_attention_dim = heads, D // heads, D
  c.caption_channels = w[P .. "caption_projection.linear_1.weight"]:size(2)
  return c
end

-- the diffusers configuration of a single file's VAE, from which blocks its flat block
-- list holds (resnet groups, resamplers, width-changing resnets) and their shapes. A
-- residual upsampler is told by its channel factor (2 in 0.9.1 and 0.9.5; the 0.9.0
-- upsamplers, factor 1, have none), as the releases pair them.
local function vae_config(w)
  local keys = w:keys()
  local function shape(name, i) return w[name]:size(i) end
  local c = {in_channels = 3, out_channels = 3, patch_size = 4, patch_size_t = 1, resnet_norm_eps = 1e-6,
             scaling_factor = 1.0, encoder_causal = true, decoder_causal = false}
  c.latent_channels = shape("vae.decoder.conv_in.conv.weight", 2)
  c.patch_size = math.floor(math.sqrt(shape("vae.encoder.conv_in.conv.weight", 2) / 3) + 0.5)
  c.timestep_conditioning = w["vae.decoder.last_time_embedder.timestep_embedder.linear_1.weight"] ~= nil
  -- encoder: each diffusers block starts at a resnet group; the last group is the mid block
  local E = "vae.encoder.down_blocks."
  local eg, eorder = groups_under(keys, E)
  local blocks = {}
  for _, k in ipairs(eorder) do
    local g = eg[k]
    local p = ("%s%d."):format(E, k)
    if g["res_blocks.0.conv1.conv.weight"] then
      blocks[#blocks + 1] = {layers = count(g, "res_blocks.%d.conv1.conv.weight"), ch = shape(p .. "res_blocks.0.conv1.conv.weight", 1)}
    elseif g["conv.conv.weight"] then
      blocks[#blocks].down, blocks[#blocks].down_out = "new", shape(p .. "conv.conv.weight", 1)
    elseif g["conv.weight"] then
      blocks[#blocks].down = "conv"
    elseif g["conv1.conv.weight"] then
      blocks[#blocks].out = shape(p .. "conv1.conv.weight", 1)
    end
  end
  local mid = table.remove(blocks)
  local is095 = false
  for _, b in ipairs(blocks) do is095 = is095 or b.down == "new" end
  local chans, layers, scaling, types, kinds = {blocks[1].ch}, {}, {}, {}, {}
  for i, b in ipairs(blocks) do
    local out = is095 and (blocks[i + 1] or mid).ch or b.out or b.ch
    if is095 or i < #blocks then chans[#chans + 1] = out end
    layers[i], scaling[i] = b.layers, b.down ~= nil
    types[i] = is095 and "LTXVideo095DownBlock3D" or "LTXVideoDownBlock3D"
    local prod = b.down == "new" and out // b.down_out or 8
    kinds[i] = not is095 and "conv" or ({[4] = "spatial", [2] = "temporal", [8] = "spatiotemporal"})[prod] or "spatiotemporal"
  end
  layers[#layers + 1] = mid.layers
  c.block_out_channels, c.layers_per_block, c.spatio_temporal_scaling = chans, layers, scaling
  c.down_block_types, c.downsample_type = types, kinds
  -- decoder: the mid block first, then per block a widening resnet, an upsampler, a group
  local D = "vae.decoder.up_blocks."
  local dg, dorder = groups_under(keys, D)
  local function group(k)
    local p = ("%s%d."):format(D, k)
    return {layers = count(dg[k], "res_blocks.%d.conv1.conv.weight"), ch = shape(p .. "res_blocks.0.conv1.conv.weight", 1),
            noise = dg[k]["res_blocks.0.per_channel_scale1"] ~= nil}
  end
  local dmid = group(0)
  local ups, cur = {}, {}
  for i = 2, #dorder do
    local k = dorder[i]
    local g = dg[k]
    local p = ("%s%d."):format(D, k)
    if g["res_blocks.0.conv1.conv.weight"] then
      cur.res = group(k)
      ups[#ups + 1], cur = cur, {}
    elseif g["conv.conv.weight"] then
      cur.factor = shape(p .. "conv.conv.weight", 2) * 8 // shape(p .. "conv.conv.weight", 1)
    end
  end
  local dchans, dlayers, noise, dscaling, residual, factors = {}, {dmid.layers}, {dmid.noise}, {}, {}, {}
  for i, u in ipairs(ups) do
    local f = u.factor or 1
    dchans[i], dlayers[i + 1], noise[i + 1] = u.res.ch * f, u.res.layers, u.res.noise
    dscaling[i], residual[i], factors[i] = u.factor ~= nil, f ~= 1, f
  end
  c.decoder_block_out_channels, c.decoder_layers_per_block = reversed(dchans), reversed(dlayers)
  c.decoder_inject_noise, c.decoder_spatio_temporal_scaling = reversed(noise), reversed(dscaling)
  c.upsample_residual, c.upsample_factor = reversed(residual), reversed(factors)
  return c
end
M.vae_config_from_keys = vae_config

-- a folder holding an official single file (found by its keys) and a T5 text encoder
local function single_file(dir)
  local req = zoe.uv.fs_scandir(dir)
  local found
  while req do
    local name = zoe.uv.fs_scandir_next(req)
    if not name then break end
    if name:match("%.safetensors$") then
      local ok, w = pcall(zoe.load, dir .. "/" .. name)
      if ok and w["model.diffusion_model.patchify_proj.weight"] then
        found = {file = name, weights = w}
        break
      end
    end
  end
  if not found then return nil end
  local w = found.weights
  if not w["vae.decoder.conv_in.conv.weight"] then
    error(("%s/%s: an LTX-Video single file without its VAE (vae.*)"):format(dir, found.file), 0)
  end
  local meta = w:metadata() or {}
  local ok, mcfg = pcall(zoe.json.decode, meta.config or "null")
  local tc = transformer_config(w, ok and type(mcfg) == "table" and mcfg or nil)
  check_transformer(dir .. "/" .. found.file, tc)
  local vc = vae_config(w)
  local ecfg, eweights, tok = text_encoder(dir)
  if not (ecfg and eweights and tok) then
    error(("%s: %s needs the T5 v1.1 XXL text encoder beside it: text_encoder/ (config.json and "
      .. "model*.safetensors) and tokenizer/ (tokenizer.json or spiece.model)"):format(dir, found.file), 0)
  end
  return {
    dir = dir, name = (found.file:gsub("%.safetensors$", "")), family = "ltx", version = M.vae_version(vc),
    files = {text_encoder = eweights, transformer = found.file, vae = found.file}, tokenizer = tok,
    config = {transformer = tc, vae = vc, text_encoder = models.read_json(dir .. "/" .. ecfg),
              schedule = M.SCHEDULE},
    rename = {transformer = M.transformer_name, vae = M.vae_namer(vc)},
  }
end

function M.describe(dir)
  if exists(dir .. "/model_index.json") then return diffusers(dir) end
  return single_file(dir)
end

return M
