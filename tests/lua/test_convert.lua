-- zoe convert: the tiny Wan DiT (../shared/fixtures/wan2.1-tiny/dit) written as GGUF. Its q8_0
-- file holds exactly the tensors of the fixture city96 layout ggml wrote (types, shapes, blocks);
-- its q4_k file the fixture's q4_K blocks; f16/bf16 the source rounded; every file loads and runs.
local t = require "testlib"
local zoe = require "zoe"
local wf = require "wan_fixtures"
local wan = require "zoe.arch.wan"
local convert = require "zoe.cli.convert"

wf.require_fixtures("convert")
local src = wf.root .. "dit/weights.safetensors"
local gdir = "../shared/fixtures/gguf/"
local tmp = os.tmpname()
os.remove(tmp)
local out = tmp .. ".gguf"

local function shape(x) return table.concat(x:shape(), "x") end

-- every tensor of 'ref' (names, dtypes, shapes, dequantized values) in the file at 'path'
local function same_tensors(path, ref, only)
  local a, b = zoe.load(path), zoe.load(ref)
  local n = 0
  for _, name in ipairs(b:keys()) do
    if not only or name:find(only) then
      local x, y = a:get(name), b[name]
      t.eq(x:dtype() .. " " .. shape(x), y:dtype() .. " " .. shape(y), name)
      t.eq((x:to("f32") - y:to("f32")):abs():max():item(), 0, name)
      n = n + 1
    end
  end
  return n
end

t.test("q8_0: the tensors of ggml's city96-layout fixture, block for block", function()
  convert.convert(src, out, "q8_0")
  t.eq(same_tensors(out, gdir .. "wan-tiny-q8_0-city96.gguf"), 69)
  local m = zoe.load(out):metadata()
  t.eq(m["general.architecture"], "wan")
  t.eq(m["general.file_type"], "7")
end)

t.test("q4_k: ggml's q4_K blocks (rows of 256 with orig_shape) for every block weight", function()
  convert.convert(src, out, "q4_k")
  t.eq(same_tensors(out, gdir .. "wan-tiny-q4_k.gguf", "^blocks%."), 54)
  local w = zoe.load(out)
  t.eq(w["blocks.0.ffn.0.weight"]:dtype(), "q4_k")
  t.eq(w:metadata()["comfy.gguf.orig_shape.blocks.0.ffn.0.weight"], "[160,96]")
  t.eq(w["text_embedding.0.weight"]:dtype(), "f16") -- ComfyUI-GGUF keeps embeddings and head unquantized
  t.eq(w["blocks.1.modulation"]:shape(), {1, 6, 96})   -- every dim kept, as city96's files
  t.eq(w["patch_embedding.weight"]:dtype() .. " " .. shape(w["patch_embedding.weight"]), "f32 96x4x1x2x2")
end)

t.test("q5_k, q6_k, f16, bf16: each loads and runs the DiT near the f32 forward", function()
  local cfg, io_ = wf.config("dit"), zoe.load(wf.root .. "dit/io.safetensors")
  local ref = io_.out
  for _, ty in ipairs {{"q5_k", 0.1}, {"q6_k", 0.05}, {"f16", 2e-3}, {"bf16", 1e-2}} do
    convert.convert(src, out, ty[1])
    local w = zoe.load(out)
    t.eq(w["blocks.0.self_attn.q.weight"]:dtype(), ty[1])
    local y = wan.dit(cfg, w)(io_.x, io_.t, io_.context)
    local err = wf.relerr(y, ref)
    t.ok(err < ty[2], ("%s: %.3g from the f32 forward"):format(ty[1], err))
  end
  local s, b = zoe.load(src), zoe.load(out) -- the bf16 file: the source rounded to nearest even
  local x = s["blocks.1.ffn.2.weight"]
  t.eq((b["blocks.1.ffn.2.weight"]:to("f32") - x:to("bf16"):to("f32")):abs():max():item(), 0)
end)

t.test("f8_e4m3 into a .safetensors: ComfyUI's scaled fp8, which runs", function()
  local st = tmp .. ".safetensors"
  convert.convert(src, st, "f8_e4m3")
  local raw = zoe.load(st)
  t.eq(raw["blocks.0.ffn.0.weight"]:dtype(), "f8_e4m3")
  t.ok(raw["blocks.0.ffn.0.scale_weight"]:item() > 0, "a scale")
  t.ok(raw.scaled_fp8 ~= nil, "the marker")
  local cfg, io_ = wf.config("dit"), zoe.load(wf.root .. "dit/io.safetensors")
  local err = wf.relerr(wan.dit(cfg, require("zoe.arch.util").scaled_fp8(raw))(io_.x, io_.t, io_.context), io_.out)
  t.ok(err < 5e-2, "fp8 e4m3: " .. err)
  t.raises(function() convert.convert(src, out, "f8_e4m3") end, "give OUT a .safetensors name")
  os.remove(st)
end)

t.test("the command: usage, errors, and no file left on failure", function()
  local zoe_bin = os.getenv("ZOE_TEST_ZOE") or "bin/zoe"
  os.remove(out)
  local ok, _, code = os.execute(("%s convert %s %s --type q9 2>/dev/null"):format(zoe_bin, src, out))
  t.ok(not ok and code == 1, "an unknown type exits 1")
  t.ok(not io.open(out), "nothing written")
  ok, _, code = os.execute(("%s convert %s 2>/dev/null"):format(zoe_bin, src))
  t.ok(not ok and code == 2, "missing arguments exit 2")
  ok = os.execute(("%s -q convert %s %s --type q6_k 2>/dev/null"):format(zoe_bin, src, out))
  t.ok(ok, "converts")
  t.eq(zoe.load(out)["blocks.0.ffn.2.weight"]:dtype(), "q6_k")
  t.raises(function() convert.convert(src .. ".missing", out, "q8_0") end, "missing")
end)

t.test("gguf_writer: each tensor's table is checked by name, and a misspelt key is named", function()
  local path = tmp .. ".spec.gguf"
  t.raises(function() zoe.gguf_writer(path, {}, {{name = "x", dtype = "f32", shpae = {2}}}) end,
    "gguf_writer: a tensor: unknown option 'shpae' (did you mean 'shape'?)")
  t.raises(function() zoe.gguf_writer(path, {}, {{name = "x", shape = {2}}}) end, "tensor 1 needs a name and a dtype")
  t.raises(function() zoe.gguf_writer(path, {}, {{name = "x", dtype = "f32"}}) end, "tensor 'x' needs a shape")
  local w <close> = zoe.gguf_writer(path, {{"general.architecture", "str", "test"}},
                                    {{name = "x", dtype = "f32", shape = {2, 3}}})
  local want = zoe.tensor.arange(6):to("f32"):view(2, 3)
  w:write(want)
  w:close()
  local x = zoe.load(path).x
  t.eq(x:shape(), {2, 3})
  t.eq((x - want):abs():max():item(), 0)
  t.eq(x[2][3]:item(), 5)
  os.remove(path)
end)

os.remove(out)
t.done()
