-- Euler ancestral (k-diffusion's sample_euler_ancestral): step down below the next level,
-- to sigma_down, then add fresh noise up to it (sigma_up); eta = 0 is plain Euler, 1 the
-- DDPM posterior. Written in the ve-equivalent levels s = sigma/alpha, so it is k-diffusion's
-- update for eps/v/x0 models and the same process for flow models (where alpha = 1 - sigma).
return {
  options = {eta = 1, s_noise = 1},
  run = function(r)
    local x, s = r.x, r.sigmas
    for i = 1, r.steps do
      local x0 = r.denoise(x, i)
      local sigma, sigma_next = s[i], s[i + 1]
      if sigma_next == 0 then
        x = x0
      else
        local a, a_next = r.alpha(sigma), r.alpha(sigma_next)
        local s_next = sigma_next / a_next
        -- ratio s_next/s, finite where s is not (flow at sigma 1, alpha 0)
        local ratio = sigma_next * a / (a_next * sigma)
        local eta = r.opt("eta")
        local s_up = math.min(s_next, eta * s_next * math.sqrt(math.max(0, 1 - ratio * ratio)))
        local s_down = math.sqrt(s_next * s_next - s_up * s_up)
        local eps = (x - x0 * a) / sigma -- the noise the model sees in x
        x = (x0 + eps * s_down) * a_next
        if s_up > 0 then x = x + r.noise(i) * (a_next * s_up * r.opt("s_noise")) end
      end
      r.yield(i, x, x0)
    end
    return x
  end,
}
