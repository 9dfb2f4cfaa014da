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

t.test("a hook around the DiT's block loop runs the blocks in pieces and gives the same", function()
  local dit = model:dit()
  local kv = dit.cross_kv(P["dit.context"])
  local seen = {}
  local out = dit.forward({P["dit.x"]}, P["dit.t"], kv, {around_blocks = function(x, run, info)
    seen.blocks, seen.t = info.blocks, info.t:totable()[1]
    local first = run(x, 1, 1) -- a first-block cache compares this with the last step's
    return run(first, 2)
  end})[1]
  t.eq(seen.blocks, model.cfg.dit.num_layers, "the hook knows the block count")
  t.eq(seen.t, P["dit.t"]:totable()[1], "and the timestep")
  close(out, P["dit.out"], 1e-4, "blocks 1, then 2..n")
  -- a hook that skips the blocks (a step cache reusing the last residual) changes the output
  local skipped = dit.forward({P["dit.x"]}, P["dit.t"], kv, {around_blocks = function(x) return x end})[1]
  t.ok(t.tensor_relerr(skipped, P["dit.out"]) > 1e-2, "skipping the blocks is seen")
end)

t.test("first-frame conditioning: mask and encoded first frame", function()
  local z, f, h, w = table.unpack(P["i2v.y"]:shape())
  local extra, given = model:condition(P["i2v.frame"]:unsqueeze(2), {z, f, h, w})
  close(extra:narrow(1, 1, 4), P["i2v.mask"], 0, "mask")
  close(extra:narrow(1, 5, z), P["i2v.y"], 1e-4, "y")
  close(given, extra:narrow(1, 5, z):narrow(2, 1, 1), 0, "one given frame fixes the first latent frame")
end)

-- paired: the prompt's and the negative prompt's caches as one batch (as the pipeline
-- makes them), which a guided step then takes whole
local function sampling(prefix, sampler, integer, paired)
  local kv, kv0
  if paired then
    kv, kv0 = model:cross_kv_pair(P.context, P.context_null)
  else
    kv, kv0 = model:cross_kv(P.context), model:cross_kv(P.context_null)
  end
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
t.test("a whole UniPC sampling with guidance (Wan's integer timesteps)", function()
  sampling("unipc", "unipc", true, true)
end)

t.test("the caches of a prompt and its negative made as one batch are the caches made apart", function()
  local kc, ku = model:cross_kv_pair(P.context, P.context_null)
  local sc, su = model:cross_kv(P.context), model:cross_kv(P.context_null)
  t.eq(#kc, #sc, "one cache per block")
  for b = 1, #sc do
    close(kc[b][1], sc[b][1], 1e-6, "block " .. b .. " keys")
    close(ku[b][2], su[b][2], 1e-6, "block " .. b .. " values")
  end
  -- a guided step takes the batch as it is: what stays live after it is its result alone,
  -- where caches made apart are joined into a copy that the denoiser keeps for the run
  local kv_bytes = 0
  for b = 1, #sc do kv_bytes = kv_bytes + 4 * (sc[b][1]:numel() + sc[b][2]:numel() + su[b][1]:numel() + su[b][2]:numel()) end
  local n = P["sample.noise"]
  local xs = T.stack({n, n}, 1)
  local function growth(conds)
    local den = model:denoiser()
    collectgarbage()
    local before = zoe.mem().live
    local out = den(xs, 500, conds)
    collectgarbage()
    return zoe.mem().live - before, out
  end
  local apart, out_apart = growth({sc, su})
  local paired, out_paired = growth({kc, ku})
  close(out_paired, out_apart, 1e-6, "the same guided prediction")
  t.ok(apart - paired >= kv_bytes, ("the joined copy (%d bytes) is not made: %d bytes live after a step made apart, %d paired")
    :format(kv_bytes, apart, paired))
end)

t.test("one VAE decode, a latent frame at a time", function()
  local vae = model:vae()
  close(vae:decode(P["vae.z"], model.latent.mean, model.latent.std), P["vae.video"], 1e-4, "vae")
end)
-- A cancel lands inside whatever block op the compute thread runs; every op's error path
-- must let go of exactly what it holds (a double release there once corrupted the heap).
-- The cancels are spread over a forward (the clock only spreads them; nothing is timed).
t.test("a DiT forward canceled at many points frees what it held and leaves the next forward right", function()
  local dit = model:dit()
  local kv = dit.cross_kv(P["dit.context"])
  local x = T.randn({P["dit.x"]:size(1), 9, 16, 16}, {seed = 3})
  local want = dit.forward({x}, 500, kv)[1]
  collectgarbage()
  collectgarbage()
  local live = zoe.mem().live
  local t0 = zoe.uv.hrtime()
  dit.forward({x}, 500, kv)
  local ms = (zoe.uv.hrtime() - t0) / 1e6
  local canceled = 0
  for i = 1, 16 do
    local j = zoe.spawn(function() for _ = 1, 1000 do dit.forward({x}, 500, kv) end end)
    zoe.sleep(ms * i / 16)
    j:cancel()
    if not pcall(j.wait, j) then canceled = canceled + 1 end
  end
  t.eq(canceled, 16)
  collectgarbage()
  collectgarbage()
  t.eq(zoe.mem().live, live, "live C memory back where it was")
  t.eq((dit.forward({x}, 500, kv)[1] - want):abs():max():item(), 0, "the same bits after the cancels")
end)
t.done()
