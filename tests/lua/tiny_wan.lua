-- A small Wan-family model with random weights under the official names, written to a
-- folder the way a real one is laid out (config.json, three safetensors, a tokenizer),
-- so the pipeline can be tested end to end without a trained model.
local zoe = require "zoe"
local T = zoe.tensor

local M = {}

M.config = {
  name = "tiny-random",
  t5 = {vocab = 64, dim = 32, dim_attn = 32, dim_ffn = 48, num_heads = 2, num_layers = 2, num_buckets = 32},
  dit = {patch_size = {1, 2, 2}, text_len = 16, in_dim = 20, dim = 32, ffn_dim = 64, freq_dim = 32,
         text_dim = 32, out_dim = 8, num_heads = 2, num_layers = 2, eps = 1e-6},
  vae = {dim = 8, z_dim = 8, dim_mult = {1, 2, 2, 2}, num_res_blocks = 1, attn_scales = {},
         temperal_downsample = {false, true, true}},
  latent = {mean = {0, 0, 0, 0, 0, 0, 0, 0}, std = {1, 1, 1, 1, 1, 1, 1, 1}},
  sampling = {sampler = "euler", steps = 4, shift = 3, cfg = 3, fps = 8, width = 32, height = 32,
              frames = 5, negative_prompt = "", timestep = "t = sigma * 1000 (float)"},
  weights = {t5 = "t5.safetensors", dit = "dit.safetensors", vae = "vae.safetensors"},
  tokenizer = {file = "tokenizer.json"},
}

local seed = 100
local function rnd(shape, scale)
  seed = seed + 1
  return T.randn(shape, {seed = seed}) * (scale or 0.1)
end
local function ones(shape) return T.ones(shape) end

local function t5_weights(c)
  local w = {["token_embedding.weight"] = rnd({c.vocab, c.dim}, 1), ["norm.weight"] = ones({c.dim})}
  for i = 0, c.num_layers - 1 do
    local p = ("blocks.%d."):format(i)
    w[p .. "norm1.weight"], w[p .. "norm2.weight"] = ones({c.dim}), ones({c.dim})
    for _, n in ipairs {"q", "k", "v"} do w[p .. "attn." .. n .. ".weight"] = rnd({c.dim_attn, c.dim}) end
    w[p .. "attn.o.weight"] = rnd({c.dim, c.dim_attn})
    w[p .. "ffn.gate.0.weight"] = rnd({c.dim_ffn, c.dim})
    w[p .. "ffn.fc1.weight"] = rnd({c.dim_ffn, c.dim})
    w[p .. "ffn.fc2.weight"] = rnd({c.dim, c.dim_ffn})
    w[p .. "pos_embedding.embedding.weight"] = rnd({c.num_buckets, c.num_heads})
  end
  return w
end

local function dit_weights(c)
  local D, p = c.dim, c.patch_size
  local w = {
    ["patch_embedding.weight"] = rnd({D, c.in_dim, p[1], p[2], p[3]}), ["patch_embedding.bias"] = rnd({D}),
    ["text_embedding.0.weight"] = rnd({D, c.text_dim}), ["text_embedding.0.bias"] = rnd({D}),
    ["text_embedding.2.weight"] = rnd({D, D}), ["text_embedding.2.bias"] = rnd({D}),
    ["time_embedding.0.weight"] = rnd({D, c.freq_dim}), ["time_embedding.0.bias"] = rnd({D}),
    ["time_embedding.2.weight"] = rnd({D, D}), ["time_embedding.2.bias"] = rnd({D}),
    ["time_projection.1.weight"] = rnd({6 * D, D}), ["time_projection.1.bias"] = rnd({6 * D}),
    ["head.modulation"] = rnd({1, 2, D}), ["head.head.weight"] = rnd({p[1] * p[2] * p[3] * c.out_dim, D}),
    ["head.head.bias"] = rnd({p[1] * p[2] * p[3] * c.out_dim}),
  }
  for i = 0, c.num_layers - 1 do
    local b = ("blocks.%d."):format(i)
    for _, a in ipairs {"self_attn", "cross_attn"} do
      for _, n in ipairs {"q", "k", "v", "o"} do
        w[b .. a .. "." .. n .. ".weight"], w[b .. a .. "." .. n .. ".bias"] = rnd({D, D}), rnd({D})
      end
      w[b .. a .. ".norm_q.weight"], w[b .. a .. ".norm_k.weight"] = ones({D}), ones({D})
    end
    w[b .. "norm3.weight"], w[b .. "norm3.bias"] = ones({D}), rnd({D})
    w[b .. "ffn.0.weight"], w[b .. "ffn.0.bias"] = rnd({c.ffn_dim, D}), rnd({c.ffn_dim})
    w[b .. "ffn.2.weight"], w[b .. "ffn.2.bias"] = rnd({D, c.ffn_dim}), rnd({D})
    w[b .. "modulation"] = rnd({1, 6, D})
  end
  return w
end

