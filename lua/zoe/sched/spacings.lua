-- The named schedules. Each is fn(steps, tbl, opts) -> sigmas (steps+1 values, the last 0)
-- and optionally the model timesteps; tbl is the model's noise table (zoe.sched.tables),
-- opts the caller's settings (sigma_min, sigma_max, rho, shift, ...).
local num = require "zoe.numeric"
local tables = require "zoe.sched.tables"
local beta_dist = require "zoe.sched.beta_dist"

local M = {}

local function round_half_even(x)
  local f = math.floor(x)
  local d = x - f
  if d > 0.5 or (d == 0.5 and f % 2 == 1) then return f + 1 end
  return f
end

local function range(tbl, opts)
  return opts.sigma_min or tbl.sigma_min, opts.sigma_max or tbl.sigma_max
end

-- Flow matching as Wan2.1 samples (fm_solvers*.py): u = linspace(sigma_max, 0, steps+1) without
-- its last value, sigma = shift(u), then 0. Sigmas are kept in float32 and the model gets the
-- integer timestep floor(1000*sigma) (taken before the float32 rounding), as Wan does;
-- integer_timesteps = false gives 1000*sigma. Wan's UniPC starts from sigma_max = 0.999 (in
-- float32: the top of its training table), its DPM++ from 1: the unipc sampler sets that default.
function M.flow(steps, tbl, opts)
  if tbl.space ~= "flow" then
    error("schedule 'flow' is for flow models (kind = \"flow\"); for eps/v/x0 models use "
      .. "karras, exponential, simple, normal, sgm_uniform or beta", 0)
  end
  local shift = opts.shift or 1
  local u = num.linspace(opts.sigma_max or 1, opts.sigma_min or 0, steps + 1)
  local sigmas, ts = {}, {}
  for i = 1, steps do
    local s = tables.shift(u[i], shift)
    ts[i] = opts.integer_timesteps == false and s * 1000 or math.floor(s * 1000)
    sigmas[i] = num.f32(s)
  end
  sigmas[steps + 1] = 0
  return sigmas, ts
end

-- calculate_shift of diffusers' Flux/LTX pipelines: mu on the line through
-- (base_seq_len, base_shift) and (max_seq_len, max_shift), extrapolated past either end.
function M.dynamic_mu(seq_len, opts)
  local b0, b1 = opts.base_seq_len or 256, opts.max_seq_len or 4096
  local s0, s1 = opts.base_shift or 0.5, opts.max_shift or 1.15
  local m = (s1 - s0) / (b1 - b0)
  return seq_len * m + (s0 - m * b0)
end

-- The token count a dynamic shift is taken from: seq_len, else the latent's positions
-- (every dim after the channels of x, noise or shape: F*H*W for a [C, F, H, W] video).
local function seq_len_of(opts)
  if opts.seq_len then return opts.seq_len end
  local x = opts.x or opts.noise
  local shape = x and x:shape() or opts.shape
  if not shape then
    error("schedule 'flow_dynamic' needs mu, seq_len, or the latent (x, noise or shape) to count its tokens", 0)
  end
  local n = 1
  for i = 2, #shape do n = n * shape[i] end
  return n
end

-- Flow matching with a resolution-dependent shift, as diffusers' FlowMatchEulerDiscreteScheduler
-- (use_dynamic_shifting, exponential time shift) is driven by the Flux and LTX-Video pipelines:
-- sigma = linspace(1, 1/steps, steps) in float32, sigma' = e^mu / (e^mu + 1/sigma - 1) with
-- mu = opts.mu or dynamic_mu(seq_len), then with shift_terminal the stretch that makes the last
-- sigma shift_terminal: sigma'' = 1 - (1 - sigma') / ((1 - sigma'_last) / (1 - shift_terminal)).
-- Every operation rounds to float32 where numpy does (the stretch's scale is a double rounded
-- once), and the model gets 1000*sigma in float32.
function M.flow_dynamic(steps, tbl, opts)
  if tbl.space ~= "flow" then error("schedule 'flow_dynamic' is for flow models (kind = \"flow\")", 0) end
  local f32 = num.f32
  local mu = opts.mu or M.dynamic_mu(seq_len_of(opts), opts)
  local emu = f32(math.exp(mu))
  local u = num.linspace(1, 1 / steps, steps)
  local sigmas = {}
  for i = 1, steps do
    local s = f32(u[i])
    sigmas[i] = f32(emu / f32(emu + f32(f32(1 / s) - 1)))
  end
  local terminal = opts.shift_terminal
  if terminal then
    local scale = f32(f32(1 - sigmas[steps]) / (1 - terminal))
    for i = 1, steps do sigmas[i] = f32(1 - f32(f32(1 - sigmas[i]) / scale)) end
  end
  local ts = {}
  for i = 1, steps do ts[i] = f32(sigmas[i] * 1000) end
  sigmas[steps + 1] = 0
  return sigmas, ts
