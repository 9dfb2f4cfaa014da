-- PyTorch .pth checkpoints through zoe.load: files written by torch.save
-- (tests/fixtures/weights, made by tools/fixtures/make_weights_fixtures.py, and the
-- Wan2.1 fixtures in ../shared), hostile pickles, broken zips.
local t = require "testlib"
local zoe = require "zoe"

local FX = "tests/fixtures/weights/"
local SHARED = "../shared/fixtures/wan2.1-tiny/"

local function flat(x)
  local n = x:numel()
  if n == 0 then return {} end
  local v = x:reshape(n):totable()
  return type(v) == "table" and v or {v}
end

-- exact equality of shape, dtype and every value
local function same(a, b, what)
  t.eq(a:shape(), b:shape(), what .. " shape")
  t.eq(a:dtype(), b:dtype(), what .. " dtype")
  t.eq(flat(a), flat(b), what .. " values")
end

local function max_abs_diff(a, b)
  if a:numel() == 0 then return 0 end
  return (a:to("f32") - b:to("f32")):abs():max():item()
end

t.test("state dict of every dtype equals the safetensors copy", function()
  local p = zoe.load(FX .. "state.pth")
  local s = zoe.load(FX .. "state.safetensors")
  t.eq(p:format(), "pth")
  t.eq(p:keys(), s:keys(), "names")
  t.eq(#p, 14)
  for _, name in ipairs(s:keys()) do same(p:get(name), s:get(name), name) end
  t.eq(s:metadata().made_by, "make_weights_fixtures.py")
end)

t.test("views keep torch's strides and offset over the shared storage", function()
  local p = zoe.load(FX .. "state.pth")
  t.eq(p.transposed:shape(), {5, 4})
  t.eq(p.transposed:stride(), {1, 5}, "transpose is a view")
  t.ok(not p.transposed:is_contiguous())
  t.eq(p.narrow:shape(), {3, 3})
  t.eq(p.narrow:stride(), {5, 1})
  t.eq(flat(p.narrow), flat(p.base:narrow(1, 2, 3):narrow(2, 3, 3)))
  t.eq(p.scalar:dim(), 0)
  t.eq(p.scalar:item(), 2.5)
  t.eq(p.empty:shape(), {0, 3})
  t.eq(flat(p.param), {0, 1, 2, 3, 4, 5}, "nn.Parameter")
  t.eq(flat(p.i64), {-(2 ^ 40), 5, 2 ^ 50})
  t.eq(flat(p.bool), {1, 0, 1})
end)

t.test("protocol 4 pickles and nested dicts", function()
  local a, b = zoe.load(FX .. "proto4.pth"), zoe.load(FX .. "state.pth")
  t.eq(a:keys(), b:keys())
  for _, name in ipairs(b:keys()) do same(a:get(name), b:get(name), name) end
  local n = zoe.load(FX .. "nested.pth")
  t.eq(n:keys(), {"model.a", "model.b"}, "tensors under model., epoch and note skipped")
  t.eq(flat(n:prefix("model.").a), {1, 1})
  local h = zoe.load(FX .. "good_handmade.pth")
  t.eq(flat(h.w), {0, 1, 2, 3})
end)

t.test("Wan2.1 umT5 bf16 .pth equals weights.safetensors rounded to bf16", function()
  if not t.exists(SHARED .. "umt5/weights-bf16.pth") then
    return t.skip("umt5 pth", "../shared is absent")
  end
  local p = zoe.load(SHARED .. "umt5/weights-bf16.pth")
  local s = zoe.load(SHARED .. "umt5/weights.safetensors")
  t.eq(p:keys(), s:keys(), "names")
  for name, x in pairs(p) do
    t.eq(x:dtype(), "bf16", name)
    local ref = s:get(name):to("bf16")
    t.eq(x:shape(), ref:shape(), name)
    t.eq(max_abs_diff(x, ref), 0, name .. " max |diff|")
  end
end)

t.test("Wan2.1 VAE .pth equals weights.safetensors exactly", function()
  if not t.exists(SHARED .. "vae/weights.pth") then return t.skip("vae pth", "../shared is absent") end
  local p = zoe.load(SHARED .. "vae/weights.pth")
  local s = zoe.load(SHARED .. "vae/weights.safetensors")
  t.eq(p:keys(), s:keys(), "names")
  t.ok(#p > 100, "the VAE has many tensors")
  for name, x in pairs(p) do
    local ref = s:get(name)
    t.eq(x:dtype(), ref:dtype(), name)
    t.eq(x:shape(), ref:shape(), name)
    t.eq(max_abs_diff(x, ref), 0, name .. " max |diff|")
  end
end)

t.test("pickles that would run code are refused and run nothing", function()
  os.remove("zoe-evil-ran")
  local cases = {
    evil_system = "refusing global 'os.system'",
    evil_eval = "refusing global 'builtins.eval'",
    evil_stack_global = "refusing global 'os.system'",
    evil_newobj = "opcode 0x81",
    evil_inst = "opcode 0x69 ('i')",
    evil_reduce_storage = "refusing to call storage type torch.FloatStorage",
  }
  for name, msg in pairs(cases) do
    local err = t.raises(function() zoe.load(FX .. name .. ".pth") end, msg)
    t.ok(err:find(name .. ".pth", 1, true), "the message names the file: " .. err)
  end
  t.ok(not t.exists("zoe-evil-ran"), "a hostile pickle ran a command")
end)

t.test("broken checkpoints give clear errors", function()
  local cases = {
    bad_compressed = "is compressed (zip method 8)",
    bad_missing_storage = "storage 'archive/data/9' is missing from the zip",
    bad_strides = "reach element 5 of a storage of 4",
    bad_offset = "reach element 5 of a storage of 4",
    bad_not_dict = "holds no dict",
    bad_no_stop = "ends without STOP",
    bad_truncated = "no end of central directory record",
    legacy = "legacy (before 1.6) format",
  }
  for name, msg in pairs(cases) do
    local file = FX .. name .. (name == "legacy" and ".pt" or ".pth")
    local err = t.raises(function() zoe.load(file) end, msg)
    t.ok(err:find(file, 1, true), "the message names the file: " .. err)
  end
end)

t.test("a zip without data.pkl, and garbage, are not checkpoints", function()
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  -- a valid empty zip: just an end of central directory record
  f:write("PK\3\4" .. string.rep("\0", 26) .. "PK\5\6" .. string.rep("\0", 18))
  f:close()
  t.raises(function() zoe.load(path) end, "a zip without data.pkl: not a PyTorch checkpoint")
  f = assert(io.open(path, "wb"))
  f:write("PK\3\4" .. string.rep("garbage", 100))
  f:close()
  t.raises(function() zoe.load(path) end, "not a valid zip file (no end of central directory record")
  f = assert(io.open(path, "wb"))
  -- an end record claiming 3 entries in a directory of 10 bytes at offset 0
  f:write("PK\3\4" .. string.rep("\0", 26) .. "PK\5\6\0\0\0\0\3\0\3\0\10\0\0\0\0\0\0\0\0\0")
  f:close()
  t.raises(function() zoe.load(path) end, "more entries than the central directory can hold")
  os.remove(path)
end)

t.test("tensors outlive the weights object (the mapping stays alive)", function()
  local x
  do
    local p <close> = zoe.load(FX .. "state.pth")
    x = p.base
  end
  collectgarbage()
  t.eq(x:shape(), {4, 5})
  t.eq(max_abs_diff(x, zoe.load(FX .. "state.safetensors").base), 0)
end)

t.done()
