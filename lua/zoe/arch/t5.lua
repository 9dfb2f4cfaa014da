-- T5's encoder as the video models use it, written once from the C layer (nn.t5_layer):
-- umT5 (Wan2.1: a relative position table in every layer) and T5 v1.1 (CogVideoX: one
-- table, in the first layer, shared by all). Both are pre-norm RMS layers without biases,
-- unscaled attention with a bucketed relative position bias, a gated tanh-GELU
-- feed-forward and a final RMS norm.
--
--   local enc = t5.encoder(cfg, w, {layout = "wan" | "hf", stream = false})
--   enc(ids [B, L], mask [B, L] or nil) -> [B, L, dim]
--
-- cfg: {num_heads =, num_layers =, shared_pos = false, max_distance = 128, eps = 1e-6} (Wan's T5 config keys; t5.config_from_hf turns a transformers config.json
-- into these). The layout names the weights: "wan" is the official Wan2.1 release
-- (models_t5_umt5-xxl-enc-bf16.pth), "hf" is transformers' T5EncoderModel and
-- UMT5EncoderModel (diffusers' text_encoder/, CogVideoX's T5 v1.1).
local zoe = require "zoe"
local util = require "zoe.arch.util"
local nn = zoe.nn

local t5 = {}

-- Each layout: the embedding (the first name present), the final norm, the roles of
-- layer i (0-based) and where a shared position table lives.
t5.LAYOUTS = {
  wan = {
    embedding = {"token_embedding.weight"},
    norm = "norm.weight",
    shared_pos = "pos_embedding.embedding.weight",
    layer = function(i)
      local p = ("blocks.%d."):format(i)
      return {norm1 = p .. "norm1.weight", q = p .. "attn.q.weight", k = p .. "attn.k.weight",
              v = p .. "attn.v.weight", o = p .. "attn.o.weight", norm2 = p .. "norm2.weight",
              gate = p .. "ffn.gate.0.weight", fc1 = p .. "ffn.fc1.weight", fc2 = p .. "ffn.fc2.weight",
              pos_table = p .. "pos_embedding.embedding.weight"}
    end,
  },
  hf = {
    embedding = {"encoder.embed_tokens.weight", "shared.weight"},
    norm = "encoder.final_layer_norm.weight",
    shared_pos = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
    layer = function(i)
      local a, f = ("encoder.block.%d.layer.0."):format(i), ("encoder.block.%d.layer.1."):format(i)
      return {norm1 = a .. "layer_norm.weight", q = a .. "SelfAttention.q.weight", k = a .. "SelfAttention.k.weight",
              v = a .. "SelfAttention.v.weight", o = a .. "SelfAttention.o.weight",
              norm2 = f .. "layer_norm.weight",
              gate = f .. "DenseReluDense.wi_0.weight", -- the GELU side
              fc1 = f .. "DenseReluDense.wi_1.weight", fc2 = f .. "DenseReluDense.wo.weight",
              pos_table = a .. "SelfAttention.relative_attention_bias.weight"}
    end,
  },
}

-- A transformers T5Config / UMT5Config (config.json) as t5.encoder's cfg.
function t5.config_from_hf(c)
  local umt5 = c.model_type == "umt5" or c._class_name == "UMT5EncoderModel"
  for _, a in ipairs(c.architectures or {}) do umt5 = umt5 or a:find("^UMT5") ~= nil end
  return {vocab = c.vocab_size, dim = c.d_model, dim_attn = c.num_heads * c.d_kv, dim_ffn = c.d_ff,
          num_heads = c.num_heads, num_layers = c.num_layers,
          num_buckets = c.relative_attention_num_buckets or 32,
          max_distance = c.relative_attention_max_distance or 128, eps = c.layer_norm_epsilon or 1e-6,
          shared_pos = not umt5} -- UMT5 keeps a table per layer; T5 the first layer's for all
end

local ROLES = {"norm1", "q", "k", "v", "o", "norm2", "gate", "fc1", "fc2"}

-- The weights of layer i by role (the position table only where the layer has its own).
local function layer_weights(w, layout, i, own_pos, where)
  local names, out = layout.layer(i), {}
  for _, role in ipairs(ROLES) do out[role] = util.need(w, names[role], where) end
  if own_pos then out.pos_table = util.need(w, names.pos_table, where) end
  return out
end

-- opts.stream: give each layer's mapped weights back to the kernel once it has run, so
-- an encoder bigger than memory (umT5-XXL is 11 GB) never stays resident as a whole.
function t5.encoder(cfg, w, opts)
  opts = opts or {}
  local layout = t5.LAYOUTS[opts.layout or "wan"]
  if not layout then error(("t5.encoder: unknown layout '%s' (wan, hf)"):format(tostring(opts.layout)), 2) end
  local heads, layers, eps = cfg.num_heads, cfg.num_layers, cfg.eps or 1e-6
  local max_distance = cfg.max_distance or 128 -- the buckets are the table's rows
  local embedding
  for _, name in ipairs(layout.embedding) do embedding = embedding or w[name] end
  if not embedding then error(("t5.encoder: the weights have no '%s'"):format(layout.embedding[1]), 2) end
  local norm = util.need(w, layout.norm, "t5.encoder")
  local shared = cfg.shared_pos and util.need(w, layout.shared_pos, "t5.encoder")
  -- the C layer buckets its own table at T5's usual reach; other reaches or a shared table
  -- give it the bias, made here
  local own_bias = not shared and max_distance == 128
  local blocks = {}
  for i = 0, layers - 1 do blocks[i + 1] = layer_weights(w, layout, i, not shared, "t5.encoder") end
  local function drop(block)
    local ts = {}
    for _, t in pairs(block) do ts[#ts + 1] = t end
    zoe.drop_pages(ts)
  end
  return function(ids, mask)
    if ids:dim() == 1 then ids = ids:unsqueeze(1) end
    if mask and mask:dim() == 1 then mask = mask:unsqueeze(1) end
    local L = ids:size(2)
    local x = nn.embedding(embedding, ids)
    local bias = shared and nn.t5_position_bias(shared, L, L, max_distance)
    for i = 1, layers do
      local b = blocks[i]
      local pos_bias = bias or (not own_bias and nn.t5_position_bias(b.pos_table, L, L, max_distance)) or nil
      x = nn.t5_layer(x, b, {heads = heads, mask = mask, eps = eps, pos_bias = pos_bias})
      if opts.stream then drop(b) end
    end
    return nn.rms_norm(x, norm, eps)
  end
end

return t5
