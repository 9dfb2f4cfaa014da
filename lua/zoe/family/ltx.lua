-- The LTX-Video family (Lightricks' LTX-Video 2B, 0.9.0 / 0.9.1 / 0.9.5): recognizes its
-- folders (family/ltx_files.lua) and builds the model object the pipelines use (the Model
-- contract, lua/zoe/family/README.md) from a description:
--   {dir =, name =, version =, files = {text_encoder =, transformer =, vae =}, tokenizer =,
--    config = {transformer =, vae =, text_encoder =, schedule =}, rename = {transformer =, vae =}}
-- The VAE compresses 32x in space and 8x in time into 128 channels, so clips are 8n+1
-- frames at multiples of 32; the transformer sees one token per latent position.
local zoe = require "zoe"
local t5 = require "zoe.arch.t5"
local ltx = require "zoe.arch.ltx"
local ltx_vae = require "zoe.arch.ltx_vae"
local models = require "zoe.models"
local files = require "zoe.family.ltx_files"
local T = zoe.tensor

local M = {}

M.folders = "the diffusers LTXPipeline layout; an ltx-video-2b-v0.9*.safetensors single file beside text_encoder/ and tokenizer/"

function M.recognize(dir) return files.describe(dir) end

local Model = {}
Model.__index = Model

-- memory_estimate, work, learn_stages: what a run costs, from its settings alone
require("zoe.family.ltx_estimate")(Model)

local TIME, SPACE = 8, 32

local function path_in(dir, p) return p:sub(1, 1) == "/" and p or dir .. "/" .. p end

function M.load(desc, opts)
  local dir = desc.dir
  local cfg = desc.config
  local version = desc.version or files.vae_version(cfg.vae)
  local per = files.DEFAULTS[version] or files.DEFAULTS["0.9.1"]
  local self = setmetatable({
    name = desc.name or dir:match("([^/]+)$"),
    family = "ltx",
    version = version,
    dir = dir,
    cfg = cfg,
    kind = "flow",
    files = {text_encoder = path_in(dir, desc.files.text_encoder), transformer = path_in(dir, desc.files.transformer),
             vae = path_in(dir, desc.files.vae)},
    tokenizer_path = path_in(dir, desc.tokenizer),
    rename = desc.rename or {},
    -- the official pipeline's prompt length (diffusers' LTXPipeline cuts at 128)
    text_len = desc.text_len or 256,
    latent_channels = cfg.transformer.in_channels,
    supports_i2v = true,
    decode_timestep = per.decode_timestep, decode_noise_scale = per.decode_noise_scale,
    opts = opts,
  }, Model)
  self.defaults = {
    sampler = "euler", schedule = "flow_dynamic", schedule_opts = cfg.schedule or files.SCHEDULE,
    steps = per.steps, cfg = 3.0, fps = 25, width = 704, height = 512, frames = 161, negative = files.NEGATIVE,
    integer_timesteps = false,
  }
  self.precision = desc.precision
  if not self.precision then
    local ok, q = pcall(function() return self:weights("transformer")["transformer_blocks.0.attn1.to_q.weight"] end)
    self.precision = ok and q and q:dtype() == "bf16" and "bf16" or nil
  end
  return self
end

-- ---------------------------------------------------------------- parts, loaded on first use

function Model:weights(part)
  local w = zoe.load(self.files[part])
  self._mapped = self._mapped or {}
  self._mapped[part] = w
  local rename = self.rename[part]
  return rename and require("zoe.arch.util").renamed(w, rename) or w
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

-- T5 v1.1 XXL (9.5 GB in bf16) runs streamed: each layer's pages are dropped once used.
function Model:text_encoder()
  if not self._t5 then
    local size = file_size(self.files.text_encoder)
    if self.files.text_encoder:match("%.index%.json$") then size = 2 ^ 31 end
    self._t5 = t5.encoder(t5.config_from_hf(self.cfg.text_encoder), self:weights("text_encoder"),
      {layout = "hf", stream = size > 2 ^ 30})
  end
  return self._t5
end

function Model:transformer()
  self._tr = self._tr or ltx.transformer(self.cfg.transformer, self:weights("transformer"))
  return self._tr
end

function Model:vae()
  self._vae = self._vae or ltx_vae.new(self.cfg.vae, self:weights("vae"))
  return self._vae
end

function Model:release_text_encoder()
  self._t5, self._tok = nil, nil
  collectgarbage()
  zoe.mem_trim()
end

