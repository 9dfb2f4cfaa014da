-- Heun (k-diffusion's sample_heun, Karras et al. 2022 Algorithm 1 without churn): an Euler
-- step, then the slope at its end, and the step again with the mean slope. Two model calls
-- per step, one on the last (to sigma 0, which is an Euler step).
return {
  options = {},
  run = function(r)
    local x, s = r.x, r.sigmas
    for i = 1, r.steps do
      local x0 = r.denoise(x, i)
      local d = (x - x0) / s[i]
      local dt = s[i + 1] - s[i]
      if s[i + 1] == 0 then
        x = x + d * dt
      else
        local x2 = x + d * dt
        local d2 = (x2 - r.denoise(x2, i + 1)) / s[i + 1]
        x = x + (d + d2) * (dt / 2)
      end
      r.yield(i, x, x0)
    end
    return x
  end,
}
