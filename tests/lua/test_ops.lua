-- Every tensor op against PyTorch reference values (tests/fixtures/ops.lua,
-- made by tools/fixtures/make_op_fixtures.py). f32 within 1e-5 relative.
local t = require "testlib"
local zoe = require "zoe"
local T = zoe.tensor
local F = dofile("tests/fixtures/ops.lua")

local function fx(name, dtype)
  local e = assert(F[name], "no fixture " .. name)
  return T.tensor(e.data, dtype):view(e.shape)
end

local function flat(x)
  local n, out = x:numel(), {}
  local v = x:reshape(n):totable()
  for i = 1, n do out[i] = v[i] end
  return out
end

local function match(got, name, tol)
  local e = assert(F[name], "no fixture " .. name)
  t.eq(got:shape(), e.shape, name .. " shape")
  local err = t.relerr(flat(got:to("f32")), e.data)
  if err > (tol or 1e-5) then error(string.format("%s: relative error %.3g", name, err), 2) end
end

local a, b, pos = fx("bin.a"), fx("bin.b"), fx("bin.pos")

t.test("binary ops broadcast [3,1,4] with [2,4]", function()
  match(a + b, "add")
  match(a - b, "sub")
  match(a * b, "mul")
  match(a / b, "div")
  match(pos:pow(b), "pow")
  match(a:maximum(b), "maximum")
  match(a:minimum(b), "minimum")
end)

t.test("binary ops with scalars on either side", function()
  match(a + 2.5, "add_scalar")
  match(2.5 - a, "rsub_scalar")
  match(2.0 / b, "rdiv_scalar")
  match(a * -3.0, "mul_scalar")
  match(T.add(a, 2.5), "add_scalar")
end)

t.test("functional forms write into out, in-place forms into self", function()
  local out = T.zeros(3, 2, 4)
  local r = T.add(a, b, out)
  match(out, "add")
  t.ok(rawequal(r, r) and r:shape()[1] == 3)
  local c = a:expand(3, 2, 4):clone()
  c:add_(b)
  match(c, "add")
  local d = fx("un.x"):clone()
  d:exp_()
  match(d, "exp")
end)

t.test("non-contiguous inputs", function()
  local m = fx("nc.m")
  match(m:t() + T.full({5, 6}, 0.25), "nc.add_t")
  match(m:t():exp(), "nc.exp_t")
  match(m:narrow(1, 2, 3):narrow(2, 3, 3) * m:narrow(1, 1, 3):narrow(2, 1, 3), "nc.narrow_mul")
end)

t.test("unary ops", function()
  local x, xp = fx("un.x"), fx("un.xp")
  for _, op in ipairs {"neg", "abs", "exp", "sin", "cos", "tanh", "sigmoid", "silu", "gelu_tanh"} do
    match(x[op](x), op)
  end
  match(x:gelu(), "gelu")
  match(x:gelu("tanh"), "gelu_tanh")
  for _, op in ipairs {"log", "sqrt", "rsqrt"} do match(xp[op](xp), op) end
  match(x:clamp(-0.5, 0.5), "clamp")
  match(-x, "neg")
end)

t.test("vectorized exp, tanh, sigmoid over a wide range", function()
  local xw, xs = fx("un.xw"), fx("un.xs")
  match(xw:exp(), "exp_wide")
  match(xw:tanh(), "tanh_wide")
  match(xw:sigmoid(), "sigmoid_wide")
  match(xs:tanh(), "tanh_small")
end)

t.test("where and lerp", function()
  local c, wa, wb = fx("tern.c"), fx("tern.a"), fx("tern.b")
  match(T.where(c, wa, wb), "where")
  match(wa:lerp(wb, 0.3), "lerp_s")
  match(wa:lerp(wb, fx("tern.w")), "lerp_t")
end)

