-- Noise tables: the noise levels a model was trained on, and the timestep it is given at a
-- level. Schedules pick their sigmas from a table; the denoiser asks it for timesteps.
--   tbl.sigmas[k], k = 1..n, ascending: the level at training position k
--   tbl.position(sigma) -> k (continuous)      tbl.sigma_at(k) -> sigma (k continuous)
--   tbl.timestep(sigma) -> what the model is given at sigma
--   tbl.sigma_min, tbl.sigma_max, tbl.space ("ve": x = x0 + sigma*n, "flow": x = (1-sigma)*x0 + sigma*n)
local num = require "zoe.numeric"

local M = {}

-- the flow-matching shift (Wan, SD3): sigma' = shift*sigma / (1 + (shift-1)*sigma)
function M.shift(sigma, shift)
  return shift * sigma / (1 + (shift - 1) * sigma)
end

-- Flow models: position k is time u = k/n, its level shift(u); the model is given 1000*sigma.
function M.flow(opts)
  local shift, n = opts.shift or 1, opts.train_steps or 1000
  local sigmas = {}
  for k = 1, n do sigmas[k] = M.shift(k / n, shift) end
  return {
    space = "flow", n = n, shift = shift, sigmas = sigmas,
    sigma_min = sigmas[1], sigma_max = sigmas[n],
    sigma_at = function(k) -- diffusers' alphas_cumprod, as a list indexed by timestep + 1: betas from beta_start/end/schedule
-- (in float64, as diffusers builds them), their cumulative product, then CogVideoX's SNR shift
-- (snr_shift s: a -> a / (s + (1 - s) a), i.e. the SNR divided by s) and the zero-terminal-SNR
-- rescale of Lin et al. 2024, algorithm 1 (zero_snr: sqrt(a) moved and scaled so its last value is 0
-- and its first unchanged).
function M.alphas_cumprod(opts)
  local n = opts.train_steps or 1000
  local b = betas(opts, n)
  local acp, a = {}, 1
  local s = opts.snr_shift or 1
  for k = 1, n do
    a = a * (1 - b[k])
    acp[k] = s == 1 and a or a / (s + (1 - s) * a)
  end
  if opts.zero_snr then
    local first, last = math.sqrt(acp[1]), math.sqrt(acp[n])
    for k = 1, n do
      local r = (math.sqrt(acp[k]) - last) * (first / (first - last))
      acp[k] = r * r
    end
  end
  return acp
end

-- v-prediction models stepped in their own variance-preserving latent, x = alpha*x0 + sigma*noise
-- with alpha^2 + sigma^2 = 1 (CogVideoX): sigma = sqrt(1 - alphas_cumprod), which reaches 1 at the
-- last timestep under zero terminal SNR, where the "ve" view's sigma/alpha is infinite. Position k
-- is timestep k-1; between positions sigma is interpolated linearly.
function M.vp_latent(opts)
  local acp = M.alphas_cumprod(opts)
  local n = #acp
  local sigmas = {}
  for k = 1, n do sigmas[k] = math.sqrt(1 - acp[k]) end
  local function position(sigma)
    if sigma <= sigmas[1] then return 1 end
    if sigma >= sigmas[n] then return n end
    local lo, hi = 1, n
    while hi - lo > 1 do
      local mid = (lo + hi) // 2
      if sigmas[mid] <= sigma then lo = mid else hi = mid end
    end
    return lo + (sigma - sigmas[lo]) / (sigmas[hi] - sigmas[lo])
  end
  return {
    space = "vp", n = n, sigmas = sigmas, alphas_cumprod = acp, sigma_min = sigmas[1], sigma_max = sigmas[n],
    position = position,
    sigma_at = function(k)
      local lo = math.floor(k)
      if lo >= n then return sigmas[n] end
      return sigmas[lo] + (k - lo) * (sigmas[lo + 1] - sigmas[lo])
    end,
    timestep = function(sigma) return position(sigma) - 1 end,
  }
end

return M.shift(k / n, shift) end,
    position = function(sigma) return n * sigma / (shift - (shift - 1) * sigma) end,
    timestep = function(sigma) return sigma * 1000 end,
  }
end

local function betas(opts, n)
  local b0, b1 = opts.beta_start or 0.00085, opts.beta_end or 0.012
  local kind = opts.beta_schedule or "scaled_linear"
  if kind == "scaled_linear" then
    local r = num.linspace(math.sqrt(b0), math.sqrt(b1), n)
    for i = 1, n do r[i] = r[i] * r[i] end
    return r
  elseif kind == "linear" then
    return num.linspace(b0, b1, n)
  end
  error(("unknown beta_schedule '%s' (scaled_linear, linear)"):format(tostring(kind)), 3)