end

-- Karras et al. 2022 (k-diffusion get_sigmas_karras): uniform in sigma^(1/rho)
function M.karras(steps, tbl, opts)
  local lo, hi = range(tbl, opts)
  local rho = opts.rho or 7
  local a, b = hi ^ (1 / rho), lo ^ (1 / rho)
  local ramp = num.linspace(0, 1, steps)
  local sigmas = {}
  for i = 1, steps do sigmas[i] = (a + ramp[i] * (b - a)) ^ rho end
  sigmas[steps + 1] = 0
  return sigmas
end

-- uniform in log sigma (k-diffusion get_sigmas_exponential)
function M.exponential(steps, tbl, opts)
  local lo, hi = range(tbl, opts)
  local l = num.linspace(math.log(hi), math.log(lo), steps)
  local sigmas = {}
  for i = 1, steps do sigmas[i] = math.exp(l[i]) end
  sigmas[steps + 1] = 0
  return sigmas
end

-- every (n/steps)-th level of the training table, from the top (ComfyUI's "simple")
function M.simple(steps, tbl)
  local n, ss = tbl.n, tbl.n / steps
  local sigmas = {}
  for x = 0, steps - 1 do sigmas[x + 1] = tbl.sigmas[n - math.floor(x * ss)] end
  sigmas[steps + 1] = 0
  return sigmas
end

-- uniform in training position between sigma_max and sigma_min, both included ("normal")
function M.normal(steps, tbl, opts)
  local lo, hi = range(tbl, opts)
  local p = num.linspace(tbl.position(hi), tbl.position(lo), steps)
  local sigmas = {}
  for i = 1, steps do sigmas[i] = tbl.sigma_at(p[i]) end
  sigmas[steps + 1] = 0
  return sigmas
end

-- uniform in training position, sigma_min left out (SGM / ComfyUI "sgm_uniform")
function M.sgm_uniform(steps, tbl, opts)
  local lo, hi = range(tbl, opts)
  local p = num.linspace(tbl.position(hi), tbl.position(lo), steps + 1)
  local sigmas = {}
  for i = 1, steps do sigmas[i] = tbl.sigma_at(p[i]) end
  sigmas[steps + 1] = 0
  return sigmas
end


-- Beta-distributed positions (Lee et al. 2024, ComfyUI "beta", beta_alpha = beta_beta = 0.6):
-- more steps at both ends. Repeated positions are dropped, so it may return fewer steps.
function M.beta(steps, tbl, opts)
  local a, b = opts.beta_alpha or 0.6, opts.beta_beta or 0.6
  local sigmas, last = {}, nil
  for i = 0, steps - 1 do
    local k = round_half_even(beta_dist.ppf(1 - i / steps, a, b) * (tbl.n - 1))
    if k ~= last then sigmas[#sigmas + 1] = tbl.sigmas[k + 1] end
    last = k
  end
  sigmas[#sigmas + 1] = 0
  return sigmas
end

-- diffusers' timestep_spacing = "trailing" (Lin et al. 2024, table 2), as its DDIM-style
-- schedulers step: timesteps round(n - i*n/steps) - 1 (numpy's arange and round), each step
-- landing on the level of t - n//steps (diffusers' prev_timestep): the next timestep only when
-- steps divides n, and sigma 0 once below 0. The landing levels come back as next_sigmas.
function M.trailing(steps, tbl)
  local n = tbl.n
  local step = -(n / steps)
  local sigmas, ts, next_sigmas = {}, {}, {}
  for i = 1, steps do
    local t = math.tointeger(round_half_even(n + (i - 1) * step)) - 1
    ts[i] = t
    sigmas[i] = tbl.sigmas[t + 1]
    local prev = t - n // steps
    next_sigmas[i] = prev >= 0 and tbl.sigmas[prev + 1] or 0
  end
  sigmas[steps + 1] = 0
  return sigmas, ts, {next_sigmas = next_sigmas}
end

return M
