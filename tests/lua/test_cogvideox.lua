-- CogVideoX's transformer against diffusers (../shared/fixtures/cogvideox-tiny): the 2B, 5B and
-- 1.5-I2V configurations on random weights, their output and the debugging tensors (time
-- embedding, patch embedding with positions, block 0), the position tables; and the two
-- variants the fixture does not hold, 5B-I2V (learned position table) and 1.5-5B text-to-video,
-- against tools/cogvideox_torch.py (a PyTorch mirror that matches every output of the fixture
-- to 2e-7; tests/fixtures/cogvideox). 1e-4 relative error.
local t = require "testlib"
local zoe = require "zoe"
local cogvideox = require "zoe.arch.cogvideox"
local pos = require "zoe.arch.cogvideox_pos"
local T = zoe.tensor

local fx = require "cogvideox_fixtures"
fx.require_fixtures("CogVideoX fixtures")
local root, config, close = fx.root, fx.config, fx.close

local function load(dir)
  return config(dir), zoe.load(root .. dir .. "/weights.safetensors"), zoe.load(root .. dir .. "/io.safetensors")
end

local function check(dir, extra)
  local cfg, w, io_ = load(dir)
  local tr = cogvideox.transformer(cfg, w)
  local o = extra and extra(io_) or {}
  o.on_block = function(i, video, text)
    if i == 1 then
      close(video, io_.block0_hidden_states, 1e-4, dir .. " block 0 video")
      close(text, io_.block0_encoder_hidden_states, 1e-4, dir .. " block 0 text")
    end
  end
  local temb = tr.time(io_.timestep:to("f32"), io_.ofs)
  close(temb, io_.temb, 1e-4, dir .. " temb")
  close(tr.embed(io_.hidden_states, io_.encoder_hidden_states), io_.patch_embed_out, 1e-4, dir .. " patch_embed_out")
  local out = tr.forward(io_.hidden_states, io_.timestep:to("f32"), io_.encoder_hidden_states, o)
  close(out, io_.sample, 1e-4, dir .. " sample")
  return tr, io_
end

t.test("2B: 3-D sincos table from the actual latent size", function()
  local cfg, _, io_ = load("transformer_2b")
  local tbl = pos.sincos_3d(32, 3, 2, 3, cfg.spatial_interpolation_scale, cfg.temporal_interpolation_scale)
  close(tbl, io_.pos_embedding[1]:narrow(1, 8, 18), 1e-6, "pos_embedding video rows")
  t.eq(io_.pos_embedding[1]:narrow(1, 1, 7):abs():sum():item(), 0, "text rows are zero")
  check("transformer_2b")
end)

t.test("the feed-forward in chunks of rows gives the same result", function()
  local cfg, w, io_ = load("transformer_5b")
  local tr = cogvideox.transformer(cfg, w)
  local a = tr.forward(io_.hidden_states, io_.timestep:to("f32"), io_.encoder_hidden_states)
  local b = tr.forward(io_.hidden_states, io_.timestep:to("f32"), io_.encoder_hidden_states, {ffn_rows = 5})
  close(b, a, 1e-6, "chunks of 5 rows")
end)

t.test("the C block says what is wrong with its inputs", function()
  local cfg, w, io_ = load("transformer_5b")
  local tr = cogvideox.transformer(cfg, w)
  local T = zoe.tensor
  local x, es = T.zeros(2, 25, 32), T.zeros(2, 32)
  local nn = zoe.nn
  t.raises(function() nn.cogvideox_block(x, es, tr.roles[1], {heads = 3, text = 7}) end, "width 32 is not divisible by 3 heads")
  t.raises(function() nn.cogvideox_block(x, es, tr.roles[1], {heads = 2, text = 30}) end, "30 text rows in a sequence of 25")
  t.raises(function() nn.cogvideox_block(x, es, tr.roles[1], {heads = 2, text = 7, rope_cos = T.zeros(17, 16), rope_sin = T.zeros(17, 16)}) end,
    "rope tables must be f32 [18, 16]")
  t.raises(function() nn.cogvideox_block(x, es, tr.roles[1], {heads = 2}) end, "options need text")
  t.raises(function() nn.cogvideox_block(x, es, {q = io_.sample}, {heads = 2, text = 7}) end, "cogvideox_block")
end)

t.test("5B: RoPE on the video rows of q and k, fractional grid off the base size", function()
  local cfg = config("transformer_5b")
  local _, _, io_ = load("transformer_5b")
  local c, s = pos.rope_3d(cogvideox.config(cfg), 3, 32, 48)
  close(c, io_.image_rotary_emb_cos, 1e-6, "rope cos")
  close(s, io_.image_rotary_emb_sin, 1e-6, "rope sin")
  check("transformer_5b")
  check("transformer_5b", function(io) return {rope = {io.image_rotary_emb_cos, io.image_rotary_emb_sin}} end)
end)

t.test("1.5-5B-I2V: linear patch embedding over (c, t, y, x), ofs embedding, integer RoPE", function()
  local cfg = config("transformer_1_5")
  local _, _, io_ = load("transformer_1_5")
  local c, s = pos.rope_3d(cogvideox.config(cfg), 4, 32, 48)
  close(c, io_.image_rotary_emb_cos, 1e-6, "rope cos")
  close(s, io_.image_rotary_emb_sin, 1e-6, "rope sin")
  check("transformer_1_5", function(io) return {ofs = io.ofs} end)
end)

local V = zoe.load("tests/fixtures/cogvideox/variants.safetensors")
local VC = zoe.json.decode(io.open("tests/fixtures/cogvideox/variants.json"):read("a"))

-- a fixture model's weights with some replaced (the variant's own tensors under 'prefix')
local function variant(name)
  local base = VC[name].base
  local w = zoe.load(root .. base .. "/weights.safetensors")
  local own = {}
  for _, k in ipairs(V:keys()) do
    local rest = k:match("^" .. name .. "%.(.*)$")
    if rest then own[rest] = V:get(k) end
  end
  local view = setmetatable({}, {__index = function(_, k) return own[k] or w[k] end})
  return VC[name].config, view, zoe.load(root .. base .. "/io.safetensors"), own
end

t.test("5B-I2V: 32-style doubled input channels and a learned position table", function()
  local cfg, w, io_, own = variant("i2v5b")
  local tr = cogvideox.transformer(cfg, w)
  close(tr.forward(own.hidden_states, io_.timestep:to("f32"), io_.encoder_hidden_states), own.sample, 1e-4, "5B-I2V sample")
  local small = own.hidden_states:narrow(4, 1, 2)
  t.raises(function() tr.forward(small, io_.timestep:to("f32"), io_.encoder_hidden_states) end,
    "learned positions are for 25 tokens")
end)

t.test("1.5-5B text-to-video: patch_size_t 2 without the ofs embedding", function()
  local cfg, w, io_, own = variant("t2v15")
  local tr = cogvideox.transformer(cfg, w)
  close(tr.forward(own.hidden_states, io_.timestep:to("f32"), io_.encoder_hidden_states), own.sample, 1e-4, "1.5-5B sample")
end)

t.done()
