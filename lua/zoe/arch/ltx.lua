-- LTX-Video's transformer (diffusers' LTXVideoTransformer3DModel, the official
-- Transformer3DModel) written from the C blocks, with diffusers' weight names; its VAE is
-- in ltx_vae.lua, its text encoder is T5 v1.1 (t5.lua).
--
--   local tr = ltx.transformer(cfg, w)       cfg: the diffusers config.json, decoded
--   local kv = tr.cross_kv(ctx [B, T, caption_channels], mask [B, T] or nil)
--   tr.forward(x [B, L, in_channels], t, kv, {grid = {f, h, w}, rope_scale = {sf, sh, sw},
--              cond_tokens = n}) -> [B, L, out_channels]
--
-- Tokens are packed as the pipeline packs them: [B, F*H*W, C], token (f*H + h)*W + w.
-- t is 1000*sigma (a number or [B]); with cond_tokens = n the first n tokens of every entry
-- (an image-to-video first frame) are given timestep 0, as the official pipeline does.
local zoe = require "zoe"
local util = require "zoe.arch.util"
local num = require "zoe.numeric"
local T, nn = zoe.tensor, zoe.nn

local ltx = {}

local f32 = num.f32

-- The sinusoidal timestep features diffusers computes in float32 (get_timestep_embedding with
-- flip_sin_to_cos, downscale_freq_shift 0): [cos | sin] of t * exp(-ln(10000) * i / half),
-- each operation rounded to float32 as the reference rounds it. ts: a list -> [#ts, dim].
function ltx.timestep_features(ts, dim)
  local half = dim // 2
  local freqs = {}
  local c = f32(-math.log(10000))
  for i = 0, half - 1 do freqs[i + 1] = f32(math.exp(f32(f32(c * i) / half))) end
  local rows = {}
  for b, t in ipairs(ts) do
    local row = {}
    for i = 1, half do
      local a = f32(f32(t) * freqs[i])
      row[i], row[half + i] = f32(math.cos(a)), f32(math.sin(a))
    end
    rows[b] = row
  end
  return T.tensor(rows)
end

-- The rotary table of LTXVideoRotaryPosEmbed for a latent grid {f, h, w} and the pipeline's
-- rope_interpolation_scale {temporal compression / frame rate, spatial, spatial}: cos and sin
-- [f*h*w, D]. Positions and angles in float32 with the reference's order of operations (in
-- double the angles, up to 10000*pi/2*(2*pos - 1), would move by up to 1e-3 rad);
-- layout per token: frequency j, then axis (f, h, w); each value twice; D % 6 leading
-- entries cos 1, sin 0.
function ltx.rope_table(D, grid, scale, opts)
  opts = opts or {}
  local base = opts.base or {20, 2048, 2048}
  local patch = opts.patch or {1, 1, 1}
  local theta = opts.theta or 10000
  local J = D // 6
  -- freqs = theta ** linspace(0, 1, J) * pi / 2, in float32 (torch's linspace: the first half
  -- from the start, the second half from the end)
  local freqs = {}
  local step = J > 1 and f32(1 / (J - 1)) or 0
  for j = 0, J - 1 do
    local u = j < J // 2 and f32(step * j) or f32(1 - f32(step * (J - 1 - j)))
    freqs[j + 1] = f32(f32(f32(theta ^ u) * f32(math.pi)) / 2)
  end
  local fr = T.tensor(freqs):view(1, J)
  local axes = {}
  for a = 1, 3 do
    local n, s = grid[a], f32(scale[a])
    local c = {}
    for i = 0, n - 1 do
      local pos = f32(f32(f32(i * s) * patch[a]) / base[a])
      c[i + 1] = f32(pos * 2 - 1)
    end
    axes[a] = T.tensor(c):view(n, 1) * fr -- [n, J] angles, float32 products
  end
  local F, H, W = grid[1], grid[2], grid[3]
  local ang = T.stack({axes[1]:view(F, 1, 1, J):expand(F, H, W, J), axes[2]:view(1, H, 1, J):expand(F, H, W, J),
                       axes[3]:view(1, 1, W, J):expand(F, H, W, J)}, 5):reshape(F * H * W, 3 * J)
  local L = F * H * W
  local function twice(x) return x:view(L, 3 * J, 1):expand(L, 3 * J, 2):reshape(L, 6 * J) end
  local cos, sin = twice(ang:cos()), twice(ang:sin())
  local pad = D - 6 * J
  if pad > 0 then
    cos = T.cat({T.ones(L, pad), cos}, 2)
    sin = T.cat({T.zeros(L, pad), sin}, 2)
  end
  return cos, sin
