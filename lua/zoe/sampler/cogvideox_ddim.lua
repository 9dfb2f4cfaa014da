-- CogVideoX's DDIM (diffusers' CogVideoXDDIMScheduler.step): deterministic, with its coefficients
-- written on the levels alpha, sigma of the step and alpha', sigma' of the level it lands on:
--   x' = a*x + b*x0,  a = sigma'/sigma,  b = alpha' - alpha*a
-- On a "vp_v" model with the trailing schedule (CogVideoX-2B's: snr_shift 3, zero_snr) this is the
-- reference step for step; the level it lands on is r.sigma_next(i) (t - n//steps), not always the
-- next step's. On other kinds it is DDIM with eta 0 in that kind's latent.
return {
  options = {},
  run = function(r)
    local x = r.x
    for i = 1, r.steps do
      local x0 = r.denoise(x, i)
      local sigma, sigma_next = r.sigmas[i], r.sigma_next(i)
      local a = sigma_next / sigma
      local b = r.alpha(sigma_next) - r.alpha(sigma) * a
      x = x * a + x0 * b
      r.yield(i, x, x0)
    end
    return x
  end,
}
