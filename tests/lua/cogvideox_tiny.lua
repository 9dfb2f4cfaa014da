-- A tiny CogVideoX-2B folder in the diffusers layout, made in a temporary folder from the
-- fixtures of ../shared/fixtures/cogvideox-tiny: its transformer_2b, vae and t5 (the T5's
-- embedding repeated to the tokenizer's 300 pieces), tokenizer/spiece.model, the 2B
-- scheduler config, and model_index.json naming the pipeline. make(dir, {i2v = true}) builds
-- the 1.5-5B-I2V one (transformer_1_5) instead.
local zoe = require "zoe"
local fx = require "cogvideox_fixtures"
local T = zoe.tensor

local M = {}

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function copy(from, to)
  local f = assert(io.open(from, "rb"))
  write(to, f:read("a"))
  f:close()
end

function M.make(dir, opts)
  opts = opts or {}
  local tr = opts.i2v and "transformer_1_5" or "transformer_2b"
  for _, sub in ipairs {"", "/transformer", "/text_encoder", "/vae", "/scheduler", "/tokenizer"} do
    os.execute(("mkdir -p '%s%s'"):format(dir, sub))
  end
  local root = fx.root
  write(dir .. "/model_index.json", zoe.json.encode {
    _class_name = opts.i2v and "CogVideoXImageToVideoPipeline" or "CogVideoXPipeline",
    transformer = {"diffusers", "CogVideoXTransformer3DModel"}, vae = {"diffusers", "AutoencoderKLCogVideoX"},
    text_encoder = {"transformers", "T5EncoderModel"}, tokenizer = {"transformers", "T5Tokenizer"},
    scheduler = {"diffusers", opts.i2v and "CogVideoXDPMScheduler" or "CogVideoXDDIMScheduler"},
  })
  copy(root .. tr .. "/config.json", dir .. "/transformer/config.json")
  copy(root .. tr .. "/weights.safetensors", dir .. "/transformer/diffusion_pytorch_model.safetensors")
  copy(root .. "vae/config.json", dir .. "/vae/config.json")
  copy(root .. "vae/weights.safetensors", dir .. "/vae/diffusion_pytorch_model.safetensors")
  copy(root .. "tokenizer/spiece.model", dir .. "/tokenizer/spiece.model")
  local cfg = fx.config("t5")
  cfg.vocab_size = 300
  write(dir .. "/text_encoder/config.json", zoe.json.encode(cfg))
  local w = zoe.load(root .. "t5/weights.safetensors")
  local ts = {}
  for _, name in ipairs(w:keys()) do ts[name] = w:get(name):contiguous() end
  local emb = ts["shared.weight"]
  ts["shared.weight"] = T.cat({emb, emb, emb}, 1)
  ts["encoder.embed_tokens.weight"] = ts["shared.weight"]
  zoe.save(dir .. "/text_encoder/model.safetensors", ts)
  local sched = fx.config("sampling")[opts.i2v and "dpm" or "ddim"]
  write(dir .. "/scheduler/scheduler_config.json", zoe.json.encode(sched))
  return dir
end

return M
