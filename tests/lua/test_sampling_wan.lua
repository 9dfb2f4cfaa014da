-- Wan2.1's own solvers through the ordinary sampler interface (sampler "unipc" / "dpmpp_2m",
-- schedule "flow", shift) against ../shared/fixtures/wan2.1-tiny/sampling/toy_sampling.safetensors,
-- made by the official FlowUniPCMultistepScheduler / FlowDPMSolverMultistepScheduler on the toy
-- model v = 0.5*x + (t/1000)*toy_c: timesteps exactly, sigmas and every step's latent within 1e-5.
local t = require "testlib"
local zoe = require "zoe"

local PATH = "../shared/fixtures/wan2.1-tiny/sampling/toy_sampling.safetensors"

local function open_fixture()
  local f = io.open(PATH, "rb")
  if not f then return nil, PATH .. " is absent (../shared is not beside the repository)" end
  f:close()
  return zoe.load(PATH)
end

local F, why = open_fixture()
if not F then
  t.skip("Wan2.1 toy sampling fixture", why)
  t.done()
end

local function get(name) return assert(F[name], "fixture has no " .. name) end
local function flat(x) return x:reshape(x:numel()):totable() end

local noise, c = get("noise"), get("toy_c")
local function toy(x, tt) return x * 0.5 + c * (tt / 1000) end

for _, run in ipairs{{"unipc", 6, 5}, {"unipc", 20, 3}, {"dpmpp", 6, 5}, {"dpmpp", 20, 3}} do
  local key = ("%s_%d_%d"):format(run[1], run[2], run[3])
  local sampler = run[1] == "unipc" and "unipc" or "dpmpp_2m"
  t.test(("%s: sampler %s, schedule flow, %d steps, shift %d"):format(key, sampler, run[2], run[3]), function()
    local it, r = zoe.sampler.steps{model = toy, kind = "flow", sampler = sampler, schedule = "flow",
      steps = run[2], shift = run[3], x = noise}
    t.eq(r.timesteps, flat(get(key .. ".timesteps")), "timesteps")
    local sig = flat(get(key .. ".sigmas"))
    for i = 1, #sig do t.near(r.sigmas[i], sig[i], 1e-7, "sigma " .. i) end
    local lat = get(key .. ".latents")
    local n = 0
    for state in it do
      n = n + 1
      local err = t.relerr(flat(state.x), flat(lat:select(1, state.step)))
      if err > 1e-5 then error(("step %d: relative error %.3g"):format(state.step, err), 0) end
    end
    t.eq(n, run[2], "steps")
  end)
end

t.done()
