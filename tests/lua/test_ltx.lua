-- LTX-Video's transformer (lua/zoe/arch/ltx.lua) against ../shared/fixtures/ltx-tiny/transformer:
-- diffusers' LTXVideoTransformer3DModel on a tiny random configuration (2 heads x 16, 2 layers),
-- a 3x4x5 latent grid, two timesteps, a padded caption mask, the pipeline's rotary scale
-- (8/25, 32, 32). The rotary table, the time embedding, every stage and the output `sample`
-- within 1e-4 relative error (the fixture's own bound for a float32 port).
local t = require "testlib"
local zoe = require "zoe"
local ltx = require "zoe.arch.ltx"
local T = zoe.tensor

local root = "../shared/fixtures/ltx-tiny/transformer/"
local fh = io.open(root .. "config.json")
if not fh then
  t.skip("LTX-Video transformer", "../shared/fixtures/ltx-tiny is absent")
  t.done()
end
local cfg = zoe.json.decode(fh:read("a"))
fh:close()
local w, F = zoe.load(root .. "weights.safetensors"), zoe.load(root .. "io.safetensors")
local close = t.close
local grid = {F.num_frames:item(), F.height:item(), F.width:item()}
local scale = F.rope_interpolation_scale:totable()
local tr = ltx.transformer(cfg, w)

t.test("packing is the pipeline's: token (f*H + h)*W + w", function()
  t.eq(t.tensor_relerr(ltx.pack(F.latents), F.hidden_states), 0, "pack")
  t.eq(t.tensor_relerr(ltx.unpack(F.hidden_states, grid), F.latents), 0, "unpack")
end)

t.test("rotary table in float32 with the frame-rate scale", function()
  local cos, sin = tr.rope(grid, scale)
  close(cos:unsqueeze(1):expand(2, 60, 32), F.rope_cos, 1e-6, "rope_cos")
  close(sin:unsqueeze(1):expand(2, 60, 32), F.rope_sin, 1e-6, "rope_sin")
end)

t.test("adaLN-single time embedding and the caption projection", function()
  local temb, emb = tr.time(F.timestep:totable())
  close(temb:reshape(2, 192), F.temb, 1e-5, "temb")
  -- 1e-5: torch's float32 exp (SLEEF, within 1 ulp) may differ from ours by an ulp, which at
  -- t = 1000 moves a sinusoid's angle by 6e-5
  close(emb, F.embedded_timestep, 1e-5, "embedded_timestep")
  close(tr.caption(F.encoder_hidden_states), F.caption_projection_out, 1e-6, "caption")
end)

t.test("sample, and block 0 on its own", function()
  local mask = F.encoder_attention_mask:to("f32")
  local kv = tr.cross_kv(F.encoder_hidden_states, mask)
  local out = tr.forward(F.hidden_states, F.timestep, kv, {grid = grid, rope_scale = scale})
  close(out, F.sample, 1e-4, "sample")
  local temb = tr.time(F.timestep:totable())
  local cos, sin = tr.rope(grid, scale)
  local x = zoe.nn.linear(F.hidden_states, w["proj_in.weight"], w["proj_in.bias"])
  close(x, F.proj_in_out, 1e-6, "proj_in")
  close(tr.block(1, x, temb, nil, 0, kv, cos, sin), F.block0_out, 1e-5, "block0_out")
end)

t.test("padded caption rows do not matter (their keys are masked)", function()
  local mask = F.encoder_attention_mask:to("f32")
  local ctx = F.encoder_hidden_states:clone()
  ctx[1]:narrow(1, 8, 5):fill_(1000) -- row 0 has 7 real tokens
  t.ok(t.tensor_relerr(ctx, F.encoder_hidden_states) > 1, "the padding rows were changed")
  local out = tr.forward(F.hidden_states, F.timestep, tr.cross_kv(ctx, mask), {grid = grid, rope_scale = scale})
  close(out, F.sample, 1e-4, "sample with garbage in the padding")
end)

-- The block written out with the nn ops (the reference computes it so), modulating the first
-- n tokens of each entry with temb0: the C block's image-to-video path against it.
local function lua_block(i, x, temb, temb0, n, kv, cos, sin)
  local nn, H, D = zoe.nn, 2, 32
  local bw = setmetatable({}, {__index = function(_, k) return w[("transformer_blocks.%d.%s"):format(i - 1, k)] end})
  local sst = bw["scale_shift_table"]:view(1, 6, D)
  local ada, ada0 = temb + sst, temb0 + sst
  local L = x:size(2)
  local function split(f) return T.cat({f(1, n, ada0), f(n + 1, L - n, ada)}, 2) end
  local function mod(h, a, b) return split(function(s, len, m) return nn.modulate(h:narrow(2, s, len), m:narrow(2, a, 1), m:narrow(2, b, 1)) end) end
  local function gate(x_, y, g) return split(function(s, len, m) return nn.gated_add(x_:narrow(2, s, len), y:narrow(2, s, len), m:narrow(2, g, 1)) end) end
  local function rope(t_)
    local B = t_:size(1)
    local p = t_:view(B, L, D // 2, 2)
    return t_ * cos + T.cat({p:narrow(4, 2, 1):neg(), p:narrow(4, 1, 1)}, 4):view(B, L, D) * sin
  end
  local h = mod(nn.rms_norm(x, nil, 1e-6), 1, 2)
  local q = rope(nn.rms_norm(nn.linear(h, bw["attn1.to_q.weight"], bw["attn1.to_q.bias"]), bw["attn1.norm_q.weight"], 1e-5))
  local k = rope(nn.rms_norm(nn.linear(h, bw["attn1.to_k.weight"], bw["attn1.to_k.bias"]), bw["attn1.norm_k.weight"], 1e-5))
  local v = nn.linear(h, bw["attn1.to_v.weight"], bw["attn1.to_v.bias"])
  local B = x:size(1)
  local y = nn.attention(q:view(B, L, H, 16), k:view(B, L, H, 16), v:view(B, L, H, 16)):view(B, L, D)
  x = gate(x, nn.linear(y, bw["attn1.to_out.0.weight"], bw["attn1.to_out.0.bias"]), 3)
  q = nn.rms_norm(nn.linear(x, bw["attn2.to_q.weight"], bw["attn2.to_q.bias"]), bw["attn2.norm_q.weight"], 1e-5)
  y = nn.attention(q:view(B, L, H, 16), kv[i][1], kv[i][2], {mask = kv.mask}):view(B, L, D)
  x = x + nn.linear(y, bw["attn2.to_out.0.weight"], bw["attn2.to_out.0.bias"])
  h = mod(nn.rms_norm(x, nil, 1e-6), 4, 5)
  y = nn.linear(nn.linear(h, bw["ff.net.0.proj.weight"], bw["ff.net.0.proj.bias"]):gelu_tanh(), bw["ff.net.2.weight"], bw["ff.net.2.bias"])
  return gate(x, y, 6)
end

t.test("the first frame's tokens at their own timestep (image-to-video): the C block against the ops", function()
  local kv = tr.cross_kv(F.encoder_hidden_states, F.encoder_attention_mask:to("f32"))
  local cos, sin = tr.rope(grid, scale)
  local temb = tr.time(F.timestep:totable())
  local temb0 = tr.time({0, 0})
  local x = zoe.nn.linear(F.hidden_states, w["proj_in.weight"], w["proj_in.bias"])
  for _, n in ipairs {20, 60, 1} do
    local got = tr.block(2, x, temb, temb0, n, kv, cos, sin)
    close(got, lua_block(2, x, temb, temb0, n, kv, cos, sin), 1e-6, ("%d conditioned tokens"):format(n))
  end
  close(tr.block(1, x, temb, temb, 20, kv, cos, sin), tr.block(1, x, temb, nil, 0, kv, cos, sin), 1e-6,
    "temb0 = temb is the plain block")
end)

-- The pipeline runs a bf16 checkpoint's transformer with bf16 products (zoe.precision(model.precision)):
-- on the AVX512-BF16 kernel where the CPU has it. The fixture's 120 rows would go in as hi + lo
-- bf16 (near f32: products of few rows); forcing the kernel gives the plain bf16 products that a
-- full-size run's thousands of rows get.
t.test("bf16 weights on the bf16 kernel stay within 1e-2 of the same weights in f32 products and of the fixture", function()
  local rounded = {}
  for _, k in ipairs(w:keys()) do rounded[k] = w[k]:to("bf16") end
  local btr = ltx.transformer(cfg, rounded)
  local mask = F.encoder_attention_mask:to("f32")
  local function run() return btr.forward(F.hidden_states, F.timestep, btr.cross_kv(F.encoder_hidden_states, mask),
    {grid = grid, rope_scale = scale}) end
  zoe.gemm_backend("openblas")
  local ok, want = pcall(run)
  local backend = zoe.gemm_backend("zoe-avx512bf16")
  local ok2, got = pcall(run)
  zoe.gemm_backend("auto")
  if not ok then error(want, 0) end
  if not ok2 then error(got, 0) end
  local f = io.open("/proc/cpuinfo")
  local has_bf16 = f and f:read("a"):find("avx512_bf16", 1, true)
  if f then f:close() end
  if has_bf16 and os.getenv("ZOE_PRECISION") ~= "f32" then
    t.eq(backend, "zoe-avx512bf16", "the bf16 kernel ran")
    t.ok(t.tensor_relerr(got, want) > 1e-5, "the activations were rounded to bf16")
  end
  close(got, want, 1e-2, "bf16 products against f32 products on the rounded weights")
  close(got, F.sample, 1e-2, "bf16 against the fixture")
end)

t.test("errors name the problem", function()
  t.raises(function() tr.forward(T.zeros(1, 60, 4), 1, {}, {grid = grid, rope_scale = scale}) end,
    "ltx.transformer: tokens have 4 channels, the model takes 8")
  t.raises(function() tr.forward(T.zeros(1, 59, 8), 1, {}, {grid = grid, rope_scale = scale}) end,
    "ltx.transformer: grid 3x4x5 does not hold 59 tokens")
  local kv = tr.cross_kv(F.encoder_hidden_states, F.encoder_attention_mask:to("f32"))
  local cos, sin = tr.rope(grid, scale)
  local temb = tr.time({1, 2})
  local x = T.zeros(2, 60, 32)
  t.raises(function() tr.block(1, x, temb, nil, 5, kv, cos, sin) end, "ltx_block: 5 conditioned tokens need temb0")
  t.raises(function() tr.block(1, T.zeros(2, 60, 31), temb, nil, 0, kv, cos, sin) end,
    "ltx_block: x must be [B, L, D] with D divisible by 2 heads, got 2x60x31")
  t.raises(function() tr.block(1, T.zeros(1, 60, 32), temb:narrow(1, 1, 1), nil, 0, kv, cos, sin) end,
    "ltx_block: cross keys/values must be [1, Lc, 2, Dh]")
  t.raises(function() zoe.nn.ltx_rope(x, cos:narrow(1, 1, 59), sin) end, "ltx_rope: x must be [B, L, D] (D even) and cos, sin [L, D]")
  t.raises(function() zoe.nn.ltx_block(x, temb, {}, {heads = 2, cos = cos, sin = sin, cross_k = kv[1][1], cross_v = kv[1][2]}) end,
    "ltx_block: the weights have no 'table'")
end)

t.done()
