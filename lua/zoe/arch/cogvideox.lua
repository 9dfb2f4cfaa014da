-- CogVideoX's transformer (diffusers' CogVideoXTransformer3DModel), written from the C blocks
-- with diffusers' weight names, for every released variant:
--   2B           3-D sincos positions built from the actual latent size (text rows zero)
--   5B           3-D RoPE on the video rows of q and k, after their per-head LayerNorm
--   5B-I2V       32 in-channels, RoPE and a learned position table (patch_embed.pos_embedding)
--   1.5-5B       patch_size_t 2: a linear patch embedding over (c, t, y, x) features
--   1.5-5B-I2V   and the ofs embedding
-- Joint attention over [text | video] with expert adaLN: one LayerNormZero gives separate
-- shift/scale/gate for the text and the video stream.
--
--   local tr = cogvideox.transformer(cfg, w)   cfg: the folder's transformer/config.json
--   tr.forward(x [B, F, C, H, W], t [B], text [B, T, text_dim], {ofs =, rope = {cos, sin}})
--     -> [B, F, C_out, H, W] (diffusers' transformer layout: frames before channels)
--   tr.rope(F, H, W) -> cos, sin [F*H*W/(pt*p*p), head_dim]: the pipeline's rotary table at a
--     pixel size H x W (RoPE variants), as CogVideoXPipeline._prepare_rotary_positional_embeddings
local zoe = require "zoe"
local util = require "zoe.arch.util"
local pos = require "zoe.arch.cogvideox_pos"
local T, nn = zoe.tensor, zoe.nn

local M = {}

local function dims(x) return table.unpack(x:shape()) end

-- a config.json as decoded, its nulls (zoe.json.null) made nil
function M.config(cfg)
  local out = {}
  for k, v in pairs(cfg) do
    if v ~= zoe.json.null then out[k] = v end
  end
  return out
end

function M.transformer(cfg, w)
  cfg = M.config(cfg)
  local H, Dh = cfg.num_attention_heads, cfg.attention_head_dim
  local D = H * Dh
  local p, pt = cfg.patch_size, cfg.patch_size_t or 1
  local eps = cfg.norm_eps or 1e-5
  local cout = cfg.out_channels or 16
  local T_text = cfg.max_text_seq_length or 226
  local rope = cfg.use_rotary_positional_embeddings
  local learned = cfg.use_learned_positional_embeddings
  local patch_w = util.need(w, "patch_embed.proj.weight", "cogvideox"):view(D, -1)
  local blocks = {}
  for i = 0, cfg.num_layers - 1 do blocks[i + 1] = util.under(w, ("transformer_blocks.%d."):format(i)) end
  local model = {cfg = cfg, blocks = blocks, inner = D}
  local roles = {} -- each block's weights by the roles of nn.cogvideox_block
  model.roles = roles

  -- emb [B, time_embed_dim] of timesteps t [B] (and the I2V 1.5 ofs, which broadcasts)
  function model.time(t, ofs)
    local s = nn.timestep_embedding(t, D)
    local e = nn.linear(s, w["time_embedding.linear_1.weight"], w["time_embedding.linear_1.bias"]):silu()
    e = nn.linear(e, w["time_embedding.linear_2.weight"], w["time_embedding.linear_2.bias"])
    if cfg.ofs_embed_dim and cfg.ofs_embed_dim ~= 0 then
      if ofs == nil then ofs = 2.0 end -- what CogVideoXImageToVideoPipeline passes
      if type(ofs) == "number" then ofs = T.tensor({ofs}) end
      local o = nn.timestep_embedding(ofs, cfg.ofs_embed_dim)
      o = nn.linear(o, w["ofs_embedding.linear_1.weight"], w["ofs_embedding.linear_1.bias"]):silu()
      o = nn.linear(o, w["ofs_embedding.linear_2.weight"], w["ofs_embedding.linear_2.bias"])
      e = e + o
    end
    return e
  end

  -- x [B, F, C, H, W] -> tokens [B, F/pt * H/p * W/p, C*pt*p*p], features (c, t, y, x)
  local function patchify(x)
    local b, f, c, h, wd = dims(x)
    return x:view(b, f // pt, pt, c, h // p, p, wd // p, p):permute(1, 2, 5, 7, 4, 3, 6, 8)
            :reshape(b, (f // pt) * (h // p) * (wd // p), c * pt * p * p)
  end

  -- [B, L, C*pt*p*p] (features (c, t, y, x)) -> [B, F, C, H, W]
  local function unpatchify(y, f, h, wd)
    local b = y:size(1)
    return y:view(b, f // pt, h // p, wd // p, cout, pt, p, p):permute(1, 2, 6, 5, 3, 7, 4, 8)
            :reshape(b, f, cout, h, wd)
  end

  -- the patch embedding's output [B, T + L, D] (text rows first), positions added
  function model.embed(x, text)
    local b, f, _, h, wd = dims(x)
    if f % pt ~= 0 or h % p ~= 0 or wd % p ~= 0 then
      error(("cogvideox: latent %dx%dx%d is not a multiple of the patch %dx%dx%d"):format(f, h, wd, pt, p, p), 3)
    end
    local te = nn.linear(text, w["patch_embed.text_proj.weight"], w["patch_embed.text_proj.bias"])
    local ve = nn.linear(patchify(x), patch_w, w["patch_embed.proj.bias"])
    local hs = T.cat({te, ve}, 2)
    if learned then
      local tbl = util.need(w, "patch_embed.pos_embedding", "cogvideox")
      if tbl:size(2) ~= hs:size(2) then
        error(("cogvideox: this model's learned positions are for %d tokens (its sample size %dx%d), got %d: "
          .. "it only runs at its own size"):format(tbl:size(2), cfg.sample_height * 8, cfg.sample_width * 8, hs:size(2)), 3)
      end
      hs = hs + tbl
    elseif not rope then
      if text:size(2) ~= T_text then
        error(("cogvideox: %d text tokens, the model's position table has %d text rows"):format(text:size(2), T_text), 3)
      end
      local tbl = pos.sincos_3d(D, f // pt, h // p, wd // p, cfg.spatial_interpolation_scale or 1.875,
                                cfg.temporal_interpolation_scale or 1.0)
      hs:narrow(2, text:size(2) + 1, tbl:size(1)):add_(tbl)
    end
    return hs
  end

  -- the rotary table at a pixel size (nil for the variants without RoPE)
  function model.rope(frames_latent, height, width)
    if not rope then return nil end
    return pos.rope_3d(cfg, frames_latent, height, width)
  end

  for i, bw in ipairs(blocks) do
    roles[i] = {
      mod1 = bw["norm1.linear.weight"], mod1_bias = bw["norm1.linear.bias"],
      norm1 = bw["norm1.norm.weight"], norm1_bias = bw["norm1.norm.bias"],
      q = bw["attn1.to_q.weight"], q_bias = bw["attn1.to_q.bias"], k = bw["attn1.to_k.weight"],
      k_bias = bw["attn1.to_k.bias"], v = bw["attn1.to_v.weight"], v_bias = bw["attn1.to_v.bias"],
      o = bw["attn1.to_out.0.weight"], o_bias = bw["attn1.to_out.0.bias"],
      norm_q = bw["attn1.norm_q.weight"], norm_q_bias = bw["attn1.norm_q.bias"],
      norm_k = bw["attn1.norm_k.weight"], norm_k_bias = bw["attn1.norm_k.bias"],
      mod2 = bw["norm2.linear.weight"], mod2_bias = bw["norm2.linear.bias"],
      norm2 = bw["norm2.norm.weight"], norm2_bias = bw["norm2.norm.bias"],
      ffn_in = bw["ff.net.0.proj.weight"], ffn_in_bias = bw["ff.net.0.proj.bias"],
      ffn_out = bw["ff.net.2.weight"], ffn_out_bias = bw["ff.net.2.bias"],
    }
  end

  -- x [B, F, C, H, W], t: number or [B] tensor, text [B, T, text_dim] -> [B, F, C_out, H, W].
  -- o.rope = {cos, sin} (model.rope's, for RoPE variants; built from the latent size when absent),
  -- o.ofs (the 1.5 I2V offset, 2.0 by default), o.on_block = fn(i, video, text) (debugging),
  -- o.ffn_rows (the feed-forward in chunks of at most this many rows; 8192), o.around_blocks
  -- (x [B, text + video tokens, D], run, info), a step cache's hook around the block loop.
  function model.forward(x, t, text, o)
    o = o or {}
    local b, f, c, h, wd = dims(x)
    if c ~= cfg.in_channels then
      error(("cogvideox: latent has %d channels, the model takes %d"):format(c, cfg.in_channels), 2)
    end
    if type(t) == "number" then t = T.full({b}, t) end
    local emb = model.time(t, o.ofs)
    local es = emb:silu()
    local hs = model.embed(x, text)
    local nt = text:size(2)
    local rot = o.rope
    if rope and not rot then rot = {pos.rope_3d(cfg, f, h * 8, wd * 8)} end
    local bo = {heads = H, text = nt, eps = eps, rope_cos = rot and rot[1], rope_sin = rot and rot[2], ffn_rows = o.ffn_rows}
    -- blocks first..last on y [text | video tokens], which holds the batch entries 'rows' (all when nil)
    local function run_blocks(y, first, last, rows)
      local e = es
      if rows then
        local parts = {}
        for k, r in ipairs(rows) do parts[k] = es:narrow(1, r, 1) end
        e = #parts == 1 and parts[1] or T.cat(parts, 1)
      end
      for i = first or 1, last or #blocks do
        y = nn.cogvideox_block(y, e, roles[i], bo)
        if o.on_block then o.on_block(i, y:narrow(2, nt + 1, y:size(2) - nt), y:narrow(2, 1, nt)) end
      end
      return y
    end
    if o.around_blocks then -- a step cache (zoe.cache): see lua/zoe/family/README.md
      hs = o.around_blocks(hs, run_blocks, {t = t, blocks = #blocks, modulated = function() return emb end})
    else
      hs = run_blocks(hs)
    end
    local video = hs:narrow(2, nt + 1, hs:size(2) - nt)
    video = nn.layer_norm(video, w["norm_final.weight"], w["norm_final.bias"], eps)
    local m = nn.linear(es, w["norm_out.linear.weight"], w["norm_out.linear.bias"]):unsqueeze(2)
    video = nn.modulate(nn.layer_norm(video, w["norm_out.norm.weight"], w["norm_out.norm.bias"], eps),
                        m:narrow(3, 1, D), m:narrow(3, D + 1, D))
    local y = nn.linear(video, w["proj_out.weight"], w["proj_out.bias"])
    return unpatchify(y, f, h, wd)
  end

  return model
end

return M
