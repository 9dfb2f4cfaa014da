-- DPM-Solver++(2M) (Lu et al. 2022): multistep, second order, data prediction, in
-- lambda = log(alpha/sigma). For eps/v/x0 models (alpha = 1) this is k-diffusion's
-- sample_dpmpp_2m; for flow models (alpha = 1 - sigma) it is Wan2.1's
-- FlowDPMSolverMultistepScheduler (solver_order 2, midpoint, lower_order_final, final sigma 0):
--   x_next = (sigma_next/sigma)*x + alpha_next*(1 - e^-h)*(x0 + (x0 - x0_prev)/(2r)),
--   h = lambda_next - lambda, r = h_prev/h; the first step is first order, the last lands on x0.
-- Wan starts at sigma 1 (alpha 0, lambda -inf): h = inf there, and the next step's r = inf
-- makes it first order too, as in Wan.
local num = require "zoe.numeric"

return {
  options = {},
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
        local d = x0
        if x0_prev then d = x0 + (x0 - x0_prev) * (0.5 / (h_prev / h)) end
        x = x * (sigma_next / sigma) + d * (-r.alpha(sigma_next) * num.expm1(-h))
      end
      x0_prev, h_prev = x0, h
      r.yield(i, x, x0)
    end
    return x
  end,
}
