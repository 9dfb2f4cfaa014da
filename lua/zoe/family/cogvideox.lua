-- The CogVideoX family: Zhipu AI's CogVideoX-2B, 5B, 5B-I2V, 1.5-5B and 1.5-5B-I2V in the
-- diffusers layout people download (model_index.json naming CogVideoXPipeline or
-- CogVideoXImageToVideoPipeline; transformer/, text_encoder/ (T5 v1.1 XXL, usually 2 shards),
-- vae/, scheduler/, tokenizer/spiece.model). Builds the model object of the Model contract
-- (lua/zoe/family/README.md) as the diffusers pipelines run it:
--   text   T5Tokenizer ids padded to 226, the encoder run on all of them without a mask,
--          all 226 rows to the transformer; kept per prompt
--   denoise the transformer on [uncond; cond], v-prediction in the variance-preserving latent
--          (kind vp_v) with the scheduler's SNR shift and zero terminal SNR; DDIM for 2B, DPM
--          for the 5B models, dynamic guidance 6, 50 steps
--   decode the VAE in 2-frame batches, latents divided by the scaling factor, tiled when the
--          frame is larger than one of its tiles
-- Latents are [16, F, h, w] like every family's; the transformer sees [B, F, C, h, w].
local zoe = require "zoe"
local t5 = require "zoe.arch.t5"
local cogvideox = require "zoe.arch.cogvideox"
local cogvideox_vae = require "zoe.arch.cogvideox_vae"
local models = require "zoe.models"
local T = zoe.tensor

local M = {}

M.VARIANTS = "CogVideoX-2B, CogVideoX-5B, CogVideoX-5B-I2V, CogVideoX1.5-5B and CogVideoX1.5-5B-I2V"
M.folders = "the diffusers CogVideoXPipeline / CogVideoXImageToVideoPipeline layout (model_index.json, transformer/, "
  .. "text_encoder/, vae/, scheduler/, tokenizer/spiece.model)"

local Model = {}
Model.__index = Model

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

-- Which released variant a transformer config is, by its structure (nil: none of them). The
-- I2V models take the image latents beside the noisy ones: twice the output channels in.
function M.variant(tc)
  tc = cogvideox.config(tc)
  local rope, pt, learned = tc.use_rotary_positional_embeddings, tc.patch_size_t, tc.use_learned_positional_embeddings
  local out = tc.out_channels or 16
  local t2v, i2v = tc.in_channels == out, tc.in_channels == 2 * out
  if not pt then
    if not rope and not learned and t2v then return "2b" end
    if rope and not learned and t2v then return "5b" end
    if rope and learned and i2v then return "5b-i2v" end
  elseif pt == 2 and rope and not learned then
    if t2v and not tc.ofs_embed_dim then return "1.5-5b" end
    if i2v then return "1.5-5b-i2v" end
  end
  return nil
end

-- Each variant's defaults (diffusers' pipelines, the converter, CogVideo's own demo): 2B runs
-- DDIM, the 5B models DPM; 1.0 makes 49 frames at 720x480 and 8 fps, 1.5 81 at 1360x768, 16 fps.
local DEFAULTS = {
  ["2b"] = {sampler = "cogvideox_ddim", width = 720, height = 480, frames = 49, fps = 8},
  ["5b"] = {sampler = "cogvideox_dpm", width = 720, height = 480, frames = 49, fps = 8},
  ["5b-i2v"] = {sampler = "cogvideox_dpm", width = 720, height = 480, frames = 49, fps = 8},
  ["1.5-5b"] = {sampler = "cogvideox_dpm", width = 1360, height = 768, frames = 81, fps = 16},
  ["1.5-5b-i2v"] = {sampler = "cogvideox_dpm", width = 1360, height = 768, frames = 81, fps = 16},
}