end

-- ---------------------------------------------------------------- the transformer

function ltx.transformer(cfg, w)
  local H = cfg.num_attention_heads
  local D = H * cfg.attention_head_dim
  local eps = cfg.norm_eps or 1e-6
  local qk_eps = 1e-5 -- LTXAttention's RMSNorm of q and k across heads
  if (cfg.cross_attention_dim or D) ~= D then
    error(("ltx.transformer: cross_attention_dim %d must equal the inner dim %d"):format(cfg.cross_attention_dim, D), 2)
  end
  if (cfg.patch_size or 1) ~= 1 or (cfg.patch_size_t or 1) ~= 1 then
    error("ltx.transformer: only patch sizes 1 (every released LTX-Video) are supported", 2)
  end
  util.need(w, "proj_in.weight", "ltx.transformer")
  local blocks = {}
  for i = 0, cfg.num_layers - 1 do blocks[i + 1] = util.under(w, ("transformer_blocks.%d."):format(i)) end
  local model = {cfg = cfg, blocks = blocks, dim = D, heads = H}
  local ropes = {} -- rotary tables by grid and scale (one per clip size)

  -- AdaLayerNormSingle: t [B] -> temb [B, 6, D] (the blocks' modulation), embedded [B, D] (the head's)
  function model.time(ts)
    local s = ltx.timestep_features(ts, 256)
    local e = nn.linear(s, w["time_embed.emb.timestep_embedder.linear_1.weight"],
                        w["time_embed.emb.timestep_embedder.linear_1.bias"]):silu()
    e = nn.linear(e, w["time_embed.emb.timestep_embedder.linear_2.weight"], w["time_embed.emb.timestep_embedder.linear_2.bias"])
    local temb = nn.linear(e:silu(), w["time_embed.linear.weight"], w["time_embed.linear.bias"])
    return temb:view(-1, 6, D), e
  end

  -- the caption projection (Linear, GELU-tanh, Linear) of ctx [B, T, caption_channels]
  function model.caption(ctx)
    local y = nn.linear(ctx, w["caption_projection.linear_1.weight"], w["caption_projection.linear_1.bias"]):gelu_tanh()
    return nn.linear(y, w["caption_projection.linear_2.weight"], w["caption_projection.linear_2.bias"])
  end

  -- Every block's cross-attention keys and values of a caption, once per prompt: the padded
  -- keys are dropped by the mask (the reference's -10000 bias underflows to exactly 0).
  function model.cross_kv(ctx, mask)
    local B, Tn = ctx:size(1), ctx:size(2)
    local c = model.caption(ctx)
    local kv = {mask = mask}
    for i, bw in ipairs(blocks) do
      local k = nn.rms_norm(nn.linear(c, bw["attn2.to_k.weight"], bw["attn2.to_k.bias"]), bw["attn2.norm_k.weight"], qk_eps)
      local v = nn.linear(c, bw["attn2.to_v.weight"], bw["attn2.to_v.bias"])
      kv[i] = {k:view(B, Tn, H, D // H), v:view(B, Tn, H, D // H)}
    end
    return kv
  end

  function model.rope(grid, scale)
    local key = table.concat(grid, "x") .. "@" .. table.concat(scale, ",")
    if not ropes[key] then
      local cos, sin = ltx.rope_table(D, grid, scale)
      ropes = {[key] = {cos, sin}} -- keep one size: a clip has one
    end
    return ropes[key][1], ropes[key][2]
  end

  -- each block's weights by the C block's roles
  local roles = {}
  for i, bw in ipairs(blocks) do
    local function attn(pre, self)
      local r = {q = bw[pre .. "to_q.weight"], q_bias = bw[pre .. "to_q.bias"], o = bw[pre .. "to_out.0.weight"],
                 o_bias = bw[pre .. "to_out.0.bias"], norm_q = bw[pre .. "norm_q.weight"]}
      if self then
        r.k, r.k_bias, r.v, r.v_bias = bw[pre .. "to_k.weight"], bw[pre .. "to_k.bias"], bw[pre .. "to_v.weight"], bw[pre .. "to_v.bias"]
        r.norm_k = bw[pre .. "norm_k.weight"]
      end
      return r
    end
    roles[i] = {table = util.need(bw, "scale_shift_table", "ltx.transformer"), self_attn = attn("attn1.", true),
                cross_attn = attn("attn2.", false), ff_in = bw["ff.net.0.proj.weight"], ff_in_bias = bw["ff.net.0.proj.bias"],
                ff_out = bw["ff.net.2.weight"], ff_out_bias = bw["ff.net.2.bias"]}
  end

  -- one LTXVideoTransformerBlock (nn.ltx_block); temb [B, 6, D], temb0 for the first n tokens
  function model.block(i, x, temb, temb0, n, kv, cos, sin)
    return nn.ltx_block(x, temb, roles[i], {heads = H, eps = eps, qk_eps = qk_eps, cos = cos, sin = sin,
      cross_k = kv[i][1], cross_v = kv[i][2], mask = kv.mask, temb0 = temb0, cond_tokens = n})
  end

  local function times(t, B)
    if type(t) == "number" then
      local ts = {}
      for b = 1, B do ts[b] = t end
      return ts
    end
    return t:totable()
  end

  function model.forward(x, t, kv, opts)
    local B, L, C = table.unpack(x:shape())
    if C ~= cfg.in_channels then
      error(("ltx.transformer: tokens have %d channels, the model takes %d"):format(C, cfg.in_channels), 2)
    end
    local grid = opts.grid
    if grid[1] * grid[2] * grid[3] ~= L then
      error(("ltx.transformer: grid %dx%dx%d does not hold %d tokens"):format(grid[1], grid[2], grid[3], L), 2)
    end
    local cos, sin = model.rope(grid, opts.rope_scale)
    local n = opts.cond_tokens or 0
    local ts = times(t, B)
    local temb, emb = model.time(ts)
    local temb0, emb0
    if n > 0 then
      local zeros = {}
      for b = 1, B do zeros[b] = 0 end
      temb0, emb0 = model.time(zeros)
    end
    local h = nn.linear(x, w["proj_in.weight"], w["proj_in.bias"])
    -- blocks first..last on y, which holds the batch entries 'rows' (all when nil)
    local function run_blocks(y, first, last, rows)
      local te, te0, c = temb, temb0, kv
      if rows then
        local function pick(v)
          if not v then return nil end
          local parts = {}
          for k, r in ipairs(rows) do parts[k] = v:narrow(1, r, 1) end
          return #parts == 1 and parts[1] or T.cat(parts, 1)
        end
        te, te0, c = pick(temb), pick(temb0), {mask = pick(kv.mask)}
        for i = 1, #blocks do c[i] = {pick(kv[i][1]), pick(kv[i][2])} end
      end
      for i = first or 1, last or #blocks do y = model.block(i, y, te, te0, n, c, cos, sin) end
      return y
    end
    local around = opts.around_blocks -- a step cache (zoe.cache): see lua/zoe/family/README.md
    if around then
      h = around(h, run_blocks, {t = T.tensor(ts), blocks = #blocks, modulated = function() return temb end})
    else
      h = run_blocks(h)
    end
    -- head: LayerNorm without affine, shift and scale from the embedded timestep
    local sst = w["scale_shift_table"]:view(1, 2, D)
    local m = sst + emb:view(B, 1, D)
    h = nn.layer_norm(h, nil, nil, 1e-6)
    if n > 0 then
      local m0 = sst + emb0:view(B, 1, D)
      h = T.cat({nn.modulate(h:narrow(2, 1, n), m0:narrow(2, 1, 1), m0:narrow(2, 2, 1)),
                 nn.modulate(h:narrow(2, n + 1, L - n), m:narrow(2, 1, 1), m:narrow(2, 2, 1))}, 2)
    else
      h = nn.modulate(h, m:narrow(2, 1, 1), m:narrow(2, 2, 1))
    end
    return nn.linear(h, w["proj_out.weight"], w["proj_out.bias"])
  end

  return model
end

-- ---------------------------------------------------------------- packing

-- [B, C, F, H, W] -> [B, F*H*W, C] (LTXPipeline._pack_latents with patch 1)
function ltx.pack(x)
  local B, C, F, H, W = table.unpack(x:shape())
  return x:permute(1, 3, 4, 5, 2):reshape(B, F * H * W, C)
end

-- [B, F*H*W, C] -> [B, C, F, H, W]
function ltx.unpack(x, grid)
  local B, _, C = table.unpack(x:shape())
  return x:view(B, grid[1], grid[2], grid[3], C):permute(1, 5, 2, 3, 4):contiguous()
end

return ltx
