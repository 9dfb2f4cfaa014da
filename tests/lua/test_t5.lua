-- The generic T5 encoder (lua/zoe/arch/t5.lua) as T5 v1.1: transformers' T5EncoderModel
-- under its own names, one relative position table (the first layer's) shared by every
-- layer, against ../shared/fixtures/cogvideox-tiny/t5 (CogVideoX's text encoder in a tiny
-- configuration). umT5 (a table per layer, Wan's names and Hugging Face's) is checked in
-- test_wan.lua and test_wan_files.lua. 1e-4 relative error.
local t = require "testlib"
local zoe = require "zoe"
local t5 = require "zoe.arch.t5"

local root = "../shared/fixtures/cogvideox-tiny/t5/"
local fh = io.open(root .. "config.json")
if not fh then
  t.skip("T5 v1.1", "../shared/fixtures/cogvideox-tiny is absent")
  t.done()
end
local hf = zoe.json.decode(fh:read("a"))
fh:close()
local close = t.close

t.test("a transformers T5Config becomes the encoder's config", function()
  local cfg = t5.config_from_hf(hf)
  t.eq({cfg.num_heads, cfg.num_layers, cfg.dim, cfg.dim_attn, cfg.dim_ffn, cfg.num_buckets, cfg.max_distance},
    {4, 2, 32, 32, 64, 32, 128})
  t.eq(cfg.shared_pos, true, "T5 shares the first layer's table")
  t.eq(t5.config_from_hf({model_type = "umt5", num_heads = 1, d_kv = 1}).shared_pos, false, "umT5 has one per layer")
end)

t.test("T5 v1.1 with and without a padding mask, short and past the 128-token reach", function()
  local w, io_ = zoe.load(root .. "weights.safetensors"), zoe.load(root .. "io.safetensors")
  local enc = t5.encoder(t5.config_from_hf(hf), w, {layout = "hf"})
  close(enc(io_.ids), io_.out, 1e-4, "no mask (as CogVideoX encodes)")
  close(enc(io_.ids, io_.mask), io_.out_masked, 1e-4, "masked")
  close(enc(io_.ids_long), io_.out_long, 1e-4, "150 tokens")
  close(enc(io_.ids_long, io_.mask_long), io_.out_masked_long, 1e-4, "150 tokens, masked")
end)

t.test("a missing weight or an unknown layout is named", function()
  local cfg = t5.config_from_hf(hf)
  t.raises(function() t5.encoder(cfg, {}, {layout = "hf"}) end, "t5.encoder: the weights have no 'encoder.embed_tokens.weight'")
  t.raises(function() t5.encoder(cfg, {}, {layout = "mt5"}) end, "t5.encoder: unknown layout 'mt5' (wan, hf)")
end)
t.done()