-- the VAE's tensors, following Encoder3d/Decoder3d's construction
local function vae_weights(c)
  local w = {}
  local function conv3(name, cout, cin, k)
    w[name .. ".weight"], w[name .. ".bias"] = rnd({cout, cin, k[1], k[2], k[3]}), rnd({cout}, 0.01)
  end
  local function conv2(name, cout, cin, k)
    w[name .. ".weight"], w[name .. ".bias"] = rnd({cout, cin, k, k}), rnd({cout}, 0.01)
  end
  local function res(name, cin, cout)
    w[name .. ".residual.0.gamma"] = ones({cin, 1, 1, 1})
    conv3(name .. ".residual.2", cout, cin, {3, 3, 3})
    w[name .. ".residual.3.gamma"] = ones({cout, 1, 1, 1})
    conv3(name .. ".residual.6", cout, cout, {3, 3, 3})
    if cin ~= cout then conv3(name .. ".shortcut", cout, cin, {1, 1, 1}) end
  end
  local function attn(name, d)
    w[name .. ".norm.gamma"] = ones({d, 1, 1})
    conv2(name .. ".to_qkv", 3 * d, d, 1)
    conv2(name .. ".proj", d, d, 1)
  end
  local mult, z = c.dim_mult, c.z_dim
  -- encoder
  local dims = {c.dim}
  for _, m in ipairs(mult) do dims[#dims + 1] = c.dim * m end
  conv3("encoder.conv1", dims[1], 3, {3, 3, 3})
  local k = 0
  for i = 1, #dims - 1 do
    local cin = dims[i]
    for _ = 1, c.num_res_blocks do
      res(("encoder.downsamples.%d"):format(k), cin, dims[i + 1])
      cin, k = dims[i + 1], k + 1
    end
    if i ~= #mult then
      conv2(("encoder.downsamples.%d.resample.1"):format(k), cin, cin, 3)
      if c.temperal_downsample[i] then conv3(("encoder.downsamples.%d.time_conv"):format(k), cin, cin, {3, 1, 1}) end
      k = k + 1
    end
  end
  local top = dims[#dims]
  res("encoder.middle.0", top, top)
  attn("encoder.middle.1", top)
  res("encoder.middle.2", top, top)
  w["encoder.head.0.gamma"] = ones({top, 1, 1, 1})
  conv3("encoder.head.2", 2 * z, top, {3, 3, 3})
  conv3("conv1", 2 * z, 2 * z, {1, 1, 1})
  conv3("conv2", z, z, {1, 1, 1})
  -- decoder
  local dd = {c.dim * mult[#mult]}
  for i = #mult, 1, -1 do dd[#dd + 1] = c.dim * mult[i] end
  conv3("decoder.conv1", dd[1], z, {3, 3, 3})
  res("decoder.middle.0", dd[1], dd[1])
  attn("decoder.middle.1", dd[1])
  res("decoder.middle.2", dd[1], dd[1])
  k = 0
  for i = 1, #dd - 1 do
    local cin = (i >= 2) and dd[i] // 2 or dd[i]
    for _ = 1, c.num_res_blocks + 1 do
      res(("decoder.upsamples.%d"):format(k), cin, dd[i + 1])
      cin, k = dd[i + 1], k + 1
    end
    if i ~= #mult then
      local temporal = c.temperal_downsample[#mult - i]
      conv2(("decoder.upsamples.%d.resample.1"):format(k), cin // 2, cin, 3)
      if temporal then conv3(("decoder.upsamples.%d.time_conv"):format(k), 2 * cin, cin, {3, 1, 1}) end
      k = k + 1
    end
  end
  w["decoder.head.0.gamma"] = ones({dd[#dd], 1, 1, 1})
  conv3("decoder.head.2", 3, dd[#dd], {3, 3, 3})
  return w
end

-- A WordLevel tokenizer.json over a fixed vocabulary (pad 0, </s> 1, <unk> 2).
local WORDS = {"a", "red", "blue", "green", "circle", "square", "moving", "left", "right", "on", "white",
               "black", "background", "and", "the", "big", "small", "triangle"}
local function tokenizer_json()
  local vocab = {["<pad>"] = 0, ["</s>"] = 1, ["<unk>"] = 2}
  for i, word in ipairs(WORDS) do vocab[word] = i + 2 end
  return zoe.json.encode({
    version = "1.0",
    added_tokens = {
      {id = 0, content = "<pad>", special = true, single_word = false, lstrip = false, rstrip = false, normalized = false},
      {id = 1, content = "</s>", special = true, single_word = false, lstrip = false, rstrip = false, normalized = false},
      {id = 2, content = "<unk>", special = true, single_word = false, lstrip = false, rstrip = false, normalized = false},
    },
    normalizer = zoe.json.null,
    pre_tokenizer = {type = "WhitespaceSplit"},
    model = {type = "WordLevel", vocab = vocab, unk_token = "<unk>"},
    post_processor = {type = "TemplateProcessing",
      single = {{Sequence = {id = "A", type_id = 0}}, {SpecialToken = {id = "</s>", type_id = 0}}},
      pair = {{Sequence = {id = "A", type_id = 0}}, {SpecialToken = {id = "</s>", type_id = 0}}},
      special_tokens = {["</s>"] = {id = "</s>", ids = {1}, tokens = {"</s>"}}}},
    decoder = zoe.json.null,
  })
end

-- Writes the model into 'dir' (which must exist) and returns dir.
function M.write(dir, opts)
  local cfg = M.config
  if opts and opts.i2v == false then cfg.dit.in_dim = cfg.vae.z_dim end
  zoe.save(dir .. "/t5.safetensors", t5_weights(cfg.t5))
  zoe.save(dir .. "/dit.safetensors", dit_weights(cfg.dit))
  zoe.save(dir .. "/vae.safetensors", vae_weights(cfg.vae))
  local f = assert(io.open(dir .. "/config.json", "wb"))
  f:write(zoe.json.encode(cfg))
  f:close()
  f = assert(io.open(dir .. "/tokenizer.json", "wb"))
  f:write(tokenizer_json())
  f:close()
  f = assert(io.open(dir .. "/model.lua", "wb"))
  f:write('return {name = "tiny-random", family = "wan", config = "config.json"}\n')
  f:close()
  return dir
end

return M
