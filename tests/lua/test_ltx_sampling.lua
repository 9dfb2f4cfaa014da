-- LTX-Video's schedule and sampler through the ordinary interface (schedule "flow_dynamic",
-- sampler "euler") against ../shared/fixtures/ltx-tiny/sampling: diffusers'
-- FlowMatchEulerDiscreteScheduler with LTX's released config (dynamic shift from the token
-- count, terminal stretch to 0.1) on the toy model v = 0.5*x + (t/1000)*c. mu, sigmas and
-- timesteps within float32 rounding, every step's latent within 1e-5.
local t = require "testlib"
local zoe = require "zoe"

local root = "../shared/fixtures/ltx-tiny/sampling/"
local fh = io.open(root .. "config.json")
if not fh then
  t.skip("LTX-Video sampling", "../shared/fixtures/ltx-tiny is absent")
  t.done()
end
local config = zoe.json.decode(fh:read("a"))
fh:close()
local F = zoe.load(root .. "io.safetensors")
local sc = config.scheduler
-- the released scheduler config as schedule settings
local LTX = {base_shift = sc.base_shift, max_shift = sc.max_shift, base_seq_len = sc.base_image_seq_len,
             max_seq_len = sc.max_image_seq_len, shift_terminal = sc.shift_terminal}

local function flat(x) return x:reshape(x:numel()):totable() end
local noise, c = F["toy.noise"], F["toy.c"]
local function toy(x, tt) return x * 0.5 + c * (tt / 1000) end

t.test("calculate_shift: mu from the token count, extrapolated past max_seq_len", function()
  for run, spec in pairs(config.toy_runs) do
    t.near(require("zoe.sched.spacings").dynamic_mu(spec.video_sequence_length, LTX),
      F[run .. ".mu"]:item(), 1e-15, run .. " mu")
  end
end)

for run, spec in pairs(config.toy_runs) do
  t.test(("%s: %d steps at %d tokens, step by step"):format(run, spec.num_inference_steps, spec.video_sequence_length), function()
    local settings = {model = toy, kind = "flow", sampler = "euler", schedule = "flow_dynamic",
                      steps = spec.num_inference_steps, seq_len = spec.video_sequence_length, x = noise}
    for k, v in pairs(LTX) do settings[k] = v end
    local it, r = zoe.sampler.steps(settings)
    local sig, ts = flat(F[run .. ".sigmas"]), flat(F[run .. ".timesteps"])
    t.eq(#r.sigmas, #sig, "sigma count")
    for i = 1, #sig do t.near(r.sigmas[i], sig[i], 0, "sigma " .. i) end
    for i = 1, #ts do t.near(r.timesteps[i], ts[i], 0, "timestep " .. i) end
    t.near(r.sigmas[#sig - 1], 0.1, 1e-6, "the terminal stretch ends at 0.1")
    local lat, n, worst = F[run .. ".latents"], 0, 0
    for state in it do
      n = n + 1
      local err = t.relerr(flat(state.x), flat(lat:select(1, state.step)))
      worst = math.max(worst, err)
      if err > 1e-5 then error(("step %d: relative error %.3g"):format(state.step, err), 0) end
    end
    t.eq(n, spec.num_inference_steps, "steps")
    print(("# %s: worst step relative error %.3g"):format(run, worst))
  end)
end

t.test("without seq_len the tokens are counted from the latent; without shift_terminal no stretch", function()
  local s = zoe.sched.make{kind = "flow", schedule = "flow_dynamic", steps = 4, shape = {128, 21, 16, 22}}
  local mu = require("zoe.sched.spacings").dynamic_mu(7392, {})
  t.near(s.sigmas[1], 1, 0, "sigma 1 stays 1")
  local u = 1 / 4 -- the last linspace value, shifted by diffusers' default line (0.5 .. 1.15)
  t.near(s.sigmas[4], math.exp(mu) / (math.exp(mu) + 1 / u - 1), 1e-6, "last sigma")
  t.raises(function() zoe.sched.make{kind = "flow", schedule = "flow_dynamic", steps = 4} end,
    "schedule 'flow_dynamic' needs mu, seq_len, or the latent")
  t.raises(function() zoe.sched.make{kind = "eps", schedule = "flow_dynamic", steps = 4, seq_len = 1} end,
    "is for flow models")
end)

t.done()
