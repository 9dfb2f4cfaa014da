-- float8 weights (safetensors F8_E4M3 / F8_E5M2) and ComfyUI's scaled fp8 files (X.weight in fp8
-- with X.scale_weight: the weight is scale_weight * X.weight): the tiny Wan DiT with its matrices in
-- fp8 runs through the bf16 kernel (fp8 values are exact in bf16; the scale multiplies the product)
-- and matches the forward on the same weights dequantized.
local t = require "testlib"
local zoe = require "zoe"
local wf = require "wan_fixtures"
local wan = require "zoe.arch.wan"
local util = require "zoe.arch.util"
local T = zoe.tensor

wf.require_fixtures("fp8")
local cfg, io_ = wf.config("dit"), zoe.load(wf.root .. "dit/io.safetensors")
local src = zoe.load(wf.root .. "dit/weights.safetensors")
local tmp = os.tmpname()

-- the fixture with every 2-D matrix of the blocks in 'dt', scaled per tensor (or not), and the
-- dequantized values as ComfyUI computes them (f32 here)
local function make(dt, scaled)
  local file, deq = {}, {}
  for _, name in ipairs(src:keys()) do
    local w = src[name]
    if name:find("^blocks%.") and w:dim() == 2 then
      local s = scaled and w:abs():max():item() / (dt == "f8_e4m3" and 448 or 57344) or 1
      local q = (w * (1 / s)):to(dt)
      file[name] = q
      if scaled then file[name:gsub("%.weight$", ".scale_weight")] = T.tensor(s) end
      deq[name] = q:to("f32") * s
    else
      file[name], deq[name] = w, w
    end
  end
  if scaled then file.scaled_fp8 = T.zeros(0):to(dt) end -- ComfyUI's marker
  zoe.save(tmp, file)
  return tmp, deq
end

t.test("fp8 tensors round-trip through safetensors", function()
  local x = T.randn(3, 5)
  for _, dt in ipairs {"f8_e4m3", "f8_e5m2"} do
    zoe.save(tmp, {x = x:to(dt)})
    local y = zoe.load(tmp).x
    t.eq(y:dtype(), dt)
    t.eq((y:to("f32") - x:to(dt):to("f32")):abs():max():item(), 0)
    t.ok(t.tensor_relerr(y:to("f32"), x) < (dt == "f8_e4m3" and 0.05 or 0.1), dt)
  end
end)

t.test("scaled fp8 (e4m3fn and e5m2): the forward on the dequantized weights", function()
  for _, dt in ipairs {"f8_e4m3", "f8_e5m2"} do
    local path, deq = make(dt, true)
    local w = util.scaled_fp8(zoe.load(path))
    t.ok(w, "scale_weight keys seen")
    t.eq(w["blocks.0.self_attn.q.weight"]:dtype(), dt) -- kept in fp8 in memory
    local ref = wan.dit(cfg, deq)(io_.x, io_.t, io_.context)
    local out = wan.dit(cfg, w)(io_.x, io_.t, io_.context)
    local err = wf.relerr(out, ref)
    t.ok(err < 1e-2, ("%s through bf16: %.3g"):format(dt, err))
    local _, before = zoe.precision("f32") -- an f32 run: widened, the same products to f32 rounding
    local ok, e2 = pcall(function()
      local err32 = wf.relerr(wan.dit(cfg, w)(io_.x, io_.t, io_.context), wan.dit(cfg, deq)(io_.x, io_.t, io_.context))
      t.ok(err32 < 1e-5, ("%s in f32: %.3g"):format(dt, err32))
    end)
    zoe.precision(before)
    assert(ok, e2)
  end
end)

t.test("plain fp8 weights (no scales) and a LoRA on a scaled one", function()
  local path, deq = make("f8_e4m3", false)
  t.eq(util.scaled_fp8(zoe.load(path)), nil)
  local err = wf.relerr(wan.dit(cfg, zoe.load(path))(io_.x, io_.t, io_.context), wan.dit(cfg, deq)(io_.x, io_.t, io_.context))
  t.ok(err < 1e-2, "unscaled: " .. err)
  path, deq = make("f8_e4m3", true)
  local w = util.scaled_fp8(zoe.load(path))
  local lora = require "zoe.lora"
  local L = "../shared/fixtures/lora/style_comfy.safetensors"
  local a = lora.apply(w, {{L, 1.0}})
  local b = lora.apply(setmetatable({keys = function() return src:keys() end}, {__index = deq}), {{L, 1.0}})
  -- merged in double from the fp8 values and the scale: one rounding, where the reference rounded scale * q first
  local x, y = a["blocks.0.self_attn.q.weight"], b["blocks.0.self_attn.q.weight"]
  t.ok((x - y):abs():max():item() <= 1e-6 * y:abs():max():item(), "merged")
end)

os.remove(tmp)
t.done()
