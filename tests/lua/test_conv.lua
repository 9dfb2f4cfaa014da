-- zoe.nn's convolutions, resampling and Wan VAE blocks against PyTorch
-- (tests/fixtures/conv.lua, made by tools/fixtures/make_conv_fixtures.py with the
-- Wan VAE modules of tools/train/wan.py). f32 within 1e-4 relative, bf16 weights 1e-2.
local t = require "testlib"
local zoe = require "zoe"
local T, nn = zoe.tensor, zoe.nn
local wan_vae = require "zoe.arch.wan_vae"
local F = dofile("tests/fixtures/conv.lua")

local function fx(name, dtype)
  local e = assert(F[name], "no fixture " .. name)
  local x = T.tensor(e.data):view(e.shape)
  return dtype and x:to(dtype) or x
end

-- the weights of block 'prefix' under their official names
local function weights(prefix, dtype)
  local w = {}
  for k in pairs(F) do
    if k:sub(1, #prefix + 1) == prefix .. "." then w[k:sub(#prefix + 2)] = fx(k, dtype) end
  end
  return w
end

-- the same by the roles the VAE blocks take
local function res_roles(prefix, dtype) return wan_vae.resblock_roles(weights(prefix, dtype), "") end
local function attn_roles(prefix, dtype) return wan_vae.attention_roles(weights(prefix, dtype), "") end

local function flat(x)
  local n = x:numel()
  return x:contiguous():to("f32"):reshape(n):totable()
end

local function relerr(got, want)
  return t.relerr(flat(got), flat(want))
end

local function match(got, name, tol)
  local e = assert(F[name], "no fixture " .. name)
  t.eq(got:shape(), e.shape, name .. " shape")
  local err = t.relerr(flat(got), e.data)
  if err > (tol or 1e-4) then error(string.format("%s: relative error %.3g", name, err), 2) end
end

local function max_abs_diff(a, b) return (a:to("f32") - b:to("f32")):abs():max():item() end

-- bit-for-bit equal to the fixture (rearrangements)
local function same(got, name)
  local want = fx(name)
  t.eq(got:shape(), want:shape(), name .. " shape")
  t.eq(max_abs_diff(got, want), 0, name .. " max difference")
end

-- f(): with products forced onto OpenBLAS (a bf16 weight widened, the rest f32)
local function on_openblas(f)
  zoe.gemm_backend("openblas")
  local ok, err = pcall(f)
  zoe.gemm_backend("auto") -- the default
  if not ok then error(err, 0) end
end

t.test("conv3d: Wan's CausalConv3d(k=3, pad=1)", function()
  local w = weights("c3")
  match(nn.conv3d(fx("c3.x"), w.weight, w.bias, {padding = 1, causal_pad = 2}), "c3.y")
  match(nn.conv3d(fx("c3.x"), w.weight, w.bias, {padding = {1, 1}, causal_pad = 2, stride = {1, 1, 1}}), "c3.y")
end)

t.test("conv3d: 8 -> 16 channels (the Winograd F(4x4, 3x3) path)", function()
  local w = weights("c3w")
  match(nn.conv3d(fx("c3w.x"), w.weight, w.bias, {padding = 1, causal_pad = 2}), "c3w.y")
  match(nn.conv3d(fx("c3w.x"), w.weight:to("bf16"), w.bias, {padding = 1, causal_pad = 2}), "c3w.y", 1e-2)
  on_openblas(function()
    match(nn.conv3d(fx("c3w.x"), w.weight:to("bf16"), w.bias, {padding = 1, causal_pad = 2}), "c3w.y", 1e-2)
  end)
end)

t.test("conv3d: bf16 and f16 weights", function()
  local w = weights("c3")
  local x = fx("c3.x")
  -- bf16 weights run bf16 products where the CPU has them (activations rounded too)
  match(nn.conv3d(x, w.weight:to("bf16"), w.bias, {padding = 1, causal_pad = 2}), "c3.y", 1e-2)
  match(nn.conv3d(x, w.weight:to("bf16"), w.bias, {padding = 1, causal_pad = 2}), "c3.y_bf16w", 5e-3)
  -- widened for f32 products: the same sum as torch with the weight rounded the same way
  on_openblas(function()
    match(nn.conv3d(x, w.weight:to("bf16"), w.bias, {padding = 1, causal_pad = 2}), "c3.y_bf16w")
  end)
  match(nn.conv3d(x, w.weight:to("f16"), w.bias:to("f16"), {padding = 1, causal_pad = 2}), "c3.y", 1e-2)
  -- and a half-precision input is widened
  match(nn.conv3d(x:to("bf16"), w.weight, w.bias, {padding = 1, causal_pad = 2}), "c3.y", 1e-2)
end)

t.test("conv3d: time strides and time-only kernels (Wan's time_conv)", function()
  local w = weights("c3s")
  match(nn.conv3d(fx("c3s.x"), w.weight, w.bias, {stride = {2, 1, 1}}), "c3s.y")
  local u = weights("c3u")
  match(nn.conv3d(fx("c3.x"), u.weight, u.bias, {causal_pad = 2}), "c3u.y")
  local p = weights("c3p")
  match(nn.conv3d(fx("c3.x"), p.weight, p.bias, {stride = {1, 2, 2}, padding = 1, causal_pad = 1}), "c3p.y")
end)

t.test("conv3d: 1, then 4, then 4 frames with prev equal all 9 at once", function()
  local w = weights("c3")
  T.manual_seed(7)
  local x = T.randn(1, 4, 9, 6, 7)
  local whole = nn.conv3d(x, w.weight, w.bias, {padding = 1, causal_pad = 2})
  local parts = T.zeros(1, 5, 9, 6, 7)
  local prev
  for _, c in ipairs {{1, 1}, {2, 4}, {6, 4}} do
    local chunk = x:narrow(3, c[1], c[2])
    local y = nn.conv3d(chunk, w.weight, w.bias, {padding = 1, causal_pad = 2, prev = prev})
    parts:narrow(3, c[1], c[2]):copy_(y)
    -- the next chunk's prev: the last 2 input frames so far
    local upto = c[1] + c[2] - 1
    local first = math.max(1, upto - 1)
    prev = x:narrow(3, first, upto - first + 1)
  end
  t.eq(max_abs_diff(parts, whole), 0, "chunked minus whole")
  -- 'out' writes into a view: the second chunk straight into its frames of a bigger tensor
  local dst = T.zeros(1, 5, 9, 6, 7)
  nn.conv3d(x:narrow(3, 2, 4), w.weight, w.bias, {padding = 1, causal_pad = 2, prev = x:narrow(3, 1, 1),
                                                  out = dst:narrow(3, 2, 4)})
  t.eq(max_abs_diff(dst:narrow(3, 2, 4), whole:narrow(3, 2, 4)), 0, "written into out")
  t.eq(dst:narrow(3, 1, 1):abs():max():item(), 0, "frames outside out untouched")
end)

t.test("conv2d: Wan's downsample (ZeroPad2d((0,1,0,1)), stride 2) and a padded 3x3", function()
  local d = weights("c2d")
  match(nn.conv2d(fx("c2d.x"), d.weight, d.bias, {stride = 2, padding = {0, 1, 0, 1}}), "c2d.y")
  match(nn.conv2d(fx("c2d.x"), d.weight, d.bias, {stride = {2, 2}, padding = {0, 1, 0, 1}}), "c2d.y")
  local u = weights("c2u")
  match(nn.conv2d(fx("c2d.x"), u.weight, u.bias, {padding = 1}), "c2u.y")
  match(nn.conv2d(fx("c2d.x"), u.weight:to("bf16"), u.bias, {padding = {1, 1}}), "c2u.y", 1e-2)
end)

t.test("upsample_nearest: 2-D x2 ('nearest-exact') and 3-D (2, 3, 2)", function()
  same(nn.upsample_nearest(fx("up2.x"), {2, 2}), "up2.y")
  same(nn.upsample_nearest(fx("up3.x"), {2, 3, 2}), "up3.y")
  -- the time factor 1 of Wan's per-frame upsampling, on a transposed view
  local x = fx("up3.x")
  local y = nn.upsample_nearest(x:transpose(3, 4), {1, 2, 2})
  t.eq(y:shape(), {1, 2, 3, 4, 8})
  t.eq(max_abs_diff(y:narrow(3, 2, 1):narrow(4, 3, 1):narrow(5, 5, 2),
                    x:narrow(4, 2, 1):narrow(3, 2, 1):narrow(5, 3, 1):expand(1, 2, 1, 1, 2)), 0)
end)

t.test("patchify equals Wan's patch embedding Conv3d(C, D, (1,2,2), stride (1,2,2))", function()
  local w = weights("patch")
  local tokens = nn.patchify(fx("patch.x"), {1, 2, 2})
  t.eq(tokens:shape(), {12, 12})
  local d = w.weight:shape()[1]
  match(tokens:matmul(w.weight:reshape(d, 12):t()) + w.bias, "patch.tokens", 1e-5)
end)

t.test("unpatchify equals Wan's einsum 'fhwpqrc->cfphqwr'; round trip", function()
  same(nn.unpatchify(fx("unpatch.x"), {2, 2, 3}, {1, 2, 2}, 4), "unpatch.y")
  -- patchify's features are (c, p), unpatchify's (p, c): reorder and come back
  T.manual_seed(3)
  local x = T.randn(4, 4, 6, 8)
  local tok = nn.patchify(x, {2, 2, 2})                              -- [2*3*4, 4*8]
  local pc = tok:view(24, 4, 8):transpose(2, 3):contiguous():view(24, 32)
  t.eq(max_abs_diff(nn.unpatchify(pc, {2, 3, 4}, {2, 2, 2}, 4), x), 0)
end)

for _, name in ipairs {"res", "res_id"} do
  t.test("vae_resblock " .. name .. ": all frames at once", function()
    local y, cache = nn.vae_resblock(fx(name .. ".x"), res_roles(name))
    match(y, name .. ".y")
    t.eq(#cache, 2)
    t.eq(cache[1]:shape()[3], 2, "cached frames")
  end)

  t.test("vae_resblock " .. name .. ": chunks of 1, 1, 2, 1 frames with the cache", function()
    local w, x = res_roles(name), fx(name .. ".x")
    local whole = nn.vae_resblock(x, w)
    local parts, cache = {}, nil
    for _, c in ipairs {{1, 1}, {2, 1}, {3, 2}, {5, 1}} do
      local y
      y, cache = nn.vae_resblock(x:narrow(3, c[1], c[2]), w, cache)
      parts[#parts + 1] = y
    end
    local chunked = T.cat(parts, 3)
    match(chunked, name .. ".y_chunked")
    match(cache[1], name .. ".cache1", 1e-5)
    match(cache[2], name .. ".cache2", 1e-5)
    t.eq(max_abs_diff(chunked, whole), 0, "chunked minus whole")
  end)
end

t.test("vae_resblock: bf16 weights", function()
  match(nn.vae_resblock(fx("res.x"), res_roles("res", "bf16")), "res.y", 1e-2)
end)

t.test("vae_attention", function()
  match(nn.vae_attention(fx("attn.x"), attn_roles("attn")), "attn.y")
  match(nn.vae_attention(fx("attn.x"), attn_roles("attn", "bf16")), "attn.y", 1e-2)
end)

t.test("bad input gives errors that say what and where", function()
  local w = weights("c3")
  local x = fx("c3.x")
  t.raises(function() nn.conv3d(T.zeros(1, 3, 5, 6, 7), w.weight) end,
    "conv3d: input has 3 channels, weight expects 4 (input 1x3x5x6x7, weight 5x4x3x3x3)")
  t.raises(function() nn.conv3d(T.zeros(4, 5, 6, 7), w.weight) end,
    "conv3d: input must be 5-D [N, Cin, T, H, W], got 4-D 4x5x6x7")
  t.raises(function() nn.conv3d(T.zeros(1, 4, 1, 2, 2), w.weight) end,
    "conv3d: kernel 3x3x3 is larger than the padded input 1x2x2")
  t.raises(function() nn.conv2d(T.zeros(1, 4, 2, 2), T.zeros(1, 4, 3, 3)) end,
    "conv2d: kernel 3x3 is larger than the padded input 2x2")
  t.raises(function() nn.conv3d(x, w.weight, T.zeros(3)) end, "expected 5 (one per output channel)")
  t.raises(function() nn.conv3d(x, w.weight, nil, {causal_pad = 1, prev = x:narrow(3, 1, 2)}) end,
    "prev has 2 frames, more than the 1 frames of causal padding")
  t.raises(function() nn.conv3d(x, w.weight, nil, {stride = {1, 2}}) end, "option 'stride' needs 1 or 3 entries")
  t.raises(function() nn.conv3d(x, w.weight, nil, {padding = "one"}) end, "option 'padding' must be an integer")
  t.raises(function() nn.conv3d(x, T.zeros(5, 4, 3, 3, 3, "i32")) end, "must be float tensors")
  t.raises(function() nn.upsample_nearest(x, {2}) end, "2 to 3 integers expected")
  t.raises(function() nn.patchify(T.zeros(3, 2, 5, 6), {1, 2, 2}) end,
    "patchify: input 3x2x5x6 is not divisible into 1x2x2 patches")
  t.raises(function() nn.unpatchify(T.zeros(12, 15), {2, 2, 3}, {1, 2, 2}, 4) end,
    "unpatchify: input must be [f*h*w, pt*ph*pw*C] = [12, 16]")
  local rw = res_roles("res")
  rw.conv1 = nil
  local err = t.raises(function() nn.vae_resblock(fx("res.x"), rw) end, "vae_resblock: the weights have no 'conv1'")
  t.ok(err:find("test_conv.lua:%d+:"), "the error names the caller's line: " .. err)
  local named = weights("res")
  named["residual.2.weight"] = nil
  t.raises(function() wan_vae.resblock_roles(named, "") end, "wan.vae: the weights have no 'residual.2.weight'")
  local bad = res_roles("res_id")
  bad.conv1 = T.zeros(6, 5, 3, 3, 3)
  t.raises(function() nn.vae_resblock(fx("res_id.x"), bad) end,
    "vae_resblock (conv1): conv3d: input has 6 channels, weight expects 5 (input 1x6x5x5x6, weight 6x5x3x3x3)")
  local nosc = res_roles("res")
  nosc.shortcut = nil
  t.raises(function() nn.vae_resblock(fx("res.x"), nosc) end,
    "vae_resblock: input has 4 channels and the block gives 6, but there is no shortcut")
  t.raises(function() nn.vae_resblock(fx("res.x"), res_roles("res"), {"frames"}) end, "cache[1] is a string, not a tensor")
  t.raises(function() nn.vae_attention(fx("res.x"), attn_roles("attn")) end,
    "vae_attention: qkv must be a float [12, 4, 1, 1], got f32 24x8x1x1")
  local typo = res_roles("res")
  typo.shortcutt = typo.shortcut
  t.raises(function() nn.vae_resblock(fx("res.x"), typo) end, "vae_resblock: unknown weight 'shortcutt' (did you mean 'shortcut'?)")
end)

t.done()
