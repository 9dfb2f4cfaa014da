-- LTX-Video's transformer (lua/zoe/arch/ltx.lua) against ../shared/fixtures/ltx-tiny/transformer:
-- diffusers' LTXVideoTransformer3DModel on a tiny random configuration (2 heads x 16, 2 layers),
-- a 3x4x5 latent grid, two timesteps, a padded caption mask, the pipeline's rotary scale
-- (8/25, 32, 32). The rotary table, the time embedding, every stage and the output `sample`
-- within 1e-4 relative error (the fixture's own bound for a float32 port).
local t = require "testlib"
local zoe = require "zoe"
local ltx = require "zoe.arch.ltx"
local T = zoe.tensor

local root = "../shared/fixtures/ltx-tiny/transformer/"
local fh = io.open(root .. "config.json")
if not fh then
  t.skip("LTX-Video transformer", "../shared/fixtures/ltx-tiny is absent")
  t.done()
end
local cfg = zoe.json.decode(fh:read("a"))
fh:close()
local w, F = zoe.load(root .. "weights.safetensors"), zoe.load(root .. "io.safetensors")
local close = t.close
local grid = {F.num_frames:item(), F.height:item(), F.width:item()}
local scale = F.rope_interpolation_scale:totable()
local tr = ltx.transformer(cfg, w)

t.test("packing is the pipeline's: token (f*H + h)*W + w", function()
  t.eq(t.tensor_relerr(ltx.pack(F.latents), F.hidden_states), 0, "pack")
  t.eq(t.tensor_relerr(ltx.unpack(F.hidden_states, grid), F.latents), 0, "unpack")
end)

t.test("rotary table in float32 with the frame-rate scale", function()
  local cos, sin = tr.rope(grid, scale)
  close(cos:unsqueeze(1):expand(2, 60, 32), F.rope_cos, 1e-6, "rope_cos")
  close(sin:unsqueeze(1):expand(2, 60, 32), F.rope_sin, 1e-6, "rope_sin")
end)

t.test("adaLN-single time embedding and the caption projection", function()
  local temb, emb = tr.time(F.timestep:totable())
  close(temb:reshape(2, 192), F.temb, 1e-5, "temb")
  -- 1e-5: torch's float32 exp (SLEEF, within 1 ulp) may differ from ours by an ulp, which at
  -- t = 1000 moves a sinusoid's angle by 6e-5
  close(emb, F.embedded_timestep, 1e-5, "embedded_timestep")
  close(tr.caption(F.encoder_hidden_states), F.caption_projection_out, 1e-6, "caption")
end)

t.test("sample, and block 0 on its own", function()
  local mask = F.encoder_attention_mask:to("f32")
  local kv = tr.cross_kv(F.encoder_hidden_states, mask)
  local out = tr.forward(F.hidden_states, F.timestep, kv, {grid = grid, rope_scale = scale})
  close(out, F.sample, 1e-4, "sample")
  local temb = tr.time(F.timestep:totable())
  local cos, sin = tr.rope(grid, scale)
  local x = zoe.nn.linear(F.hidden_states, w["proj_in.weight"], w["proj_in.bias"])
  close(x, F.proj_in_out, 1e-6, "proj_in")
  close(tr.block(1, x, temb, nil, 0, kv, cos, sin), F.block0_out, 1e-5, "block0_out")
end)

t.test("padded caption rows do not matter (their keys are masked)", function()
  local mask = F.encoder_attention_mask:to("f32")
  local ctx = F.encoder_hidden_states:clone()
  ctx[1]:narrow(1, 8, 5):fill_(1000) -- row 0 has 7 real tokens
  t.ok(t.tensor_relerr(ctx, F.encoder_hidden_states) > 1, "the padding rows were changed")
  local out = tr.forward(F.hidden_states, F.timestep, tr.cross_kv(ctx, mask), {grid = grid, rope_scale = scale})
  close(out, F.sample, 1e-4, "sample with garbage in the padding")
end)

t.test("errors name the problem", function()
  t.raises(function() tr.forward(T.zeros(1, 60, 4), 1, {}, {grid = grid, rope_scale = scale}) end,
    "ltx.transformer: tokens have 4 channels, the model takes 8")
  t.raises(function() tr.forward(T.zeros(1, 59, 8), 1, {}, {grid = grid, rope_scale = scale}) end,
    "ltx.transformer: grid 3x4x5 does not hold 59 tokens")
end)

t.done()
