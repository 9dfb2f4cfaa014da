-- Wan2.1's DiT, written once from the C blocks (zoe.nn) with the official weight
-- names; its text encoder is T5's (t5.lua), its causal 3-D VAE is in wan_vae.lua.
-- zoe-tiny is a small configuration of the same classes.
--
--   local dit = wan.dit(cfg, w)      dit(x [C, F, H, W], t, context [L, text_dim]) -> [C, F, H, W]
--
-- cfg is the official constructor's arguments (a fixture's config.json, decoded).
local zoe = require "zoe"
local util = require "zoe.arch.util"
local T, nn = zoe.tensor, zoe.nn

local wan = {}

-- ---------------------------------------------------------------- DiT

-- [C, F, H, W] -> tokens [F/pt * H/ph * W/pw, C*pt*ph*pw], features (c, pt, ph, pw):
-- the patch embedding Conv3d (kernel = stride = patch) is then a linear layer.
local function patchify(x, p)
  local c, f, h, w = table.unpack(x:shape())
  return x:view(c, f // p[1], p[1], h // p[2], p[2], w // p[3], p[3])
          :permute(2, 4, 6, 1, 3, 5, 7)
          :reshape((f // p[1]) * (h // p[2]) * (w // p[3]), c * p[1] * p[2] * p[3])
end

-- tokens [f*h*w, pt*ph*pw*c] -> [c, f*pt, h*ph, w*pw] (Wan's einsum 'fhwpqrc->cfphqwr')
local function unpatchify(u, grid, p, c)
  local f, h, w = grid[1], grid[2], grid[3]
  return u:view(f, h, w, p[1], p[2], p[3], c)
          :permute(7, 1, 4, 2, 5, 3, 6)
          :reshape(c, f * p[1], h * p[2], w * p[3])
end

-- A block's weights (under the prefix p, "blocks.3.") by the roles nn.wan_block takes;
-- a missing weight is named as the checkpoint names it.
function wan.block_roles(w, p)
  local function need(name) return util.need(w, p .. name, "wan.dit") end
  local function attention(a)
    return {q = need(a .. "q.weight"), q_bias = w[p .. a .. "q.bias"], k = need(a .. "k.weight"),
            k_bias = w[p .. a .. "k.bias"], v = need(a .. "v.weight"), v_bias = w[p .. a .. "v.bias"],
            o = need(a .. "o.weight"), o_bias = w[p .. a .. "o.bias"],
            norm_q = w[p .. a .. "norm_q.weight"], norm_k = w[p .. a .. "norm_k.weight"]}
  end
  return {
    modulation = need("modulation"), self_attn = attention("self_attn."), cross_attn = attention("cross_attn."),
    norm3 = w[p .. "norm3.weight"], norm3_bias = w[p .. "norm3.bias"],
    ffn_in = need("ffn.0.weight"), ffn_in_bias = w[p .. "ffn.0.bias"],
    ffn_out = need("ffn.2.weight"), ffn_out_bias = w[p .. "ffn.2.bias"],
  }
end

-- Wan's 3-D RoPE splits each head's dim pairs between time, rows and columns:
-- d - 4(d/6) dims to time, 2(d/6) to each space axis (pairs are half of those).
function wan.rope_pairs(head_dim)
  local third = head_dim // 6
  return {head_dim // 2 - 2 * third, third, third}
end

function wan.dit(cfg, w)
  local D, H, p = cfg.dim, cfg.num_heads, cfg.patch_size or {1, 2, 2}
  local eps = cfg.eps or 1e-6
  local patch_w = util.need(w, "patch_embedding.weight", "wan.dit"):view(D, -1)
  local blocks = {}
  for i = 0, cfg.num_layers - 1 do blocks[i + 1] = wan.block_roles(w, ("blocks.%d."):format(i)) end
  local pairs_ = wan.rope_pairs(D // H)
  local model = {cfg = cfg, blocks = blocks}

  -- text embeddings [L, text_dim], or a list of them (one per batch entry, lengths may
  -- differ), each zero-padded to text_len rows as Wan does (the padding rows then embed
  -- to a constant) -> [B, text_len, D]
  function model.embed_text(context)
    local list = T.is_tensor(context) and {context} or context
    local padded = {}
    for i, ctx in ipairs(list) do
      local l, c = table.unpack(ctx:shape())
      if ctx:dim() ~= 2 or c ~= cfg.text_dim then
        error(("wan.dit: text embeddings must be [L, %d], got %s"):format(cfg.text_dim, table.concat(ctx:shape(), "x")), 3)
      end
      if l > cfg.text_len then error(("wan.dit: %d text tokens, the model takes at most %d"):format(l, cfg.text_len), 3) end
      padded[i] = l < cfg.text_len and T.cat({ctx, T.zeros(cfg.text_len - l, c)}, 1) or ctx
    end
    context = T.stack(padded, 1)
    local y = nn.linear(context, w["text_embedding.0.weight"], w["text_embedding.0.bias"])
    return nn.linear(y:gelu_tanh(), w["text_embedding.2.weight"], w["text_embedding.2.bias"])
  end

  -- the cross-attention keys and values of every block, once per prompt (or list of prompts)
  function model.cross_kv(context)
    local emb = model.embed_text(context)
    local kv = {}
    for i, bw in ipairs(blocks) do
      local k, v = nn.wan_cross_kv(emb, bw, {heads = H, eps = eps})
      kv[i] = {k, v}
    end
    return kv
  end

  -- e (the time embedding, for the head) and e0 [B, 6, D] (for the blocks) of t [B]
  function model.time(t)
    local s = nn.timestep_embedding(t, cfg.freq_dim)
    local e = nn.linear(s, w["time_embedding.0.weight"], w["time_embedding.0.bias"]):silu()
    e = nn.linear(e, w["time_embedding.2.weight"], w["time_embedding.2.bias"])
    local e0 = nn.linear(e:silu(), w["time_projection.1.weight"], w["time_projection.1.bias"])
    return e, e0:view(-1, 6, D)
  end

  -- e0 and the cross-attention caches of some batch entries (a step cache runs only the
  -- guidance branches it computes); B is the full batch. A cache holds 'per' rows per entry
  -- (latent frames, under prompt travel); e0 of a number timestep has one row for all.
  local function entries(e0, kv, rows, B)
    local function pick(t, per)
      if t:size(1) == per then return t end
      local parts = {}
      for k, i in ipairs(rows) do parts[k] = t:narrow(1, (i - 1) * per + 1, per) end
      return #parts == 1 and parts[1] or T.cat(parts, 1)
    end
    local sub = {}
    for b, kvb in ipairs(kv) do
      local per = kvb[1]:size(1) // B
      sub[b] = {pick(kvb[1], per), pick(kvb[2], per)}
    end
    return pick(e0, 1), sub
  end

  -- the blocks first..last (1-based, inclusive) on tokens x [B, L, D]
  local function run_blocks(x, e0, kv, grid, first, last)
    for i = first or 1, last or #blocks do
      x = nn.wan_block(x, e0, blocks[i], {heads = H, eps = eps, grid = grid, rope_pairs = pairs_,
                                          cross_k = kv[i][1], cross_v = kv[i][2]})
    end
    return x
  end

  -- xs: latents [C, F, H, W] (one per batch entry, same size), t: number or [B] tensor,
  -- kv: model.cross_kv(...) of contexts batched the same way -> list of [C_out, F, H, W].
  -- opts.around_blocks(x, run, info) stands in for the block loop (a step cache decides
  -- there whether to run the blocks): run(x, first, last, rows) runs blocks first..last (all
  -- by default) on x and returns their output, x holding the batch entries 'rows' (a list;
  -- all when nil); info = {t =, e0 =, blocks = count, modulated = fn() -> e0, the time
  -- modulation every block gets (TeaCache4Wan2.1's input)}. It returns the tokens the head gets.
  function model.forward(xs, t, kv, opts)
    local c, f, h, wd = table.unpack(xs[1]:shape())
    if c ~= cfg.in_dim then
      error(("wan.dit: latent has %d channels, the model takes %d"):format(c, cfg.in_dim), 2)
    end
    if f % p[1] ~= 0 or h % p[2] ~= 0 or wd % p[3] ~= 0 then
      error(("wan.dit: latent %dx%dx%d is not a multiple of the patch %dx%dx%d"):format(f, h, wd, p[1], p[2], p[3]), 2)
    end
    local grid = {f // p[1], h // p[2], wd // p[3]}
    local tokens = {}
    for i, x in ipairs(xs) do tokens[i] = patchify(x, p) end
    local x = nn.linear(T.stack(tokens, 1), patch_w, w["patch_embedding.bias"])
    if type(t) == "number" then t = T.tensor({t}) end
    local e, e0 = model.time(t)
    local around = opts and opts.around_blocks
    if around then
      local B = x:size(1)
      x = around(x, function(y, first, last, rows)
        local e, c = e0, kv
        if rows then e, c = entries(e0, kv, rows, B) end
        return run_blocks(y, e, c, grid, first, last)
      end, {t = t, e0 = e0, blocks = #blocks, modulated = function() return e0 end})
    else
      x = run_blocks(x, e0, kv, grid)
    end
    -- head: modulation from e (not e0), then the projection to patches
    local m = w["head.modulation"] + e:unsqueeze(2) -- [B, 2, D]
    local y = nn.modulate(nn.layer_norm(x, nil, nil, eps), m:narrow(2, 1, 1), m:narrow(2, 2, 1))
    y = nn.linear(y, w["head.head.weight"], w["head.head.bias"])
    local outs = {}
    for i = 1, #xs do outs[i] = unpatchify(y[i], grid, p, cfg.out_dim) end
    return outs
  end

  -- dit(x, t, context): one latent, one prompt
  return setmetatable(model, {
    __call = function(_, x, t, context)
      return model.forward({x}, t, model.cross_kv(context))[1]
    end,
  })
end

return wan
