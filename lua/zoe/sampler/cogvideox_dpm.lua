-- CogVideoX's DPM-Solver++(2M) SDE (diffusers' CogVideoXDPMScheduler.step, as the pipeline calls
-- it), with lambda = log(alpha/sigma) and h = lambda' - lambda toward the level it lands on:
--   x' = (sigma'/sigma) e^-h x + alpha' (1 - e^-2h) d + sigma' sqrt(1 - e^-2h) noise
-- d = x0 on the first step and on a step that lands on sigma 0 (there x' = x0); otherwise
-- d = (1 + 1/(2r)) x0 - 1/(2r) x0_prev with r = h_prev/h, where h_prev = lambda - lambda_prev is
-- measured from the previous step's own level (the reference's timestep_back), not where it landed.
-- Noise: the reference draws once on those single steps and twice on the others, the first of the
-- two thrown away; so does this (each draw is r.noise(i), replayable with step_noise).
local num = require "zoe.numeric"

return {
  options = {},
  run = function(r)
    local x, x0_prev = r.x, nil
    for i = 1, r.steps do
      local x0 = r.denoise(x, i)
      local sigma, sigma_next = r.sigmas[i], r.sigma_next(i)
      local lam = r.lambda(sigma)
      local h = r.lambda(sigma_next) - lam
      local m1 = sigma_next / sigma * math.exp(-h)
      local m2 = -num.expm1(-2 * h) * r.alpha(sigma_next)
      local mn = sigma_next * math.sqrt(-num.expm1(-2 * h))
      local noise = r.noise(i)
      local d = x0
      if x0_prev and sigma_next > 0 then
        local ratio = (lam - r.lambda(r.sigmas[i - 1])) / h
        d = x0 * (1 + 1 / (2 * ratio)) - x0_prev * (1 / (2 * ratio))
        noise = r.noise(i)
      end
      x = x * m1 + d * m2 + noise * mn
      x0_prev = x0
      r.yield(i, x, x0)
    end
    return x
  end,
}
