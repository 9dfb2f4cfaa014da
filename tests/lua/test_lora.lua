-- LoRAs (zoe.lora) against ../shared/fixtures/lora: every key style merged onto the tiny Wan DiT
-- gives the reference merged weights exactly (f32 rounding of a float64 sum), the forward matches
-- the official model's output with them, keys that match nothing are named, several LoRAs add
-- with their strengths, quantized weights keep a low-rank side product, and the pipeline records
-- each LoRA's path, hash and strength so that replay is exact.
local t = require "testlib"
local zoe = require "zoe"
local wf = require "wan_fixtures"
local wan = require "zoe.arch.wan"
local lora = require "zoe.lora"
local T = zoe.tensor

wf.require_fixtures("lora")
local L = "../shared/fixtures/lora/"
local readme = io.open(L .. "README.md")
if not readme then
  t.skip("lora", "../shared/fixtures/lora is absent")
  t.done()
end
readme:close()
local manifest = zoe.json.decode(io.open(L .. "manifest.json"):read("a"))
local base = zoe.load(wf.root .. "dit/weights.safetensors")
local STYLES = {"style_diffusers", "style_comfy", "style_kohya", "style_comfy_down_up", "style_comfy_noalpha",
                "style_diffusers_metadata", "style_comfy_unmatched"}

