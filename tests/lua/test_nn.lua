-- The model blocks against PyTorch (tests/fixtures/nn.safetensors, made by
-- tools/fixtures/make_nn_fixtures.py from the official module structure):
-- f32 within 1e-4 relative, bf16 weights within 1e-2.
local t = require "testlib"
local zoe = require "zoe"
local T, nn = zoe.tensor, zoe.nn
local wan = require "zoe.arch.wan"
local F = zoe.load("tests/fixtures/nn.safetensors")

local relerr, close = t.tensor_relerr, t.close

-- the weights of a block: the fixture's tensors under a prefix, keyed by the rest of the name
local function under(prefix)
  local w = {}
  for _, name in ipairs(F:keys()) do
    if name:sub(1, #prefix) == prefix then w[name:sub(#prefix + 1)] = F[name] end
  end
  return w
end

t.test("linear with f32 and bf16 weights, with and without bias", function()
  close(nn.linear(F["linear.x"], F["linear.w"], F["linear.b"]), F["linear.y"], 1e-5, "f32")
  close(nn.linear(F["linear.x"], F["linear.w"]), F["linear.y_nobias"], 1e-5, "no bias")
  -- bf16 weights: widened exactly for OpenBLAS; the bf16 kernel rounds the input too
  zoe.gemm_backend("openblas")
  close(nn.linear(F["linear.x"], F["linear.w_bf16"], F["linear.b"]), F["linear.y_bf16"], 1e-5, "bf16 exact")
  zoe.gemm_backend("auto")
  close(nn.linear(F["linear.x"], F["linear.w_bf16"], F["linear.b"]), F["linear.y_bf16"], 1e-2, "bf16 on " .. zoe.gemm_backend())
  close(nn.linear(F["linear.x"], F["linear.w_bf16"], F["linear.b"]), F["linear.y"], 1e-2, "bf16 vs f32")
  -- a non-contiguous input and an output buffer
  local xt = F["linear.x"]:transpose(1, 2):contiguous():transpose(1, 2)
  local out = T.empty(2, 7, 40)
  nn.linear(xt, F["linear.w"], F["linear.b"], out)
  close(out, F["linear.y"], 1e-5, "strided input into out")
end)

t.test("embedding lookup in f32 and f16 tables", function()
  close(nn.embedding(F["emb.table"], F["emb.ids"]), F["emb.y"], 0, "f32")
  close(nn.embedding(F["emb.table_f16"], F["emb.ids"]), F["emb.y_f16"], 0, "f16")
end)

t.test("layer, RMS, group and channel norms", function()
  local x = F["norm.x"]
  close(nn.layer_norm(x, F["norm.w"], F["norm.b"], 1e-5), F["layer_norm"], 1e-5, "layer_norm")
  close(nn.layer_norm(x, nil, nil, 1e-6), F["layer_norm.plain"], 1e-5, "plain layer_norm")
  close(nn.rms_norm(x, F["norm.w"], 1e-6), F["rms_norm"], 1e-5, "rms_norm")
  close(nn.group_norm(F["group.x"], 4, F["group.w"], F["group.b"], 1e-5), F["group_norm"], 1e-5, "group_norm")
  close(nn.channel_rms_norm(F["chan.x"], 2, F["chan.gamma"]), F["channel_rms_norm"], 1e-5, "channel_rms_norm")
end)

t.test("attention: plain, masked with an additive bias, one token", function()
  local q, k, v = F["attn.q"], F["attn.k"], F["attn.v"]
  close(nn.attention(q, k, v), F["attn.plain"], 1e-5, "plain")
  close(nn.attention(q, k, v, {scale = 1, mask = F["attn.mask"], bias = F["attn.bias"]}),
    F["attn.masked_biased"], 1e-5, "mask + bias")
  close(nn.attention(F["attn1.q"], F["attn1.kv"], F["attn1.kv"]), F["attn1.out"], 1e-6, "one token")
end)

t.test("tiled attention equals the naive formula at 2000 tokens", function()
  local q = T.randn({1, 2000, 2, 64}, {seed = 1})
  local k = T.randn({1, 2000, 2, 64}, {seed = 2})
  local v = T.randn({1, 2000, 2, 64}, {seed = 3})
  local got = nn.attention(q, k, v)
  local qh, kh, vh = q:permute(1, 3, 2, 4), k:permute(1, 3, 2, 4), v:permute(1, 3, 2, 4)
  local naive = (qh:matmul(kh:transpose(3, 4)) / 8):softmax(4):matmul(vh):permute(1, 3, 2, 4)
  close(got, naive, 1e-5, "2000 tokens")
  -- its memory is O(L*D): well under the 2000x2000 score matrix per head
  zoe.mem_reset_peak()
  local before = zoe.mem().current
  nn.attention(q, k, v)
  t.ok(zoe.mem().peak - before < 2000 * 2000 * 4, "no full score matrix")
end)

t.test("T5 relative position buckets and bias", function()
  close(nn.t5_buckets(150, 150, {buckets = 32, max_distance = 128}), F["t5rel.buckets"], 0, "buckets")
  close(nn.t5_position_bias(F["t5rel.table"], 20, 20), F["t5rel.bias"], 0, "bias")
end)

t.test("3-D RoPE on adjacent pairs (Wan's split of the head dim)", function()
  -- head 24: t gets 24/2 - 2*(24/6) = 4 pairs, h and w 4 each
  close(nn.rope(F["rope.x"], {grid = {3, 4, 6}, pairs = {4, 4, 4}}), F["rope.y"], 1e-6, "rope")
  local x = F["rope.x"]:clone()
  nn.rope(x, {grid = {3, 4, 6}, pairs = {4, 4, 4}, out = x})
  close(x, F["rope.y"], 1e-6, "in place")
end)

t.test("sinusoidal timestep embedding", function()
  close(nn.timestep_embedding(F["temb.t"], 64), F["temb.y"], 1e-6, "temb")
end)

t.test("modulate and gated_add equal their formulas", function()
  local x, sh, sc = T.randn({2, 5, 8}, {seed = 1}), T.randn({2, 1, 8}, {seed = 2}), T.randn({2, 1, 8}, {seed = 3})
  close(nn.modulate(x, sh, sc), x * (sc + 1) + sh, 1e-6, "modulate")
  local y, g = T.randn({2, 5, 8}, {seed = 4}), T.randn({2, 1, 8}, {seed = 5})
  close(nn.gated_add(x, y, g), x + y * g, 1e-6, "gated_add")
  close(nn.gated_add(x, y), x + y, 1e-6, "gated_add without gate")
  close(nn.gated_add(x, y, T.full({1}, -0.75)), x + y * -0.75, 1e-6, "gated_add with one gate")
  close(nn.gated_add(x:transpose(1, 2), y:transpose(1, 2), g:transpose(1, 2)),
    (x + y * g):transpose(1, 2), 1e-6, "gated_add on strided views")
end)

-- the fixture block's weights by role (its names are the official ones under "blk."), and
-- Wan's RoPE split of the head dim
local function block(names) return wan.block_roles(names or F, "blk.") end
local PAIRS = wan.rope_pairs(F["blk.x"]:size(3) // 4)

t.test("Wan DiT block with f32 and bf16 weights", function()
  local w = block()
  local opts = {heads = 4, grid = {3, 4, 6}, eps = 1e-6, rope_pairs = PAIRS}
  opts.cross_k, opts.cross_v = nn.wan_cross_kv(F["blk.context"], w, {heads = 4, eps = 1e-6})
  close(nn.wan_block(F["blk.x"], F["blk.e0"], w, opts), F["blk.y"], 1e-4, "f32")
  local n16 = {}
  for k, v in pairs(under("blk.")) do n16["blk." .. k] = v:dim() > 1 and v:to("bf16") or v end
  local w16 = block(n16)
  local o16 = {heads = 4, grid = {3, 4, 6}, rope_pairs = PAIRS}
  o16.cross_k, o16.cross_v = nn.wan_cross_kv(F["blk.context"], w16, {heads = 4})
  close(nn.wan_block(F["blk.x"], F["blk.e0"], w16, o16), F["blk.y"], 1e-2, "bf16")
end)

t.test("Wan DiT block: the feed-forward in row chunks, a batch entry at a time, gives the same", function()
  local w = block()
  local opts = {heads = 4, grid = {3, 4, 6}, eps = 1e-6, rope_pairs = PAIRS}
  opts.cross_k, opts.cross_v = nn.wan_cross_kv(F["blk.context"], w, {heads = 4, eps = 1e-6})
  local whole = nn.wan_block(F["blk.x"], F["blk.e0"], w, opts)
  opts.ffn_rows = 7 -- 72 tokens: ten chunks and a short one
  close(nn.wan_block(F["blk.x"], F["blk.e0"], w, opts), whole, 1e-6, "chunks of 7 rows")
  -- the fixture has two batch entries, each with its own modulation; one shared also works
  t.eq(F["blk.e0"]:size(1), 2, "a modulation per entry")
  local e1 = F["blk.e0"]:narrow(1, 1, 1)
  local shared = nn.wan_block(F["blk.x"], e1, w, {heads = 4, grid = {3, 4, 6}, eps = 1e-6, rope_pairs = PAIRS,
    cross_k = opts.cross_k, cross_v = opts.cross_v})
  opts.ffn_rows = 16
  close(nn.wan_block(F["blk.x"], e1, w, opts), shared, 1e-6, "shared modulation, chunks of 16")
  close(shared:narrow(1, 1, 1), whole:narrow(1, 1, 1), 1e-6, "entry 1 is the same either way")
  t.ok(relerr(shared:narrow(1, 2, 1), whole:narrow(1, 2, 1)) > 1e-3, "entry 2 had its own")
end)

t.test("umT5 layer with its relative position table and padding mask", function()
  local n = under("t5l.")
  -- by role, as lua/zoe/arch/t5.lua gives them (the fixture has the official umT5 names)
  local w = {norm1 = n["norm1.weight"], q = n["attn.q.weight"], k = n["attn.k.weight"], v = n["attn.v.weight"],
             o = n["attn.o.weight"], norm2 = n["norm2.weight"], gate = n["ffn.gate.0.weight"],
             fc1 = n["ffn.fc1.weight"], fc2 = n["ffn.fc2.weight"], pos_table = n["pos_embedding.embedding.weight"]}
  local y = nn.t5_layer(F["t5l.x"], w, {heads = 4, mask = F["t5l.mask"]})
  -- padded rows are not compared: the reference computes them too, but nothing uses them
  close(y:narrow(2, 1, 5), F["t5l.y"]:narrow(2, 1, 5), 1e-4, "real tokens")
  close(y, F["t5l.y"], 1e-4, "all rows")
end)

t.test("bad input: clear errors", function()
  t.raises(function() nn.linear(T.zeros(4, 320), T.zeros(8, 256)) end,
    "linear: input has 320 features, weight expects 256 (tensor 4x320, weight 8x256)")
  t.raises(function() nn.attention(T.zeros(1, 2, 3), T.zeros(1, 2, 3), T.zeros(1, 2, 3)) end,
    "attention: q, k, v must be [B, L, H, D]")
  t.raises(function() nn.attention(T.zeros(1, 2, 2, 4), T.zeros(1, 3, 2, 8), T.zeros(1, 3, 2, 4)) end,
    "do not agree")
  t.raises(function() nn.embedding(T.zeros(5, 2), T.tensor({7}, "i32")) end, "embedding: id 7 at position 0 is out of range for a table of 5 rows")
  t.raises(function() nn.rope(T.zeros(1, 10, 1, 8), {grid = {2, 2, 2}}) end, "rope: grid 2x2x2 has 8 positions, input has 10 tokens")
  t.raises(function() nn.layer_norm(T.zeros(2, 8), T.zeros(4)) end, "layer_norm: weight has 4 elements")
  t.raises(function() nn.wan_block(T.zeros(1, 4, 8), T.zeros(1, 6, 8), {}, {heads = 2, grid = {1, 2, 2}}) end,
    "wan_block: options need cross_k and cross_v")
  t.raises(function() nn.t5_layer(T.zeros(1, 3, 8), {}, {heads = 2}) end, "t5_layer: the weights have no 'norm1'")
  local w = block()
  w.ffn_in = nil
  t.raises(function() nn.wan_cross_kv(T.zeros(1, 3, 64), w, {heads = 4}) end, "wan_cross_kv: the weights have no 'ffn_in'")
  w = block()
  w.cross_attn.k = nil
  t.raises(function() nn.wan_cross_kv(T.zeros(1, 3, 64), w, {heads = 4}) end,
    "wan_cross_kv: cross_attn: the weights have no 'k'")
  local names = under("blk.")
  names["ffn.0.weight"] = nil
  local prefixed = {}
  for k, v in pairs(names) do prefixed["blk." .. k] = v end
  t.raises(function() block(prefixed) end, "wan.dit: the weights have no 'blk.ffn.0.weight'")
  -- the C block takes no Wan default for the RoPE split: the arch file gives it
  local o = {heads = 4, grid = {3, 4, 6}, cross_k = T.zeros(2, 5, 4, 16), cross_v = T.zeros(2, 5, 4, 16)}
  t.raises(function() nn.wan_block(F["blk.x"], F["blk.e0"], block(), o) end, "wan_block: options need rope_pairs")
end)

t.test("options and weights by role: a misspelt key is an error that names the nearest", function()
  local q = T.zeros(1, 2, 1, 4)
  t.raises(function() nn.attention(q, q, q, {scael = 0.1}) end,
    "attention: unknown option 'scael' (did you mean 'scale'?); known: bias, mask, out, scale")
  t.raises(function() nn.conv2d(T.zeros(1, 1, 3, 3), T.zeros(1, 1, 1, 1), nil, {paddign = 1}) end,
    "conv2d: unknown option 'paddign' (did you mean 'padding'?)")
  t.raises(function() nn.rope(q, {grid = {2, 1, 1}, thetta = 5}) end, "rope: unknown option 'thetta' (did you mean 'theta'?)")
  t.raises(function() nn.attention(q, q, q, {zzz = 1}) end, "attention: unknown option 'zzz'; known: bias, mask, out, scale")
  t.raises(function() nn.attention(q, q, q, {scale = "big"}) end, "attention: option 'scale' must be a number, got a string")
  local w = block()
  w.self_attn.norm_qq = w.self_attn.norm_q
  local o = {heads = 4, grid = {3, 4, 6}, rope_pairs = PAIRS, cross_k = T.zeros(2, 5, 4, 16), cross_v = T.zeros(2, 5, 4, 16)}
  t.raises(function() nn.wan_block(F["blk.x"], F["blk.e0"], w, o) end,
    "wan_block: self_attn: unknown weight 'norm_qq' (did you mean 'norm_q'?)")
  t.raises(function() nn.t5_layer(T.zeros(1, 3, 8), {nrom1 = T.zeros(8)}, {heads = 2}) end,
    "t5_layer: unknown weight 'nrom1' (did you mean 'norm1'?)")
  t.raises(function() T.randn({2}, {sed = 1}) end, "randn: unknown option 'sed' (did you mean 'seed'?)")
  t.raises(function() zoe.json.encode({}, {indnet = true}) end, "json.encode: unknown option 'indnet' (did you mean 'indent'?)")
end)
t.test("drop_pages gives a mapped weight's memory back and keeps its values", function()
  local function rss()
    for line in io.lines("/proc/self/status") do
      local v = line:match("^VmRSS:%s+(%d+)")
      if v then return tonumber(v) * 1024 end
    end
  end
  local path = os.tmpname()
  zoe.save(path, {w = T.randn({8 * 1024 * 1024}, {seed = 9})}) -- 32 MiB
  collectgarbage()
  local w = zoe.load(path).w
  local before = rss()
  local sum = w:sum():item() -- touches every page
  local touched = rss()
  t.ok(touched - before > 24 * 2 ^ 20, ("reading maps the pages in (%.1f MiB)"):format((touched - before) / 2 ^ 20))
  t.eq(zoe.drop_pages(w), 1)
  local after = rss()
  t.ok(touched - after > 24 * 2 ^ 20, ("dropping gives them back (%.1f MiB)"):format((touched - after) / 2 ^ 20))
  t.eq(w:sum():item(), sum, "the values are read again from the file")
  t.eq(zoe.drop_pages(T.zeros(4)), 0, "heap tensors are left alone")
  os.remove(path)
end)

t.done()
