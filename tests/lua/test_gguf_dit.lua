-- The tiny Wan DiT run on GGUF weights kept quantized (../shared/fixtures/gguf), against the
-- same forward on ggml's dequantized values (the fixture's io.safetensors inputs).
-- int8 products (AVX512-VNNI): q8_0 within 1e-2, q4_k and the mix within 5e-2; an f32 run
-- widens the weights and matches the dequantized forward.
local t = require "testlib"
local zoe = require "zoe"
local wf = require "wan_fixtures"
local wan = require "zoe.arch.wan"

local dir = "../shared/fixtures/gguf/"
wf.require_fixtures("gguf dit")
local readme = io.open(dir .. "README.md")
if not readme then
  t.skip("gguf dit", "../shared/fixtures/gguf is absent")
  t.done()
end
readme:close()

local cfg, io_ = wf.config("dit"), zoe.load(wf.root .. "dit/io.safetensors")
local function forward(w) return wan.dit(cfg, w)(io_.x, io_.t, io_.context) end
local _, quant_path = zoe.gemm_backend()

local function check(stem, dequant, tol)
  local q = forward(zoe.load(dir .. stem .. ".gguf"))
  local ref = forward(zoe.load(dir .. dequant .. ".dequant.safetensors"))
  local err = wf.relerr(q, ref)
  t.ok(err < tol, ("%s: %.3g from the dequantized forward (tolerance %g)"):format(stem, err, tol))
  if quant_path == "zoe-avx512vnni" then t.ok(err > 1e-5, stem .. ": the int8 products ran") end
  return q
end

t.test("q8_0 weights: within 1e-2 of the dequantized forward", function()
  check("wan-tiny-q8_0", "wan-tiny-q8_0", 1e-2)
end)

t.test("q4_k weights (rows of 256 with orig_shape): within 5e-2", function()
  check("wan-tiny-q4_k", "wan-tiny-q4_k", 5e-2)
end)

t.test("every type at once (q4_0 ... q6_K, f16, bf16): within 5e-2", function()
  check("wan-tiny-mixed", "wan-tiny-mixed", 5e-2)
end)

t.test("city96's layout runs as the ggml-written file", function()
  local a = forward(zoe.load(dir .. "wan-tiny-q8_0-city96.gguf"))
  local b = forward(zoe.load(dir .. "wan-tiny-q8_0.gguf"))
  t.eq((a - b):abs():max():item(), 0)
end)

t.test("an f32 run widens quantized weights: the dequantized forward", function()
  local _, before = zoe.precision("f32")
  local ok, err = pcall(function()
    local q = forward(zoe.load(dir .. "wan-tiny-q4_k.gguf"))
    local ref = forward(zoe.load(dir .. "wan-tiny-q4_k.dequant.safetensors"))
    t.ok(wf.relerr(q, ref) < 1e-6, "widened: " .. wf.relerr(q, ref))
  end)
  zoe.precision(before)
  assert(ok, err)
end)

t.done()
