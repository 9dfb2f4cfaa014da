-- zoe-tiny in the runtime against the same model in PyTorch (tests/fixtures/
-- zoe_tiny_parity.safetensors, made by tools/train/dump_parity.py from the shipped
-- weights): tokens, text embeddings, one denoiser forward, the image-to-video
-- conditioning and one VAE decode within 1e-4; whole 20-step samplings within 1e-3.
local t = require "testlib"
local zoe = require "zoe"
local T = zoe.tensor

-- both ship with the repository: a failure to load them is a failure here, not a skip
local model = zoe.models.load("zoe-tiny")
local P = zoe.load("tests/fixtures/zoe_tiny_parity.safetensors")
local meta = P:metadata()

local relerr, close = t.tensor_relerr, t.close

t.test("the tokenizer gives the same ids and mask", function()
  local ids, mask = model:tokenizer():encode(meta.prompt, {length = model.text_len})
  t.eq(ids:totable(), P.ids[1]:totable(), "ids")
  t.eq(mask:totable(), P.mask[1]:totable(), "mask")
end)

t.test("text embeddings of the prompt and of the empty negative prompt", function()
  close(model:encode_text(meta.prompt), P.context, 1e-4, "context")
  close(model:encode_text(""), P.context_null, 1e-4, "context_null")
end)

t.test("one denoiser forward with the image-to-video channels", function()
  local dit = model:dit()
  close(dit.forward({P["dit.x"]}, P["dit.t"], dit.cross_kv(P["dit.context"]))[1], P["dit.out"], 1e-4, "dit")
end)

t.test("first-frame conditioning: mask and encoded first frame", function()
  local z, f, h, w = table.unpack(P["i2v.y"]:shape())
  local mask, y = model:condition(P["i2v.frame"]:unsqueeze(2), {z, f, h, w})
  close(mask, P["i2v.mask"], 0, "mask")
  close(y, P["i2v.y"], 1e-4, "y")
end)

local function sampling(prefix, sampler, integer)
  local kv, kv0 = model:cross_kv(P.context), model:cross_kv(P.context_null)
  local it, run = zoe.sampler.steps{model_batch = model:denoiser(), kind = "flow", sampler = sampler,
    schedule = "flow", steps = tonumber(meta.steps), shift = tonumber(meta.shift), cfg = tonumber(meta.cfg),
    integer_timesteps = integer, x = P["sample.noise"], cond = kv, uncond = kv0}
  for i, s in ipairs(P[prefix .. ".sigmas"]:totable()) do t.near(run.sigmas[i], s, 1e-6, "sigma " .. i) end
  local worst = 0
  for state in it do
    local err = relerr(state.x, P[prefix .. ".latents"][state.step])
    worst = math.max(worst, err)
    if err > 1e-3 then error(("step %d: relative error %.3g"):format(state.step, err)) end
  end
  print(("# %s, %s steps: worst step %.3g"):format(sampler, meta.steps, worst))
end

t.test("a whole Euler sampling with guidance, step by step", function() sampling("sample", "euler", false) end)
t.test("a whole UniPC sampling with guidance (Wan's integer timesteps)", function() sampling("unipc", "unipc", true) end)

t.test("one VAE decode, a latent frame at a time", function()
  local vae = model:vae()
  close(vae:decode(P["vae.z"], model.latent.mean, model.latent.std), P["vae.video"], 1e-4, "vae")
end)
t.done()