-- A folder in the diffusers layout whose model_index.json names a CogVideoX pipeline: its
-- description; an error naming what is missing or which variants exist for one that is not a
-- supported variant; nil for other folders.
function M.recognize(dir)
  if not exists(dir .. "/model_index.json") then return nil end
  local index = models.read_json(dir .. "/model_index.json")
  local class = tostring(index._class_name or "")
  if not class:find("^CogVideoX") then return nil end
  if class ~= "CogVideoXPipeline" and class ~= "CogVideoXImageToVideoPipeline" then
    error(("%s: %s is not supported; zoe runs CogVideoXPipeline and CogVideoXImageToVideoPipeline folders (%s)")
      :format(dir, class, M.VARIANTS), 0)
  end
  local missing = {}
  local function need(list, what)
    local p = first(dir, list)
    if not p then missing[#missing + 1] = what end
    return p
  end
  local tcfg = need({"transformer/config.json"}, "transformer/config.json")
  local dit = need({"transformer/diffusion_pytorch_model.safetensors", "transformer/diffusion_pytorch_model.safetensors.index.json"},
    "transformer/diffusion_pytorch_model.safetensors")
  local ecfg = need({"text_encoder/config.json"}, "text_encoder/config.json")
  local te = need({"text_encoder/model.safetensors.index.json", "text_encoder/model.safetensors"},
    "text_encoder/model.safetensors(.index.json)")
  local vcfg = need({"vae/config.json"}, "vae/config.json")
  local vae = need({"vae/diffusion_pytorch_model.safetensors"}, "vae/diffusion_pytorch_model.safetensors")
  local tok = need({"tokenizer/spiece.model", "tokenizer/tokenizer.json"}, "tokenizer/spiece.model")
  if #missing > 0 then error(("%s: a CogVideoX folder without %s"):format(dir, table.concat(missing, ", ")), 0) end
  local tc = models.read_json(dir .. "/" .. tcfg)
  local variant = M.variant(tc)
  if not variant then
    error(("%s: this CogVideoX transformer (%d heads x %s, %s layers, in_channels %s, patch_size_t %s, rotary %s) "
      .. "is not a supported variant (%s)"):format(dir, tc.num_attention_heads or 0, tostring(tc.attention_head_dim),
      tostring(tc.num_layers), tostring(tc.in_channels), tostring(cogvideox.config(tc).patch_size_t),
      tostring(tc.use_rotary_positional_embeddings), M.VARIANTS), 0)
  end
  local sched = first(dir, {"scheduler/scheduler_config.json"})
  -- a tokenizer.json, when the folder has one, is what its files were made with; else spiece.model
  tok = first(dir, {"tokenizer/tokenizer.json"}) or tok
  return {
    dir = dir, name = dir:match("([^/]+)$"), family = "cogvideox", variant = variant,
    files = {t5 = te, dit = dit, vae = vae}, tokenizer = tok,
    config = {transformer = tc, text_encoder = models.read_json(dir .. "/" .. ecfg),
              vae = models.read_json(dir .. "/" .. vcfg), scheduler = sched and models.read_json(dir .. "/" .. sched) or {}},
  }
end

local function path_in(dir, p) return p:sub(1, 1) == "/" and p or dir .. "/" .. p end

function M.load(desc, opts)
  local dir, cfg = desc.dir, desc.config
  local tc = cogvideox.config(cfg.transformer)
  local variant = desc.variant or M.variant(tc)
  local sc = cogvideox.config(cfg.scheduler or {})
  local d = DEFAULTS[variant] or DEFAULTS["5b"]
  local self = setmetatable({
    name = desc.name or dir:match("([^/]+)$"), family = "cogvideox", dir = dir, variant = variant,
    cfg = cfg, tcfg = tc, opts = opts, kind = "vp_v",
    files = {t5 = path_in(dir, desc.files.t5), dit = path_in(dir, desc.files.dit), vae = path_in(dir, desc.files.vae)},
    tokenizer_path = path_in(dir, desc.tokenizer),
    text_len = tc.max_text_seq_length or 226,
    supports_i2v = tc.in_channels == 2 * (tc.out_channels or 16),
    latent_channels = cogvideox.config(cfg.vae).latent_channels or 16,
    scaling_factor = cogvideox.config(cfg.vae).scaling_factor or 1.15258426,
    invert_scale = cogvideox.config(cfg.vae).invert_scale_latents,
    -- what every zoe.sample call of this model needs beyond the recipe: the scheduler's table
    sample_settings = {
      beta_start = sc.beta_start or 0.00085, beta_end = sc.beta_end or 0.012,
      beta_schedule = sc.beta_schedule or "scaled_linear", train_steps = sc.num_train_timesteps or 1000,
      snr_shift = sc.snr_shift_scale or (variant == "2b" and 3.0 or 1.0),
      zero_snr = sc.rescale_betas_zero_snr ~= false,
    },
    tiling = "auto",
    _texts = {}, _text_order = {},
  }, Model)
  self.defaults = {sampler = d.sampler, schedule = "trailing", steps = 50, cfg = 6.0, dynamic_cfg = true,
                   fps = d.fps, width = d.width, height = d.height, frames = d.frames, negative = ""}
  self.precision = desc.precision
  if not self.precision then
    local ok, q = pcall(function() return self:weights("dit")["transformer_blocks.0.attn1.to_q.weight"] end)
    self.precision = ok and q and q:dtype() == "bf16" and "bf16" or nil
  end
  return self
end

-- ---------------------------------------------------------------- parts, loaded on first use

function Model:weights(part)
  local w = zoe.load(self.files[part])
  self._mapped = self._mapped or {}
  self._mapped[part] = w
  return w
end

function Model:tokenizer()
  self._tok = self._tok or zoe.tokenizer(self.tokenizer_path)
  return self._tok
end

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local n = f:seek("end")
  f:close()
  return n
end

-- The shards' total size: a sharded text encoder streams when it is over 1 GB in all.
local function weights_size(path)
  if not path:match("%.index%.json$") then return file_size(path) end
  local index, seen, total = models.read_json(path), {}, 0
  for _, shard in pairs(index.weight_map or {}) do
    if not seen[shard] then
      seen[shard] = true
      total = total + file_size((path:match("^(.*)/") or ".") .. "/" .. shard)
    end
  end
  return total
end

function Model:text_encoder()
  self._t5 = self._t5 or t5.encoder(t5.config_from_hf(self.cfg.text_encoder), self:weights("t5"),
    {layout = "hf", stream = weights_size(self.files.t5) > 2 ^ 30})
  return self._t5
end

function Model:transformer()
  self._tr = self._tr or cogvideox.transformer(self.tcfg, self:weights("dit"))
  return self._tr
end

function Model:vae()
  self._vae = self._vae or cogvideox_vae.new(self.cfg.vae, self:weights("vae"))
  return self._vae
end

function Model:release_text_encoder()
  self._t5, self._tok = nil, nil
  collectgarbage()
  zoe.mem_trim()
end

-- Between denoising and decoding: a transformer over 1 GB gives its mapped pages back (the page
-- cache keeps them for the next shot) and the allocator its cached blocks.
function Model:release_denoiser()
  local w = self._mapped and self._mapped.dit
  if w and w.keys then
    local ts, bytes = {}, 0
    for _, name in ipairs(w:keys()) do
      local t = w:get(name)
      ts[#ts + 1] = t
      bytes = bytes + t:numel() * (t:dtype() == "f32" and 4 or 2)
    end
    if bytes > 2 ^ 30 then zoe.drop_pages(ts) end
  end
  collectgarbage()
  zoe.mem_trim()
end

function Model:hash()
  if not self._hash then
    local parts = {}
    for _, part in ipairs {"t5", "dit", "vae"} do parts[#parts + 1] = models.hash_file(self.files[part]) end
    parts[#parts + 1] = models.hash_file(self.tokenizer_path)
    self._hash = zoe.hash(table.concat(parts, ":"))
  end
  return self._hash
end

-- ---------------------------------------------------------------- text

-- The last few prompts' encodings (a T5-XXL prompt of 226 tokens is 2 TFLOP; storyboards
-- and sweeps repeat the negative prompt and often the prompt).
local KEEP_TEXTS = 8

local function remember(self, key, emb)
  if not self._texts[key] then
    self._text_order[#self._text_order + 1] = key
    if #self._text_order > KEEP_TEXTS then self._texts[table.remove(self._text_order, 1)] = nil end
  end
  self._texts[key] = emb
  return emb
end

-- ids (a Lua list, </s> included) padded with <pad> to 226 and encoded without a mask, as
-- CogVideoXPipeline._get_t5_prompt_embeds does: [226, 4096], every row
local function encode_padded(self, ids)
  local n = self.text_len
  local padded = {}
  for i = 1, n do padded[i] = ids[i] or self:tokenizer():pad_id() end
  local key = table.concat(padded, ",")
  local hit = self._texts[key]
  if hit then return hit end
  local emb = self:text_encoder()(T.tensor(padded, "i32"):unsqueeze(1))[1]
  return remember(self, key, emb)
end

function Model:encode_text(text)
  local ids = self:tokenizer():encode(text, {length = self.text_len})
  local list = ids:totable()
  return encode_padded(self, list), ids
end

function Model:tokenize(text)
  local ids = self:tokenizer():encode(text, {add_special_tokens = false})
  return ids:numel() > 0 and ids:totable() or {}
end

-- Embeddings of given ids (</s> included by the caller): all 226 rows, the given ids first;
-- too many ids are cut as the tokenizer cuts them, keeping the last (</s>).
function Model:encode_ids(ids)
  local n, list = self.text_len, {}
  for i = 1, math.min(#ids, n) do list[i] = ids[i] end
  if #ids > n then list[n] = ids[#ids] end
  return encode_padded(self, list)
end

function Model:eos_id() return self:tokenizer():token_to_id("</s>") or 1 end

-- ---------------------------------------------------------------- time and space

local TIME = 4 -- the VAE compresses time 4x causally: clips of 4n+1 frames

function Model:frames_ok(frames)
  if type(frames) == "number" and frames >= 1 and frames % 1 == 0 and (frames - 1) % TIME == 0 then return true end
  return false, "must be 4n+1 (1, 5, 9, 13, 17, ..., 49)"
end

function Model:latent_frames(frames) return (frames - 1) // TIME + 1 end

function Model:frame_span(k)
  if k == 1 then return 1, 1 end
  return TIME * (k - 1) - 2, TIME * (k - 1) + 1
end

-- Latent frames the 1.5 models' patch_size_t 2 adds in front (the pipeline pads, then drops them).
function Model:padding_frames(latent)
  local pt = self.tcfg.patch_size_t
  if not pt or latent % pt == 0 then return 0 end
  return pt - latent % pt
end

function Model:latent_shape(frames, height, width)
  local problems = {}
  local ok, why = self:frames_ok(frames)
  if not ok then problems[#problems + 1] = ("frames %s, got %s"):format(why, tostring(frames)) end
  for _, d in ipairs {{"width", width}, {"height", height}} do
    if type(d[2]) ~= "number" or d[2] < 16 or d[2] % 16 ~= 0 then
      problems[#problems + 1] = ("%s must be a positive multiple of 16 (VAE 8 x patch 2), got %s"):format(d[1], tostring(d[2]))
    end
  end
  if self.tcfg.use_learned_positional_embeddings then
    local w0, h0 = self.tcfg.sample_width * 8, self.tcfg.sample_height * 8
    local f0 = (self.tcfg.sample_frames - 1) // TIME * TIME + 1
    if width ~= w0 or height ~= h0 or frames ~= f0 then
      problems[#problems + 1] = ("its learned position table fixes the size to %dx%d, %d frames"):format(w0, h0, f0)
    end
  end
  if #problems > 0 then error(self.name .. ": " .. table.concat(problems, "; "), 3) end
  local f = self:latent_frames(frames)
  return {self.latent_channels, f + self:padding_frames(f), height // 8, width // 8}
end

-- ---------------------------------------------------------------- conditioning

-- The first frame's latents (the VAE mean, scaled as the I2V pipeline scales them: its
-- posterior sample adds noise of the VAE's own tiny variance) in latent frame 1, zeros after:
-- the channels the I2V transformer gets after the noisy latent (on 1.5 frame 1 is the padding
-- frame the pipeline drops after sampling, as the reference has it). The model redraws the
-- first frame itself, so no latent frames are fixed ('given' is nil).
function Model:condition(frames, shape)
  if not self.supports_i2v then
    error(("%s does not take an image (image-to-video needs CogVideoX-5B-I2V or CogVideoX1.5-5B-I2V)"):format(self.name), 3)
  end
  local c, f, h, w = table.unpack(shape)
  local mean = self:vae():encode(frames:narrow(2, 1, 1):contiguous())
  local scale = self.invert_scale and 1 / self.scaling_factor or self.scaling_factor
  local extra = T.zeros(c, f, h, w)
  extra:narrow(2, 1, 1):copy_(mean * scale)
  return extra, nil
end

function Model:text_condition(cond, uncond)
  if not T.is_tensor(cond) then
    error(self.name .. ": CogVideoX takes one prompt for the whole clip (its text is part of the attention), "
      .. "not one per frame: prompt travel is not supported", 3)
  end
  return cond, uncond
end

-- ---------------------------------------------------------------- denoising and decoding

function Model:denoiser(extra, opts)
  local tr = self:transformer()
  local around = opts and opts.around_blocks -- a step cache's hook (lua/zoe/family/README.md)
  local rope_key, rope
  return function(xs, t, conds)
    local b, c, f, h, w = table.unpack(xs:shape())
    local x = xs:permute(1, 3, 2, 4, 5) -- [B, F, C, h, w]
    if self.supports_i2v then
      local img = (extra or T.zeros(c, f, h, w)):permute(2, 1, 3, 4):unsqueeze(1):expand(b, f, c, h, w)
      x = T.cat({x, img}, 3)
    else
      x = x:contiguous()
    end
    local key = ("%dx%dx%d"):format(f, h, w)
    if key ~= rope_key then rope_key, rope = key, {tr.rope(f, h * 8, w * 8)} end
    local text = T.stack(conds, 1)
    local tt = T.full({b}, t)
    local out = tr.forward(x, tt, text, {rope = rope[1] and rope, around_blocks = around})
    return out:permute(1, 3, 2, 4, 5):contiguous()
  end
end

-- Latent [16, F, h, w] -> video [3, T, H, W] in [-1, 1]: divided by the scaling factor and
-- decoded in 2-frame batches (chunks streamed to on_frames), tiled when larger than a tile
-- (model.tiling = false turns that off; true forces it). opts.frames, the clip's pixel frames,
-- says how many padding frames the 1.5 models added in front (dropped here, as the pipeline does).
function Model:decode(z, opts)
  opts = opts or {}
  if opts.frames then
    local f = self:latent_frames(opts.frames)
    local pad = self:padding_frames(f)
    if pad > 0 and z:size(2) == f + pad then z = z:narrow(2, pad + 1, f) end
  end
  local on = opts.on_frames
  local video = self:vae():decode(z * (1 / self.scaling_factor), {
    tiling = self.tiling,
    on_frames = on and function(chunk) on(chunk:clamp(-1, 1)) end,
  })
  return video:clamp(-1, 1)
end

return M
