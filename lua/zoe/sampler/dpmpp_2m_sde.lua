-- DPM-Solver++(2M) SDE (k-diffusion's sample_dpmpp_2m_sde, midpoint; diffusers' sde-dpmsolver++):
-- like dpmpp_2m with noise added back each step. With eta_h = eta*h:
--   x_next = (sigma_next/sigma)*e^-eta_h*x + alpha_next*(1 - e^(-h-eta_h))*(x0 + (x0 - x0_prev)/(2r))
--            + sigma_next*sqrt(1 - e^(-2*eta_h))*s_noise*noise
-- Noise comes from the run's seeded generator (k-diffusion uses a Brownian tree; any Gaussian
-- draws give the same process).
local num = require "zoe.numeric"

return {
  options = {eta = 1, s_noise = 1},
  run = function(r)
    local x, s = r.x, r.sigmas
    local x0_prev, h_prev
    for i = 1, r.steps do
      local x0 = r.denoise(x, i)
      local sigma, sigma_next = s[i], s[i + 1]
      local h = r.lambda(sigma_next) - r.lambda(sigma)
      if sigma_next == 0 then
        x = x0
      else
        local eta = r.opt("eta")
        local eta_h = eta * h
        local w = -r.alpha(sigma_next) * num.expm1(-h - eta_h)
        local d = x0
        if x0_prev then d = x0 + (x0 - x0_prev) * (0.5 / (h_prev / h)) end
        x = x * (sigma_next / sigma * math.exp(-eta_h)) + d * w
        if eta > 0 then
          x = x + r.noise(i) * (sigma_next * math.sqrt(-num.expm1(-2 * eta_h)) * r.opt("s_noise"))
        end
      end
      x0_prev, h_prev = x0, h
      r.yield(i, x, x0)
    end
    return x
  end,
}
