-- Euler (k-diffusion's sample_euler): one model call per step.
-- d = (x - x0)/sigma is dx/dsigma of the probability-flow ODE in both latent spaces: for ve
-- latents (x = x0 + sigma*n) and for flow latents (x = (1-sigma)*x0 + sigma*n, where d is the
-- velocity n - x0). The last step, to sigma 0, lands on x0.
return {
  options = {},
  run = function(r)
    local x, s = r.x, r.sigmas
    for i = 1, r.steps do
      local x0 = r.denoise(x, i)
      x = x + (x - x0) * ((s[i + 1] - s[i]) / s[i])
      r.yield(i, x, x0)
    end
    return x
  end,
}
