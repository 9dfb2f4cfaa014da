-- The Wan family: Wan2.1 and zoe-tiny (a small configuration of the same classes).
-- Recognizes its folders (M.recognize) and builds the model object the pipelines use
-- (the Model contract, lua/zoe/family/README.md) from a description:
--   {dir =, name =, config = <config.json path or table>, files = {t5 =, dit =, vae =},
--    tokenizer = <tokenizer.json>, t5_layout = "wan" | "hf", rename = {dit =, vae =}}
-- Weights are mmapped lazily; the text encoder can be released before the DiT runs.
local zoe = require "zoe"
local t5 = require "zoe.arch.t5"
local wan = require "zoe.arch.wan"
local wan_vae = require "zoe.arch.wan_vae"
local tiling = require "zoe.arch.tiling"
local models = require "zoe.models"
local T = zoe.tensor

local M = {}

-- Wan2.1's default negative prompt (wan/configs/shared_config.py).
M.WAN_NEGATIVE = "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"

-- Wan2.1's latent -> RGB preview: factors (one {r, g, b} per latent channel) and bias for its
-- normalized latent, as published in ComfyUI (comfy/latent_formats.py, class Wan21).
M.WAN21_PREVIEW = {
  factors = {
    {-0.1299, -0.1692, 0.2932}, {0.0671, 0.0406, 0.0442}, {0.3568, 0.2548, 0.1747}, {0.0372, 0.2344, 0.1420},
    {0.0313, 0.0189, -0.0328}, {0.0296, -0.0956, -0.0665}, {-0.3477, -0.4059, -0.2925}, {0.0166, 0.1902, 0.1975},
    {-0.0412, 0.0267, -0.1364}, {-0.1293, 0.0740, 0.1636}, {0.0680, 0.3019, 0.1128}, {0.0032, 0.0581, 0.0639},
    {-0.1251, 0.0927, 0.1699}, {0.0060, -0.0633, 0.0005}, {0.3477, 0.2275, 0.2950}, {0.1984, 0.0913, 0.1861},
  },
  bias = {-0.1835, -0.0868, -0.3360},
}

-- TeaCache's published polynomial for Wan2.1-T2V-1.3B in its use_ret_steps mode (TeaCache4Wan2.1,
-- ali-vilab/TeaCache): the input is the time modulation e0, the first 5 of 50 steps always run.
M.WAN21_T2V_1_3B_CACHE = {
  teacache = {
    coefficients = {-5.21862437e+04, 9.23041404e+03, -5.28275948e+02, 1.36987616e+01, -4.99875664e-02},
    signal = "modulated", start_at = 0.1, source = "TeaCache4Wan2.1 (use_ret_steps), Wan2.1-T2V-1.3B",
  },
}

local Model = {}
Model.__index = Model
-- memory_estimate, work, learn_stages: what a run costs, from its settings alone
require("zoe.family.wan_estimate")(Model)

local function path_in(dir, p) return p:sub(1, 1) == "/" and p or dir .. "/" .. p end

