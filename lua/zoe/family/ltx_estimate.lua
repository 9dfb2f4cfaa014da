-- What an LTX-Video run costs, from its settings alone (no weights read): the memory it needs
-- and the work it does (lua/zoe/family/README.md, "Costs"). The pipeline asks before computing.
--
-- Memory: the larger of two stages (the transformer's pages are given back before decoding).
--   denoise: the transformer's weights, a streamed text encoder's largest layer, and a block's
--     activations: about 10 x D floats per token and batch entry (x, norms, q, k, v, outputs;
--     attention is tiled), plus the feed-forward's 4 D hidden layer for at most 8192 rows
--     (f32, and the packed bf16 copy the GEMM makes).
--   decode: the VAE's weights, its widest convolution's weight in f32 and Winograd-transformed
--     (4x more), the stream's pieces (at most 128 MB a stage gets at once, about 16 tensors of
--     a piece's size alive at once), and the output video (f32 [3, T, H, W] as chunks,
--     joined, and clamped). Measured at full size (bench/ltx.lua): a 17-frame 704x512 decode
--     peaked at 4.55 GB, this gives 4.5.
local F32 = 4
local BASE = 150 * 2 ^ 20   -- the process itself: libraries, Lua, allocator
local FFN_ROWS = 8192       -- the feed-forward's rows at a time (runtime/nn/ltx/block.c)
local PIECE = 128 * 2 ^ 20  -- the largest piece a decoder stage gets (arch/ltx_vae.lua)
local LIVE = 16             -- pieces alive at the decode's peak (fitted on the full-size measurement)

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local n = f:seek("end")
  f:close()
  return n
end

local function guided(s) return not (type(s.cfg) == "number" and s.cfg == 1) end

local function tokens(s) return ((s.frames - 1) // 8 + 1) * (s.height // 32) * (s.width // 32) end

-- The decoder's convolution flops per output value, from its configuration (a fallback for the
-- time estimate before this machine has timed a decode). Per latent voxel: conv_in, the mid
-- block's resnets, then per up block its upsampler (at the level below) and resnets at 8x
-- the voxels of the level before, and conv_out to 48 channels; an output voxel holds 3 values
-- and a latent voxel becomes 8 x 32 x 32 of them.
local function decoder_flops_per_value(vc)
  local rev = {}
  for i = #vc.decoder_block_out_channels, 1, -1 do rev[#rev + 1] = vc.decoder_block_out_channels[i] end
  local layers, factors = {}, {}
  for i = #vc.decoder_layers_per_block, 1, -1 do layers[#layers + 1] = vc.decoder_layers_per_block[i] end
  for i = #(vc.upsample_factor or {}), 1, -1 do factors[#factors + 1] = vc.upsample_factor[i] end
  local scaling = {}
  for i = #vc.decoder_spatio_temporal_scaling, 1, -1 do scaling[#scaling + 1] = vc.decoder_spatio_temporal_scaling[i] end
  local conv = function(cin, cout, voxels) return 2 * 27 * cin * cout * voxels end
  local c, v = rev[1], 1
  local n = conv(vc.latent_channels, c, v) + 2 * layers[1] * conv(c, c, v)
  for i = 1, #rev do
    local f = factors[i] or 1
    local out = rev[i] // f
    if scaling[i] then
      n = n + conv(c, c * 8 // f, v)
      v = v * 8
    end
    n = n + 2 * layers[i + 1] * conv(out, out, v)
    c = out
  end
  n = n + conv(c, 48, v)
  return n / (3 * 8 * 32 * 32)
end

return function(Model)
  function Model:memory_estimate(s)
    local tc = self.cfg.transformer
    local D = tc.num_attention_heads * tc.attention_head_dim
    local B = guided(s) and 2 or 1
    local L = tokens(s)
    local t5 = file_size(self.files.text_encoder)
    if self.files.text_encoder:match("%.index%.json$") then t5 = 10 * 2 ^ 30 end
    local t5_resident = t5 > 2 ^ 30 and t5 / ((self.cfg.text_encoder or {}).num_layers or 24) or t5
    local weights = file_size(self.files.transformer)
    if self.files.transformer == self.files.vae then weights = weights * 2 / 3 end -- a single file: the transformer's share
    local activations = B * L * 10 * D * F32 + math.min(B * L, FFN_ROWS) * 4 * D * (F32 + 2)
    local denoise = weights + t5_resident + activations
    local px = s.width * s.height
    local vae = self.files.transformer == self.files.vae and file_size(self.files.vae) / 3 or file_size(self.files.vae)
    local piece = math.max(PIECE, 128 * px / 16 * F32) -- at least a frame of the last level
    local widest = 0
    for _, c in ipairs(self.cfg.vae.decoder_block_out_channels or {}) do widest = math.max(widest, c) end
    local conv = 5 * 27 * widest * widest * F32 -- the widened weight and its transform
    local decode = vae + conv + LIVE * piece + 3 * 3 * s.frames * px * F32
    return {bytes = BASE + math.max(denoise, decode), parts = {denoise = denoise, decode = decode},
            what = ("%dx%d, %d frames: %d tokens%s"):format(s.width, s.height, s.frames, L, B == 2 and " x 2 (guidance)" or "")}
  end

  function Model:work(s)
    local tc = self.cfg.transformer
    local D = tc.num_attention_heads * tc.attention_head_dim
    local B = guided(s) and 2 or 1
    local L = tokens(s)
    local N = B * L
    -- the units zoe.nn.ltx_block counts (runtime/lua/lnn_ltx.c): linear layers and self-attention
    local block = 2 * N * D * (6 * D + 2 * 4 * D) + 4 * N * L * D
    local values = 3 * s.frames * s.width * s.height
    return {
      {stage = "text", kind = "text:" .. self.name, units = guided(s) and 2 or 1, count = 1,
       flops_per_unit = 2 * 64 * file_size(self.files.text_encoder) / 2},
      {stage = "denoise", kind = "ltx_block", units = block, count = tc.num_layers * s.steps, flops_per_unit = 1},
      {stage = "decode", kind = "decode:" .. self.name, units = values, count = 1,
       flops_per_unit = decoder_flops_per_value(self.cfg.vae)},
    }
  end

  function Model:learn_stages(s, timings)
    local est = require "zoe.estimate"
    if timings.encode then est.learn("text:" .. self.name, guided(s) and 2 or 1, timings.encode) end
    if timings.decode then est.learn("decode:" .. self.name, 3 * s.frames * s.width * s.height, timings.decode) end
  end

  return Model
end