end

-- eps / v / x0 models trained on a discrete variance-preserving process (DDPM, SD):
-- alphas_cumprod from the betas, sigma = sqrt((1 - a)/a) in the k-diffusion (VE) convention.
-- Position k is timestep k-1; between positions, log sigma is interpolated (k-diffusion's
-- DiscreteSchedule.sigma_to_t / t_to_sigma).
function M.vp(opts)
  local n = opts.train_steps or 1000
  local b = betas(opts, n)
  local sigmas, logs, acp = {}, {}, 1
  for k = 1, n do
    acp = acp * (1 - b[k])
    sigmas[k] = math.sqrt((1 - acp) / acp)
    logs[k] = math.log(sigmas[k])
  end
  local function position(sigma)
    local ls = math.log(sigma)
    local lo, hi = 1, n -- largest k with logs[k] <= ls, clamped to [1, n-1]
    if ls < logs[1] then
      lo = 1
    else
      while hi - lo > 1 do
        local mid = (lo + hi) // 2
        if logs[mid] <= ls then lo = mid else hi = mid end
      end
      if logs[n] <= ls then lo = n end
      lo = math.min(lo, n - 1)
    end
    local w = (logs[lo] - ls) / (logs[lo] - logs[lo + 1])
    w = math.max(0, math.min(1, w))
    return (1 - w) * lo + w * (lo + 1)
  end
  return {
    space = "ve", n = n, sigmas = sigmas, sigma_min = sigmas[1], sigma_max = sigmas[n],
    position = position,
    sigma_at = function(k)
      local lo, hi = math.floor(k), math.ceil(k)
      local w = k - lo
      return math.exp((1 - w) * logs[lo] + w * logs[hi])
    end,
    timestep = function(sigma) return position(sigma) - 1 end,
  }
end

-- diffusers' alphas_cumprod, as a list indexed by timestep + 1: betas from beta_start/end/schedule
-- (in float64, as diffusers builds them), their cumulative product, then CogVideoX's SNR shift
-- (snr_shift s: a -> a / (s + (1 - s) a), i.e. the SNR divided by s) and the zero-terminal-SNR
-- rescale of Lin et al. 2024, algorithm 1 (zero_snr: sqrt(a) moved and scaled so its last value is 0
-- and its first unchanged).
function M.alphas_cumprod(opts)
  local n = opts.train_steps or 1000
  local b = betas(opts, n)
  local acp, a = {}, 1
  local s = opts.snr_shift or 1
  for k = 1, n do
    a = a * (1 - b[k])
    acp[k] = s == 1 and a or a / (s + (1 - s) * a)
  end
  if opts.zero_snr then
    local first, last = math.sqrt(acp[1]), math.sqrt(acp[n])
    for k = 1, n do
      local r = (math.sqrt(acp[k]) - last) * (first / (first - last))
      acp[k] = r * r
    end
  end
  return acp
end

-- v-prediction models stepped in their own variance-preserving latent, x = alpha*x0 + sigma*noise
-- with alpha^2 + sigma^2 = 1 (CogVideoX): sigma = sqrt(1 - alphas_cumprod), which reaches 1 at the
-- last timestep under zero terminal SNR, where the "ve" view's sigma/alpha is infinite. Position k
-- is timestep k-1; between positions sigma is interpolated linearly.
function M.vp_latent(opts)
  local acp = M.alphas_cumprod(opts)
  local n = #acp
  local sigmas = {}
  for k = 1, n do sigmas[k] = math.sqrt(1 - acp[k]) end
  local function position(sigma)
    if sigma <= sigmas[1] then return 1 end
    if sigma >= sigmas[n] then return n end
    local lo, hi = 1, n
    while hi - lo > 1 do
      local mid = (lo + hi) // 2
      if sigmas[mid] <= sigma then lo = mid else hi = mid end
    end
    return lo + (sigma - sigmas[lo]) / (sigmas[hi] - sigmas[lo])
  end
  return {
    space = "vp", n = n, sigmas = sigmas, alphas_cumprod = acp, sigma_min = sigmas[1], sigma_max = sigmas[n],
    position = position,
    sigma_at = function(k)
      local lo = math.floor(k)
      if lo >= n then return sigmas[n] end
      return sigmas[lo] + (k - lo) * (sigmas[lo + 1] - sigmas[lo])
    end,
    timestep = function(sigma) return position(sigma) - 1 end,
  }
end

return M