-- the tensors of 'v' that differ from the reference file's, as "name" list
local function differing(v, ref_path)
  local ref, out = zoe.load(ref_path), {}
  for _, name in ipairs(ref:keys()) do
    if (v[name]:to("f32") - ref[name]):abs():max():item() ~= 0 then out[#out + 1] = name end
  end
  return out
end

t.test("every style, strengths 1 and 0.5: the reference merged weights exactly", function()
  for _, st in ipairs(STYLES) do
    for _, s in ipairs {{1.0, "merged_scale_1"}, {0.5, "merged_scale_0_5"}} do
      local v = lora.apply(base, {{L .. st .. ".safetensors", s[1]}}, {quiet = true})
      local diff = differing(v, L .. s[2] .. ".safetensors")
      -- kohya/musubi files carry no bias delta: that bias keeps its base value
      local want = st == "style_kohya" and {"blocks.0.ffn.0.bias"} or {}
      t.eq(diff, want, st .. " at " .. s[1])
    end
  end
end)

t.test("the forward with the LoRA: the official model's output within 1e-5", function()
  local cfg, io_ = wf.config("dit"), zoe.load(L .. "io.safetensors")
  for _, s in ipairs {{1.0, "out"}, {0.5, "out_scale_0_5"}} do
    local v = lora.apply(base, {{L .. "style_comfy.safetensors", s[1]}})
    local out = wan.dit(cfg, v)(io_.x, io_.t, io_.context)
    local err = wf.relerr(out, io_[s[2]])
    t.ok(err < 1e-5, ("strength %g: %.3g"):format(s[1], err))
  end
end)

t.test("keys that match nothing are reported by name", function()
  local _, report = lora.apply(base, {{L .. "style_comfy_unmatched.safetensors", 1.0}}, {quiet = true})
  local want = manifest.files["style_comfy_unmatched.safetensors"].keys_matching_nothing
  t.eq(report.loras[1].unmatched, want)
  t.raises(function() lora.apply(base, {{L .. "style_comfy_unmatched.safetensors", 1.0}}, {strict = true}) end,
    "9 keys match no weight of the model: diffusion_model.blocks.0.cross_attn.k_img.alpha")
end)

t.test("several LoRAs add with their own strengths", function()
  -- half of each style: the weights move by the whole update, the bias by half (kohya has none)
  local v = lora.apply(base, {{L .. "style_comfy.safetensors", 0.5}, {L .. "style_kohya.safetensors", 0.5}})
  local d1 = differing(v, L .. "merged_scale_1.safetensors")
  t.eq(d1, {"blocks.0.ffn.0.bias"})
  local half = zoe.load(L .. "merged_scale_0_5.safetensors")
  t.eq((v["blocks.0.ffn.0.bias"] - half["blocks.0.ffn.0.bias"]):abs():max():item(), 0)
end)

t.test("quantized weights stay quantized: a low-rank side product", function()
  local cfg, io_ = wf.config("dit"), zoe.load(L .. "io.safetensors")
  local q = zoe.load("../shared/fixtures/gguf/wan-tiny-q8_0.gguf")
  local dq = zoe.load("../shared/fixtures/gguf/wan-tiny-q8_0.dequant.safetensors")
  local vq = lora.apply(q, {{L .. "style_comfy.safetensors", 1.0}})
  t.eq(vq["blocks.0.self_attn.q.weight"]:dtype(), "q8_0")
  local vd = lora.apply(dq, {{L .. "style_comfy.safetensors", 1.0}})
  local a = wan.dit(cfg, vq)(io_.x, io_.t, io_.context)
  local b = wan.dit(cfg, vd)(io_.x, io_.t, io_.context)
  local err = wf.relerr(a, b)
  t.ok(err < 1e-2, "q8_0 + LoRA against the dequantized weights merged: " .. err)
  -- an f32 run widens the weight: the side product is then the merge to f32 rounding
  local _, before = zoe.precision("f32")
  local ok, e2 = pcall(function()
    local x = wan.dit(cfg, vq)(io_.x, io_.t, io_.context)
    local y = wan.dit(cfg, vd)(io_.x, io_.t, io_.context)
    t.ok(wf.relerr(x, y) < 1e-5, "f32: " .. wf.relerr(x, y))
  end)
  zoe.precision(before)
  assert(ok, e2)
end)

t.test("text2video{lora =}: the record holds path, hash and strength; replay is exact", function()
  local tiny = require "tiny_wan"
  local tmp = os.tmpname()
  os.remove(tmp)
  os.execute(("mkdir -p '%s'"):format(tmp))
  tiny.write(tmp)
  local D = tiny.config.dit.dim
  local file = tmp .. "/style.safetensors"
  zoe.save(file, {
    ["diffusion_model.blocks.0.self_attn.q.lora_A.weight"] = T.randn({4, D}, {seed = 1}),
    ["diffusion_model.blocks.0.self_attn.q.lora_B.weight"] = T.randn({D, 4}, {seed = 2}),
    ["diffusion_model.blocks.0.self_attn.q.alpha"] = T.tensor(8.0),
    ["diffusion_model.blocks.9.self_attn.q.alpha"] = T.tensor(8.0),
  })
  local spec = {model = tmp, prompt = "a red circle", steps = 2, seed = 5, width = 32, height = 32, frames = 5}
  local plain = zoe.pipeline.text2video(spec)
  spec.lora = {{file, 0.8}}
  spec.out = tmp .. "/out.mp4"
  local frames, record = zoe.pipeline.text2video(spec)
  t.ok((frames - plain):abs():max():item() > 1e-3, "the LoRA changes the video")
  t.eq(record.recipe.lora[1].path, file)
  t.eq(record.recipe.lora[1].strength, 0.8)
  t.eq(record.recipe.lora[1].hash, zoe.models.hash_file(file))
  local again = zoe.pipeline.replay(spec.out, {out = tmp .. "/again.mp4"})
  t.eq((again - frames):abs():max():item(), 0)
  zoe.save(file, {["diffusion_model.blocks.0.self_attn.q.alpha"] = T.tensor(1.0)})
  t.raises(function() zoe.pipeline.replay(spec.out) end, "replay: LoRA")
  os.execute(("rm -rf '%s'"):format(tmp))
end)

t.test("storyboards take lora per shot (or for the board) and key shots by it", function()
  local format, plan = require "zoe.storyboard.format", require "zoe.storyboard.plan"
  local b = format.normalize {model = "zoe-tiny", lora = {{L .. "style_comfy.safetensors"}},
    shots = {{prompt = "a"}, {prompt = "a", lora = {{L .. "style_comfy.safetensors", 0.5}}}, {prompt = "a", lora = {}}}}
  local json = zoe.json.encode
  t.eq(json(b.lora), json({{L .. "style_comfy.safetensors", 1.0}}))
  t.eq(json(format.normalize(b).shots[2].lora), json({{L .. "style_comfy.safetensors", 0.5}}))
  t.raises(function() format.normalize {shots = {{prompt = "a", lora = {"x"}}}} end, "shot 1: field 'lora': entry 1")
  local model = zoe.models.load("zoe-tiny")
  local p = plan.resolve(b, model)
  local keys = {}
  for i, s in ipairs(p.shots) do keys[i] = (plan.key(s, model, b)) end
  t.ok(keys[1] ~= keys[2] and keys[2] ~= keys[3] and keys[1] ~= keys[3], "three different keys")
end)

t.done()