t.test("reductions over every dim, with and without keepdim", function()
  local r = fx("red.x")
  for d = 0, 2 do
    for _, kd in ipairs {false, true} do
      local k = kd and "k" or ""
      match(r:sum(d + 1, kd), ("sum.%d%s"):format(d, k))
      match(r:mean(d + 1, kd), ("mean.%d%s"):format(d, k))
      match(r:var(d + 1, kd), ("var.%d%s"):format(d, k))
      match(r:max(d + 1, kd), ("max.%d%s"):format(d, k))
      match(r:min(d + 1, kd), ("min.%d%s"):format(d, k))
      match(r:norm(2, d + 1, kd), ("norm.%d%s"):format(d, k))
      -- indices are 1-based in Lua
      match(r:argmax(d + 1, kd) - 1, ("argmax.%d%s"):format(d, k), 0)
      local _, idx = r:max(d + 1, kd)
      match(idx - 1, ("argmax.%d%s"):format(d, k), 0)
    end
  end
  match(r:var(2, false, 0), "var0.1")
  match(r:norm(1, 3), "norm1.2")
  match(r:sum(), "sum.all")
  match(r:mean(), "mean.all")
  match(r:max(), "max.all")
  match(r:norm(), "norm.all")
  t.near(r:sum():item(), F["sum.all"].data[1], 1e-5)
end)

t.test("negative dims count from the end", function()
  local r = fx("red.x")
  match(r:sum(-1), "sum.2")
  match(r:softmax(-3), "softmax.0")
end)

t.test("softmax and log_softmax", function()
  local r = fx("red.x")
  for d = 0, 2 do
    match(r:softmax(d + 1), "softmax." .. d)
    match(r:log_softmax(d + 1), "log_softmax." .. d)
  end
  local big = fx("sm.big")
  match(big:softmax(2), "softmax.big")
  match(big:log_softmax(2), "log_softmax.big")
end)

t.test("matmul: 2-D, batched with broadcast, 1-D, transposed views", function()
  local A, B = fx("mm.A"), fx("mm.B")
  match(A:matmul(B), "mm")
  match(A:t():contiguous():t():matmul(B), "mm.At_B")
  match(fx("bmm.A"):matmul(fx("bmm.B")), "bmm")
  local v = fx("mv.v")
  match(A:matmul(v), "mv")
  match(v:matmul(B), "vm")
  match(v:matmul(v), "vv")
  match(fx("bt.q"):matmul(fx("bt.k"):transpose(2, 3)), "bt")
  local out = T.empty(4, 5)
  T.matmul(A, B, out)
  match(out, "mm")
end)

t.test("cat, stack, index_select", function()
  local c1, c2 = fx("cat.a"), fx("cat.b")
  match(T.cat({c1, c2}, 2), "cat.1")
  match(T.cat({c1, c1}, 1), "cat.0")
  match(T.stack({c1, c1 * 2}, 1), "stack.0")
  match(T.stack({c1, c1 * 2}, 3), "stack.2")
  local emb = fx("is.emb")
  match(emb:index_select(1, T.tensor({4, 1, 10, 4}, "i32")), "is.rows")
  match(emb:index_select(2, T.tensor({2, 4}, "i32")), "is.cols")
end)

t.test("creation: linspace, arange", function()
  match(T.linspace(-1, 2, 7), "linspace")
  match(T.linspace(3, 5, 1), "linspace1")
  match(T.arange(2, 11, 3), "arange", 0)
  t.eq(T.arange(2, 11, 3):dtype(), "i32")
  match(T.arange(0.0, 1.0, 0.125), "arange_f")
  t.eq(T.zeros{2, 3}:shape(), {2, 3})
  t.eq(T.ones(4):sum():item(), 4.0)
  t.eq(T.full({2, 2}, 7, "i32"):totable()[2][2], 7)
end)

t.test("f32 -> bf16 and f16 rounds to nearest even, bit-exact with PyTorch", function()
  local v = fx("conv.f32")
  for _, dt in ipairs {"bf16", "f16"} do
    local want = F["conv." .. dt].bits
    local bytes = v:to(dt):view_dtype("u8"):totable() -- little-endian pairs
    for i = 1, #want do
      local bits = bytes[2 * i - 1] + 256 * bytes[2 * i]
      if bits ~= want[i] then
        error(string.format("%s: value %.9g gave bits 0x%04x, PyTorch 0x%04x", dt, F["conv.f32"].data[i], bits, want[i]))
      end
    end
    match(v:to(dt):to("f32"), "conv." .. dt .. "_f32", 0)
  end
end)

t.test("NaN converts to PyTorch's quiet NaN", function()
  local n = T.tensor{0 / 0}
  local b = n:to("bf16"):view_dtype("u8"):totable()
  t.eq(b[1] + 256 * b[2], 0x7fc0, "bf16 NaN")
  local h = n:to("f16"):view_dtype("u8"):totable()
  t.eq(h[1] + 256 * h[2] & 0x7fff, 0x7e00, "f16 NaN")
end)
t.done()
