-- What a Wan run costs, from its settings alone (no weights read): the memory it needs and
-- the work it does. The pipeline asks these of the model (lua/zoe/family/README.md) before
-- anything is computed: it refuses a run that cannot fit and prints how long a long one
-- will take (zoe.estimate turns the work into seconds with this machine's op rates).
--
-- Memory, calibrated on measured peaks (zoe-tiny 64x64 to 1024x1024, Wan2.1 at 320x192 to
-- 832x480; within about 20%): the pipeline's peak is the larger of two stages, since the
-- DiT's pages are given back before decoding.
--   denoise: the DiT's weights, a streamed text encoder's largest layer, the cross-attention
--     caches, and a block's activations: about 8 x D floats per token and batch entry (x,
--     norms, q, k, v, outputs; attention is tiled), plus the feed-forward's hidden layer
--     for at most 8192 rows at a time.
--   decode: the VAE's weights, a latent frame's decode (4 output frames through every level
--     of the decoder, about 8 tensors of each level's channels live; of one tile when the
--     frame is decoded in tiles), and the output video (f32 [3, T, H, W] as chunks, joined,
--     and clamped).
local zoe = require "zoe"

local F32 = 4
local BASE = 150 * 2 ^ 20   -- the process itself: libraries, Lua, allocator
local FFN_ROWS = 8192       -- the DiT's feed-forward rows at a time (runtime/nn/dit.c)
local LIVE_PER_LEVEL = 8    -- decoder tensors of a level's size alive at its peak

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local n = f:seek("end")
  f:close()
  return n
end

-- The decoder's channels per output pixel of one frame: level l runs at 1/4^l of the pixels
-- with dim * dim_mult[l + 1] channels (Wan2.1: 96 + 192/4 + 384/16 + 384/64 = 174).
local function decoder_floats_per_pixel(vae)
  local n = 0
  for l, m in ipairs(vae.dim_mult) do n = n + vae.dim * m / 4 ^ (l - 1) end
  return n
end

-- Decoder flops per output pixel-frame, direct convolution (a fallback for the time estimate
-- before this machine has timed a decode): (num_res_blocks + 1) residual blocks of two
-- 3x3x3 convolutions per level.
local function decoder_flops_per_pixel(vae)
  local n = 0
  local convs = 2 * ((vae.num_res_blocks or 2) + 1)
  for l, m in ipairs(vae.dim_mult) do
    local c = vae.dim * m
    n = n + convs * 2 * 27 * c * c / 4 ^ (l - 1)
  end
  return n
end

local function tokens(s, cfg)
  local p = cfg.dit.patch_size or {1, 2, 2}
  local f = (s.frames - 1) // 4 + 1
  return f * (s.height // 8 // p[2]) * (s.width // 8 // p[3])
end

local function guided(s) return not (type(s.cfg) == "number" and s.cfg == 1) end

return function(Model)
  -- {bytes =, parts = {denoise =, decode =}, what = "..."} for settings s (width, height,
  -- frames, cfg), the pipeline's peak resident memory.
  function Model:memory_estimate(s)
    local cfg = self.cfg
    local D, F, layers = cfg.dit.dim, cfg.dit.ffn_dim, cfg.dit.num_layers
    local B = guided(s) and 2 or 1
    local L = tokens(s, cfg)
    local t5 = file_size(self.files.t5)
    local t5_resident = t5 > 2 ^ 30 and t5 / (cfg.t5.num_layers or 24) or t5 -- streamed: a layer at a time
    local kv = B * layers * 2 * (cfg.dit.text_len or 512) * D * F32
    local latents = 8 * self.z_dim * ((s.frames - 1) // 4 + 1) * (s.height // 8) * (s.width // 8) * F32
    local activations = B * L * 8 * D * F32 + math.min(B * L, FFN_ROWS) * F * 2 * F32
    local denoise = file_size(self.files.dit) + t5_resident + kv + latents + activations
    local px = s.width * s.height
    -- a frame too big for memory is decoded in tiles (Model:decode_tile): a tile's working set
    local tile = self.decode_tile and self:decode_tile({self.z_dim, 1, s.height // 8, s.width // 8}, s.vae_tile)
    local work_px = tile and math.min(px, tile[1] * 8 * tile[2] * 8) or px
    local decode = file_size(self.files.vae) + work_px * 4 * decoder_floats_per_pixel(cfg.vae) * LIVE_PER_LEVEL * F32
      + 3 * 3 * s.frames * px * F32
    return {bytes = BASE + math.max(denoise, decode), parts = {denoise = denoise, decode = decode},
            what = ("%dx%d, %d frames: %d tokens%s"):format(s.width, s.height, s.frames, L, B == 2 and " x 2 (guidance)" or "")}
  end

  -- The work of a run, for zoe.estimate: a list of {stage =, kind =, units =, count =,
  -- flops_per_unit =}. 'kind' is an op whose speed the runtime learns (zoe.offload_rates:
  -- ns per unit of the op's cost, which for wan_block is its flops, attention included) or
  -- a stage the pipeline times itself ("decode:NAME": per output value); flops_per_unit
  -- lets a rough estimate stand in before this machine has timed the kind.
  function Model:work(s)
    local cfg = self.cfg
    local D, F, layers = cfg.dit.dim, cfg.dit.ffn_dim, cfg.dit.num_layers
    local B = guided(s) and 2 or 1
    local L = tokens(s, cfg)
    local Lc = cfg.dit.text_len or 512
    -- the units zoe.nn.wan_block counts (runtime/lua/lnn_wan.c): linear layers and attention
    local block = 2 * B * L * D * (6 * D + 2 * F) + B * (4 * L * L * D + 4 * L * Lc * D)
    local values = 3 * s.frames * s.width * s.height
    return {
      -- a prompt through the text encoder: about 2 flops per parameter and token
      {stage = "text", kind = "text:" .. self.name, units = guided(s) and 2 or 1, count = 1,
       flops_per_unit = 2 * 64 * file_size(self.files.t5) / 2},
      {stage = "denoise", kind = "wan_block", units = block, count = layers * s.steps, flops_per_unit = 1},
      {stage = "decode", kind = "decode:" .. self.name, units = values, count = 1,
       flops_per_unit = decoder_flops_per_pixel(cfg.vae) / 3},
    }
  end

  -- Timings of a finished run teach the stages the runtime does not time as ops.
  function Model:learn_stages(s, timings)
    local est = require "zoe.estimate"
    if timings.encode then est.learn("text:" .. self.name, guided(s) and 2 or 1, timings.encode) end
    if timings.decode then est.learn("decode:" .. self.name, 3 * s.frames * s.width * s.height, timings.decode) end
  end

  return Model
end
