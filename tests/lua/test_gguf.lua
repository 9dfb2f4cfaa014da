-- zoe.load on GGUF files (../shared/fixtures/gguf): names, dtypes, shapes, metadata,
-- dequantization through to(), quantization back, and ops refusing quantized blocks.
local t = require "testlib"
local zoe = require "zoe"
local T = zoe.tensor

local dir = "../shared/fixtures/gguf/"
local f = io.open(dir .. "README.md")
if not f then
  t.skip("gguf", "../shared/fixtures/gguf is absent")
  t.done()
end
f:close()

t.test("zoe.load opens a GGUF file like any weights file", function()
  local w = zoe.load(dir .. "wan-tiny-mixed.gguf")
  t.eq(#w, 69)
  local q = w["blocks.0.self_attn.o.weight"]
  t.eq(q:dtype(), "q4_0")
  t.eq(q:shape(), {96, 96})
  t.eq(w["blocks.1.ffn.0.weight"]:dtype(), "q6_k")
  t.eq(w["blocks.1.ffn.0.weight"]:shape(), {160, 96}) -- stored as rows of 256, orig_shape says 160x96
  t.eq(w["text_embedding.0.weight"]:dtype(), "bf16")
  local m = w:metadata()
  t.eq(m["general.architecture"], "wan")
  t.eq(m["general.alignment"], "64")
  t.eq(m["fixture.arr_str"], '["first","","third"]')
  t.eq(m["fixture.i64"], "-1099511627783")
  t.eq(zoe.json.decode(m["wan.patch_size"]), {1, 2, 2})
end)

t.test("every quantized tensor dequantizes to ggml's values", function()
  for _, stem in ipairs {"wan-tiny-q8_0", "wan-tiny-q4_k", "wan-tiny-mixed"} do
    local w, d = zoe.load(dir .. stem .. ".gguf"), zoe.load(dir .. stem .. ".dequant.safetensors")
    for _, name in ipairs(w:keys()) do
      local a, b = w[name]:to("f32"), d[name]
      t.eq(a:numel(), b:numel(), name)
      local diff = (a:reshape(table.unpack(b:shape())) - b):abs():max():item()
      t.eq(diff, 0, stem .. " " .. name)
    end
  end
end)

t.test("city96's layout: 5-D patch embedding, 3-D modulation", function()
  local w = zoe.load(dir .. "wan-tiny-q8_0-city96.gguf")
  t.eq(w["patch_embedding.weight"]:shape(), {96, 4, 1, 2, 2})
  t.eq(w["blocks.1.modulation"]:shape(), {1, 6, 96})
  t.eq(w["blocks.1.cross_attn.v.weight"]:dtype(), "q8_0")
end)

t.test("quantizing and dequantizing from Lua", function()
  local x = T.randn(4, 256)
  for _, dt in ipairs {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k"} do
    local q = x:to(dt)
    t.eq(q:dtype(), dt)
    t.eq(q:shape(), {4, 256})
    local err = t.tensor_relerr(q:to("f32"), x)
    t.ok(err < 0.12, dt .. " relative error " .. err)
    t.ok(err > 0, dt .. " is lossy")
    t.eq((q:clone():to("f32") - q:to("f32")):abs():max():item(), 0, dt .. " clone")
  end
  t.raises(function() return x:to("q2_k") end, "cannot quantize to q2_k")
  t.raises(function() return T.randn(3, 10):to("q8_0") end, "not a whole number of q8_0 blocks")
end)

t.test("ops other than to() refuse quantized tensors", function()
  local q = T.randn(2, 64):to("q8_0")
  t.raises(function() return q + 1 end, "quantized: dequantize it first")
  t.near(q:sum():item(), q:to("f32"):sum():item(), 1e-6) -- ops that widen their input first see the values
  local ids = T.tensor({1, 0}, "i32")
  t.eq((zoe.nn.embedding(q, ids) - zoe.nn.embedding(q:to("f32"), ids)):abs():max():item(), 0)
  t.raises(function() return q:totable() end, "quantized")
  t.ok(tostring(q):find("q8_0 2x64", 1, true), tostring(q))
  -- a row range stays readable
  t.eq((q:narrow(1, 2, 1):to("f32") - q:to("f32"):narrow(1, 2, 1)):abs():max():item(), 0)
  t.raises(function() return q:t():to("f32") end, "strided view")
end)

t.test("malformed GGUF files are refused with a message", function()
  local tmp = os.tmpname()
  local src = io.open(dir .. "quant-types.gguf", "rb"):read("a")
  io.open(tmp, "wb"):write(src:sub(1, 500)):close()
  t.raises(function() zoe.load(tmp) end, "17 tensors cannot fit in 476 bytes")
  io.open(tmp, "wb"):write(src:sub(1, 900)):close()
  t.raises(function() zoe.load(tmp) end, "truncated at byte")
  io.open(tmp, "wb"):write("GGUF\1\0\0\0" .. src:sub(9)):close()
  t.raises(function() zoe.load(tmp) end, "version 1")
  -- general.alignment 0 (found by make fuzz: it divided by zero past the error)
  local kv = string.pack("<s8I4I4", "general.alignment", 4, 0)
  io.open(tmp, "wb"):write("GGUF" .. string.pack("<I4i8i8", 3, 0, 1) .. kv):close()
  t.raises(function() zoe.load(tmp) end, "general.alignment must be a u32 power of two")
  os.remove(tmp)
end)

t.done()