-- Wan's prompt cleaning (wan/modules/tokenizers.py, clean='whitespace'): HTML entities
-- unescaped, runs of whitespace made one space, trimmed. (ftfy's repairs are not done.)
local entities = {amp = "&", lt = "<", gt = ">", quot = '"', apos = "'", nbsp = " "}
local function clean(text)
  for _ = 1, 2 do
    text = text:gsub("&(#?)(%w+);", function(hash, name)
      if hash == "#" then
        local n = tonumber(name) or (name:sub(1, 1):lower() == "x" and tonumber(name:sub(2), 16))
        return n and utf8.char(n) or nil
      end
      return entities[name]
    end)
  end
  return (text:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end
M.clean = clean

-- What the error for an unrecognized folder lists for this family.
M.folders = "config.json with t5, dit and vae; the official Wan2.1 release; the diffusers WanPipeline layout"

-- A folder of ours (config.json holding the parts' configs), the official Wan2.1 release
-- or the diffusers layout: its description; nil when the folder is not Wan's.
function M.recognize(dir)
  local f = io.open(dir .. "/config.json", "rb")
  if f then
    f:close()
    local cfg = models.read_json(dir .. "/config.json")
    if type(cfg.t5) == "table" and type(cfg.dit) == "table" and type(cfg.vae) == "table" then
      return {dir = dir, name = cfg.name, config = cfg}
    end
  end
  return require("zoe.family.wan_files").describe(dir)
end

-- Single files ({dit =, t5 =, vae =, tokenizer =}, zoe.models.load): each part told by its keys.
function M.describe_files(spec) return require("zoe.family.wan_files").describe_files(spec) end

function M.load(desc, opts)
  local dir = desc.dir
  local cfg = type(desc.config) == "table" and desc.config or models.read_json(path_in(dir, desc.config or "config.json"))
  local files = desc.files or desc.weights or cfg.weights
  local self = setmetatable({
    name = desc.name or cfg.name or dir:match("([^/]+)$"),
    family = "wan",
    dir = dir,
    cfg = cfg,
    kind = "flow",
    files = {t5 = path_in(dir, files.t5), dit = path_in(dir, files.dit), vae = path_in(dir, files.vae)},
    tokenizer_path = path_in(dir, desc.tokenizer or (cfg.tokenizer and cfg.tokenizer.file) or "tokenizer.json"),
    rename = desc.rename or {},
    source = desc.source, -- single files: the spec that loads them (for recipes)
    t5_layout = desc.t5_layout or "wan",
    text_len = cfg.dit.text_len,
    z_dim = cfg.vae.z_dim,
    latent = cfg.latent,
    opts = opts,
  }, Model)
  local s = cfg.sampling or {}
  self.defaults = {
    sampler = s.sampler or "unipc", schedule = "flow", steps = s.steps or 50, shift = s.shift or 5.0,
    cfg = s.cfg or 5.0, fps = s.fps or 16, width = s.width or 832, height = s.height or 480,
    frames = s.frames or 81, negative = s.negative_prompt or M.WAN_NEGATIVE,
    -- Wan gives the DiT the integer floor(1000 sigma); zoe-tiny was trained on 1000 sigma
    integer_timesteps = s.timestep == nil or not tostring(s.timestep):find("float"),
  }
  -- the preview projection: the model's own (zoe-tiny's config.json), else Wan2.1's for its VAE
  local v = cfg.vae
  self.preview_projection = cfg.preview or (v.dim == 96 and v.z_dim == 16 and M.WAN21_PREVIEW) or nil
  -- published step-cache calibration, where there is one (zoe.cache.calibration)
  local d = cfg.dit
  if d.dim == 1536 and d.num_layers == 30 and d.in_dim == 16 then self.cache_defaults = M.WAN21_T2V_1_3B_CACHE end
  -- image-to-video (Wan2.1-I2V's channel concat, minus CLIP) when the DiT takes it
  self.supports_i2v = cfg.dit.in_dim == 2 * cfg.vae.z_dim + 4
  -- a bf16 checkpoint runs in bf16 throughout (its products of activations too)
  self.precision = desc.precision
  if not self.precision then
    local ok, q = pcall(function() return self:weights("dit")["blocks.0.ffn.0.weight"] end)
    local lower = {bf16 = true, f8_e4m3 = true, f8_e5m2 = true} -- and quantized weights: int8 products
    self.precision = ok and q and (lower[q:dtype()] or q:nbytes() < 2 * q:numel()) and "bf16" or nil
  end
  return self
end

-- ---------------------------------------------------------------- parts, loaded on first use

function Model:weights(part)
  local w = zoe.load(self.files[part])
  w = require("zoe.arch.util").scaled_fp8(w) or w -- ComfyUI's fp8 files with scale_weight
  self._mapped = self._mapped or {}
  self._mapped[part] = w -- the last mapping of each part (release_denoiser gives its pages back)
  local rename = self.rename[part]
  return rename and require("zoe.arch.util").renamed(w, rename) or w
end

-- This model with LoRAs on its DiT ({{path, strength}, ...}, zoe.lora): a variant sharing the text
-- encoder and VAE (and their caches), made once per list. Keys matching nothing are warned about.
function Model:with_loras(list, opts)
  if not list or #list == 0 then return self end
  local parts = {}
  for i, item in ipairs(list) do parts[i] = ("%s=%.17g"):format(item[1] or item.path, item[2] or item.strength or 1) end
  local key = table.concat(parts, "|")
  self._lora_variants = self._lora_variants or setmetatable({}, {__mode = "v"})
  local v = self._lora_variants[key]
  if v then return v end
  v = setmetatable({loras = list, _dit = false, _lora_dit = false}, {__index = self})
  function v:weights(part)
    local w = Model.weights(self, part)
    if part ~= "dit" then return w end
    if not self._lora_dit then self._lora_dit, self.lora_report = require("zoe.lora").apply(w, list, opts) end
    return self._lora_dit
  end
  self._lora_variants[key] = v
  return v
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

-- A text encoder over 1 GB runs streamed: each layer's pages are dropped once used.
function Model:text_encoder()
  self._t5 = self._t5 or t5.encoder(self.cfg.t5, self:weights("t5"),
    {layout = self.t5_layout, stream = file_size(self.files.t5) > 2 ^ 30})
  return self._t5
end

function Model:dit()
  if self._dit then return self._dit end
  local w = self:weights("dit")
  if self.files.dit:match("%.gguf$") then w = require("zoe.family.wan_files").restore_dims(w, self.cfg.dit) end
  self._dit = wan.dit(self.cfg.dit, w)
  return self._dit
end

function Model:vae()
  self._vae = self._vae or wan_vae.new(self.cfg.vae, self:weights("vae"))
  return self._vae
end

-- Drop the text encoder (umT5-XXL is 11 GB): its weights unmap once unreferenced.
function Model:release_text_encoder()
  self._t5, self._tok = nil, nil
  collectgarbage()
  zoe.mem_trim()
end

-- Between denoising and decoding: a DiT over 1 GB (release_bytes) gives its mapped pages back
-- (they stay in the page cache and fault back in on the next shot) and the allocator its
-- cached activation blocks, so that the pipeline's peak memory is the larger of the two
-- stages, not their sum.
function Model:release_denoiser()
  local w = self._mapped and self._mapped.dit
  if w and w.keys then
    local ts, bytes = {}, 0
    for _, name in ipairs(w:keys()) do
      local t = w:get(name)
      ts[#ts + 1] = t
      bytes = bytes + t:nbytes()
    end
    if bytes > (self.release_bytes or 2 ^ 30) then zoe.drop_pages(ts) end
  end
  collectgarbage()
  zoe.mem_trim()
end

-- Content hash of the weights, for records and caches (computed once per model).
function Model:hash()
  if not self._hash then
    local parts = {}
    for _, part in ipairs {"t5", "dit", "vae"} do parts[#parts + 1] = models.hash_file(self.files[part]) end
    parts[#parts + 1] = models.hash_file(self.tokenizer_path)
    self._hash = zoe.hash(table.concat(parts, ":"))
  end
  return self._hash
end

-- ---------------------------------------------------------------- the steps of a generation

-- Text -> embeddings [L, dim] of the real tokens (</s> included); the encoder never
-- sees padding (it is masked, so the rows are the same). Also the token ids.
function Model:encode_text(text)
  local ids = self:tokenizer():encode(clean(text), {length = self.text_len})
  local n = 0
  for _, id in ipairs(ids:totable()) do
    if id ~= self:tokenizer():pad_id() then n = n + 1 end
  end
  n = math.max(n, 1)
  local real = ids:narrow(1, 1, n)
  local emb = self:text_encoder()(real:unsqueeze(1), T.ones({1, n}, "i32"))
  return emb[1], real
end

-- How many tokens the whole text is (</s> included), before text_len cuts it.
function Model:count_tokens(text) return self:tokenizer():encode(clean(text)):numel() end

-- Token ids of a text without the end token (for weighted spans).
function Model:tokenize(text)
  local ids = self:tokenizer():encode(clean(text), {length = self.text_len, add_special_tokens = false})
  local out = {}
  for _, id in ipairs(ids:totable()) do
    if id ~= self:tokenizer():pad_id() then out[#out + 1] = id end
  end
  return out
end

-- Embeddings of given ids (a Lua list; </s> is the caller's business).
function Model:encode_ids(ids)
  local t = T.tensor(ids, "i32"):unsqueeze(1)
  return self:text_encoder()(t, T.ones({1, #ids}, "i32"))[1]
end

function Model:eos_id() return self:tokenizer():token_to_id("</s>") or 1 end

-- ---------------------------------------------------------------- time and space

-- The VAE compresses time 4x causally: latent frame 1 is pixel frame 1, latent frame
-- k + 1 is pixel frames 4k - 2 .. 4k + 1. So a clip is 4n + 1 frames.
local TIME = 4

function Model:frames_ok(frames)
  if type(frames) == "number" and frames >= 1 and frames % 1 == 0 and (frames - 1) % TIME == 0 then return true end
  return false, "must be 4n+1 (1, 5, 9, 13, 17, ...)"
end

-- Latent frames of a clip of 'frames' pixel frames (also of a valid prefix of one).
function Model:latent_frames(frames) return (frames - 1) // TIME + 1 end

-- The pixel frames (first, last; 1-based) that latent frame k (1-based) stands for.
function Model:frame_span(k)
  if k == 1 then return 1, 1 end
  return TIME * (k - 1) - 2, TIME * (k - 1) + 1
end

-- Checks size and length against what the model can take; returns the latent shape.
function Model:latent_shape(frames, height, width)
  local problems = {}
  local ok, why = self:frames_ok(frames)
  if not ok then problems[#problems + 1] = ("frames %s, got %s"):format(why, tostring(frames)) end
  for _, d in ipairs {{"width", width}, {"height", height}} do
    if type(d[2]) ~= "number" or d[2] < 16 or d[2] % 16 ~= 0 then
      problems[#problems + 1] = ("%s must be a positive multiple of 16 (VAE 8 x patch 2), got %s"):format(d[1], tostring(d[2]))
    end
  end
  if #problems > 0 then error(self.name .. ": " .. table.concat(problems, "; "), 3) end
  return {self.z_dim, self:latent_frames(frames), height // 8, width // 8}
end

-- Image-to-video's first-frame conditioning (Wan2.1-I2V's channel concat, minus CLIP):
-- 'frames' [3, n, H, W] in [-1, 1], n = 1 or 4k+1 frames given at the start. Returns
-- the channels the denoiser gets after every latent (mask [4, F', h, w] then y
-- [z, F', h, w], the normalized VAE mean of [given frames, zeros...]) and the latent
-- frames the given frames alone determine (y's first ones).
-- opts.tile: the VAE's tiles as decode_tile takes them (the encode's are 8x, in video pixels).
function Model:condition(frames, shape, opts)
  if not self.supports_i2v then error(self.name .. " does not take image conditioning", 3) end
  local _, fl, h, w = table.unpack(shape)
  local n = frames:size(2)
  local total = TIME * (fl - 1) + 1
  if n > total then error(("%d conditioning frames for a clip of %d"):format(n, total), 3) end
  local video = T.zeros(3, total, h * 8, w * 8)
  video:narrow(2, 1, n):copy_(frames)
  local tile = self:decode_tile(shape, opts and opts.tile)
  local y = self:vae():encode(video, self.latent.mean, self.latent.std, tile and {tile = {8 * tile[1], 8 * tile[2]}} or nil)
  -- pixel-frame mask, frame 0 repeated 4 times, grouped by latent frame (Wan2.1-I2V)
  local given = self:latent_frames(n)
  local mask = T.zeros(4, fl, h, w)
  mask:narrow(2, 1, given):fill_(1)
  return T.cat({mask, y}, 1), y:narrow(2, 1, given)
end

-- ---------------------------------------------------------------- conditioning and denoising

-- Cross-attention caches (one {k, v} per block) of text embeddings: one [L, dim] tensor
-- for the whole clip, or a list of them, one per latent frame (prompt travel).
function Model:cross_kv(embeddings) return self:dit().cross_kv(embeddings) end

-- The caches of a prompt and its negative (each one [L, dim] tensor) as one batch: each
-- comes back as its entry of the batch (views), and merge_kv gives a guided step the
-- batch itself rather than concatenated copies. At Wan's 512 text tokens the caches of
-- two prompts take 0.38 GB for the 1.3B model, and a joined copy would take as much again.
function Model:cross_kv_pair(cond, uncond)
  if not (uncond and T.is_tensor(cond) and T.is_tensor(uncond)) then
    return self:cross_kv(cond), uncond and self:cross_kv(uncond) or nil
  end
  local both = self:cross_kv({cond, uncond})
  local function entry(i)
    local kv = {batch = both, entry = i}
    for b, kvb in ipairs(both) do kv[b] = {kvb[1]:narrow(1, i, 1), kvb[2]:narrow(1, i, 1)} end
    return kv
  end
  return entry(1), entry(2)
end

-- The conditioning the denoiser takes for a prompt and its negative (nil without
-- guidance): their cross-attention caches, made as one batch.
function Model:text_condition(cond, uncond) return self:cross_kv_pair(cond, uncond) end

-- Caches of several prompts as one batch, block by block. A prompt with one context per
-- latent frame (travel) next to one without: the single context is repeated per frame.
local function merge_kv(list)
  if #list == 1 then return list[1] end
  local batch = list[1].batch
  local whole = batch and #list == batch[1][1]:size(1)
  for i, kv in ipairs(list) do whole = whole and kv.batch == batch and kv.entry == i end
  if whole then return batch end -- the entries of one batch, in order (Model:cross_kv_pair)
  local frames = 1
  for _, kv in ipairs(list) do frames = math.max(frames, kv[1][1]:size(1)) end
  local out = {}
  for b = 1, #list[1] do
    local ks, vs = {}, {}
    for i, kv in ipairs(list) do
      local k, v = kv[b][1], kv[b][2]
      if k:size(1) ~= frames then
        local _, lc, h, dh = table.unpack(k:shape())
        k, v = k:expand(frames, lc, h, dh), v:expand(frames, lc, h, dh)
      end
      ks[i], vs[i] = k, v
    end
    out[b] = {T.cat(ks, 1), T.cat(vs, 1)}
  end
  return out
end

-- The denoiser for zoe.sample: model_batch(xs [B, z, F', h, w], t, conds) with conds the
-- prompts' caches (Model:text_condition); 'extra' channels (Model:condition) go after
-- every latent. opts.around_blocks(x, run, info) wraps the DiT's block loop (wan.dit).
function Model:denoiser(extra, opts)
  local fopts = opts and opts.around_blocks and {around_blocks = opts.around_blocks} or nil
  local dit = self:dit()
  local last_conds, last_kv
  local need_extra = self.supports_i2v
  return function(xs, t, conds)
    if need_extra and not extra then -- text-to-video on an i2v model: mask and y are zero
      local _, _, f, h, w = table.unpack(xs:shape())
      extra = T.zeros(4 + self.z_dim, f, h, w)
    end
    local inputs = {}
    for i = 1, xs:size(1) do inputs[i] = extra and T.cat({xs[i], extra}, 1) or xs[i] end
    local same = last_conds and #conds == #last_conds
    for i = 1, #conds do same = same and conds[i] == last_conds[i] end
    if not same then -- the batch of caches is built once, not every step
      last_conds, last_kv = {table.unpack(conds)}, merge_kv(conds)
    end
    return T.stack(dit.forward(inputs, t, last_kv, fopts), 1)
  end
end

-- What one latent pixel of a tile costs a decode at its peak, per channel of the VAE's base
-- width (Wan2.1's VAE: dim 96): the part a tiled decode cuts runs at 8x the latent's size,
-- four frames at a time, with the causal caches of every convolution. Measured at 832x480:
-- tiles of 60x32 latent pixels peaked at 3.84 GB RSS, 60x56 at 5.34 GB, 1.04 MB a pixel
-- more and 1.8 GB besides (weights, the allocator's cache); twice the slope covers both
-- within the budget below. In bench-wan's process (after the DiT) 34x56 tiles of 17 frames
-- peaked at 4.56 GB: a tenth of 24 GB gives 34x32 (272x256 pixels, diffusers' size).
local DECODE_BYTES_PER_LATENT_PIXEL_AND_DIM = 2 * 1.04e6 / 96

-- The tiles of a decode of latent 'shape' ({z, F', h, w}): 'tile' as given ({h, w} in
-- latent pixels, or false for none), else the largest that keep the decode within a tenth
-- of the machine's memory (zoe.arch.tiling); false when the frame fits in one.
function Model:decode_tile(shape, tile)
  if tile ~= nil then return tile end
  local h, w = shape[3], shape[4]
  local per_pixel = DECODE_BYTES_PER_LATENT_PIXEL_AND_DIM * self.cfg.vae.dim
  local plan = tiling.plan(h, w, {area = math.max(4 * wan_vae.OVERLAP ^ 2, tiling.budget() / per_pixel),
                                  overlap = wan_vae.OVERLAP})
  if plan.tile[1] >= h and plan.tile[2] >= w then return false end
  return plan.tile
end

-- The preview of a latent [z, F', h, w] (normalized, as sampled): [3, F', h, w] in [-1, 1],
-- or nil for a model without a projection.
function Model:preview(z)
  if not self.preview_projection then return nil end
  return require("zoe.preview").project(z, self.preview_projection)
end

-- Latent [z, F', h, w] -> video [3, T, H, W] in [-1, 1]; on_frames(chunk) sees each
-- decoded chunk (clamped) as it comes, for a streaming writer. opts.tile: as decode_tile
-- (a tiled decode streams its chunks only once every tile is done).
function Model:decode(z, opts)
  local on = opts and opts.on_frames
  local tile = self:decode_tile(z:shape(), opts and opts.tile)
  local video = self:vae():decode(z, self.latent.mean, self.latent.std, {
    on_frames = on and function(chunk) on(chunk:clamp(-1, 1)) end, tile = tile or nil,
  })
  return video:clamp(-1, 1)
end

return M