-- Between denoising and decoding: the transformer's mapped pages go back (they stay in the
-- page cache), and the allocator's cached activations.
function Model:release_denoiser()
  local w = self._mapped and self._mapped.transformer
  if w and w.keys then
    local ts = {}
    for _, name in ipairs(w:keys()) do
      if not self.rename.transformer or name:find("^model%.diffusion_model%.") then ts[#ts + 1] = w:get(name) end
    end
    zoe.drop_pages(ts)
  end
  self._tr = nil
  collectgarbage()
  zoe.mem_trim()
end

function Model:hash()
  if not self._hash then
    local parts = {}
    for _, part in ipairs {"text_encoder", "transformer", "vae"} do parts[#parts + 1] = models.hash_file(self.files[part]) end
    parts[#parts + 1] = models.hash_file(self.tokenizer_path)
    self._hash = zoe.hash(table.concat(parts, ":"))
  end
  return self._hash
end

-- ---------------------------------------------------------------- text

local function clean(text) return (text:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")) end

-- Text -> embeddings [L, 4096] of the real tokens (</s> included), encoded with the
-- padding masked as the official pipeline does (diffusers' LTXPipeline lets the real
-- tokens attend to the padding); the transformer masks the padding out of its
-- cross-attention either way.
function Model:encode_text(text)
  local tok = self:tokenizer()
  local ids = tok:encode(clean(text), {length = self.text_len})
  local n = 0
  for _, id in ipairs(ids:totable()) do
    if id ~= tok:pad_id() then n = n + 1 end
  end
  n = math.max(n, 1)
  local real = ids:narrow(1, 1, n)
  return self:text_encoder()(real:unsqueeze(1), T.ones({1, n}, "i32"))[1], real
end

function Model:tokenize(text)
  local tok = self:tokenizer()
  local ids = tok:encode(clean(text), {length = self.text_len, add_special_tokens = false})
  local out = {}
  for _, id in ipairs(ids:totable()) do
    if id ~= tok:pad_id() then out[#out + 1] = id end
  end
  return out
end

function Model:encode_ids(ids)
  local t = T.tensor(ids, "i32"):unsqueeze(1)
  return self:text_encoder()(t, T.ones({1, #ids}, "i32"))[1]
end

function Model:eos_id() return self:tokenizer():token_to_id("</s>") or 1 end

-- ---------------------------------------------------------------- time and space

-- The causal VAE compresses time 8x: latent frame 1 is pixel frame 1, latent frame k + 1
-- pixel frames 8k - 6 .. 8k + 1. So a clip is 8n + 1 frames.
function Model:frames_ok(frames)
  if type(frames) == "number" and frames >= 1 and frames % 1 == 0 and (frames - 1) % TIME == 0 then return true end
  return false, "must be 8n+1 (1, 9, 17, 25, ..., 161)"
end

function Model:latent_frames(frames) return (frames - 1) // TIME + 1 end

function Model:frame_span(k)
  if k == 1 then return 1, 1 end
  return TIME * (k - 2) + 2, TIME * (k - 1) + 1
end

function Model:latent_shape(frames, height, width)
  local problems = {}
  local ok, why = self:frames_ok(frames)
  if not ok then problems[#problems + 1] = ("frames %s, got %s"):format(why, tostring(frames)) end
  for _, d in ipairs {{"width", width}, {"height", height}} do
    if type(d[2]) ~= "number" or d[2] < SPACE or d[2] % SPACE ~= 0 then
      problems[#problems + 1] = ("%s must be a positive multiple of 32 (the VAE's compression), got %s"):format(d[1], tostring(d[2]))
    end
  end
  if #problems > 0 then error(self.name .. ": " .. table.concat(problems, "; "), 3) end
  return {self.latent_channels, self:latent_frames(frames), height // SPACE, width // SPACE}
end

-- ---------------------------------------------------------------- conditioning

-- A prompt's cross-attention keys and values for every block (made once per prompt).
local function text_kv(self, emb)
  if not T.is_tensor(emb) then
    error(self.name .. ": LTX-Video takes one prompt per clip (prompt travel needs a model with per-frame text)", 4)
  end
  local kv = self:transformer().cross_kv(emb:unsqueeze(1))
  kv.length = emb:size(1)
  return kv
end

function Model:text_condition(cond, uncond)
  return text_kv(self, cond), uncond and text_kv(self, uncond) or nil
end

-- Several prompts' caches as one batch: keys and values padded to the longest, with a
-- key mask (the reference's caption mask, which drops the padding exactly).
local function batch_kv(list)
  if #list == 1 then return list[1] end
  local Lmax = 0
  for _, kv in ipairs(list) do Lmax = math.max(Lmax, kv.length) end
  local mask = T.zeros(#list, Lmax)
  for i, kv in ipairs(list) do mask[i]:narrow(1, 1, kv.length):fill_(1) end
  local out = {mask = mask}
  for b = 1, #list[1] do
    local ks, vs = {}, {}
    for i, kv in ipairs(list) do
      local k, v = kv[b][1], kv[b][2]
      local pad = Lmax - kv.length
      if pad > 0 then
        local _, _, h, dh = table.unpack(k:shape())
        k, v = T.cat({k, T.zeros(1, pad, h, dh)}, 2), T.cat({v, T.zeros(1, pad, h, dh)}, 2)
      end
      ks[i], vs[i] = k, v
    end
    out[b] = {T.cat(ks, 1), T.cat(vs, 1)}
  end
  return out
end

-- Image-to-video as the official pipeline conditions on a first frame: the given frames
-- (1, or 8k+1) are encoded to their latent frames (the posterior's mean, normalized as
-- the pipeline normalizes, scaling factor 1); those latent tokens are held at that value
-- and given timestep 0 while the rest is denoised.
function Model:condition(frames, shape)
  local _, fl, h, w = table.unpack(shape)
  local n = frames:size(2)
  local ok, why = self:frames_ok(n)
  if not ok then error(("%s: conditioning frames %s, got %d"):format(self.name, why, n), 3) end
  local given = self:latent_frames(n)
  if given > fl then error(("%s: %d conditioning frames for a clip of %d latent frames"):format(self.name, n, fl), 3) end
  if frames:size(3) ~= h * SPACE or frames:size(4) ~= w * SPACE then
    error(("%s: conditioning frames are %dx%d, the clip %dx%d"):format(self.name, frames:size(4), frames:size(3), w * SPACE, h * SPACE), 3)
  end
  local vae = self:vae()
  local mean = vae:encode(frames:unsqueeze(1))
  local z = vae:normalize(mean, 1.0)[1]
  return {given = z}, z
end

-- The denoiser for zoe.sample: xs [B, 128, F, h, w] -> velocities. opts.fps is the clip's
-- frame rate (the rotary table's time scale, 8/fps as the pipeline computes it).
function Model:denoiser(extra, opts)
  local tr = self:transformer()
  local fps = opts and opts.fps or self.defaults.fps
  local given = extra and extra.given
  local around = opts and opts.around_blocks -- a step cache's hook (lua/zoe/family/README.md)
  local last_conds, last_kv
  return function(xs, t, conds)
    local B, _, F, H, W = table.unpack(xs:shape())
    local grid = {F, H, W}
    local same = last_conds and #conds == #last_conds
    for i = 1, #conds do same = same and conds[i] == last_conds[i] end
    if not same then last_conds, last_kv = {table.unpack(conds)}, batch_kv(conds) end
    local x = xs
    local n = 0
    if given then -- the conditioned latent frames, as given, at timestep 0
      x = xs:clone()
      local g = given:size(2)
      for b = 1, B do x[b]:narrow(2, 1, g):copy_(given) end
      n = g * H * W
    end
    local v = tr.forward(ltx.pack(x), t, last_kv, {grid = grid, rope_scale = {TIME / fps, SPACE, SPACE}, cond_tokens = n,
                                                   around_blocks = around})
    v = ltx.unpack(v, grid)
    if given then -- velocities that carry those frames to the given latent: x0 = x - sigma*v = given
      local g, sigma = given:size(2), (type(t) == "number" and t or t:totable()[1]) / 1000
      for b = 1, B do
        local xf = xs[b]:narrow(2, 1, g)
        v[b]:narrow(2, 1, g):copy_((xf - given) * (1 / sigma))
      end
    end
    return v
  end
end

-- ---------------------------------------------------------------- decoding

-- The preview of a latent [128, F, h, w] (normalized, as sampled): [3, F, h, w] in [-1, 1] by
-- the factors published for LTX-Video's VAE (ltx_preview.lua); nil for other latent sizes.
function Model:preview(z)
  if z:size(1) ~= 128 then return nil end
  return require("zoe.preview").project(z, require("zoe.family.ltx_preview"))
end

-- Latent [128, F, h, w] -> video [3, 8(F-1)+1, 32h, 32w] in [-1, 1], as LTXPipeline decodes
-- (streamed: on_frames gets each chunk of frames as the decoder finishes it):
-- denormalized; for the timestep-conditioned decoders (0.9.1, 0.9.5) mixed with noise by
-- decode_noise_scale and decoded at decode_timestep. opts.seed seeds that noise (and the
-- 0.9.1 decoder's own), so a recipe decodes to the same video.
function Model:decode(z, opts)
  opts = opts or {}
  local vae = self:vae()
  local x = vae:denormalize(z:unsqueeze(1))
  local dopts = {}
  if self.cfg.vae.timestep_conditioning then
    local gen = T.generator(opts.seed or 0)
    vae.generator = gen
    local s = opts.decode_noise_scale or self.decode_noise_scale
    x = x * (1 - s) + gen:randn(x:shape()) * s
    dopts.timestep = opts.decode_timestep or self.decode_timestep
  end
  local on = opts.on_frames
  dopts.on_frames = on and function(chunk) on(chunk[1]:clamp(-1, 1)) end
  dopts.tile = self:decode_tile(z:shape(), opts.tile) or nil
  return vae:decode(x, dopts)[1]:clamp(-1, 1)
end

-- The decode's spatial tiles (latent pixels), or false: the streamed decoder holds a few
-- frames per stage whatever the clip's length, so a frame of any released size decodes
-- whole; tiles come only when a recipe asks (vae_tile = {h, w}).
function Model:decode_tile(shape, tile)
  if tile ~= nil then return tile end
  return false
end

return M
