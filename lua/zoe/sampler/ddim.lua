-- DDIM (Song et al. 2021), diffusers' DDIMScheduler.step written with alpha and sigma:
--   x_next = alpha_next*x0 + sqrt(sigma_next^2 - c^2)*eps + c*noise,
--   c = eta * sigma_next * sqrt(1 - (s_next/s)^2), s = sigma/alpha (diffusers' std_dev_t).
-- eta = 0 (the default) is deterministic and is the same update as euler; eta = 1 is the same
-- process as euler_ancestral. It keeps its own name because recipes ask for it.
return {
  options = {eta = 0},
  run = function(r)
    local x, s = r.x, r.sigmas
    for i = 1, r.steps do
      local x0 = r.denoise(x, i)
      local sigma, sigma_next = s[i], s[i + 1]
      local a, a_next = r.alpha(sigma), r.alpha(sigma_next)
      local eps = (x - x0 * a) / sigma
      local ratio = sigma_next * a / (a_next * sigma)
      local c = r.opt("eta") * sigma_next * math.sqrt(math.max(0, 1 - ratio * ratio))
      x = x0 * a_next + eps * math.sqrt(math.max(0, sigma_next * sigma_next - c * c))
      if c > 0 then x = x + r.noise(i) * c end
      r.yield(i, x, x0)
    end
    return x
  end,
}
