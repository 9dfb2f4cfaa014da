-- LCM (Luo et al. 2023; k-diffusion's sample_lcm): for consistency models. Each step takes
-- the model's x0 and noises it afresh to the next level: x = alpha*x0 + sigma*noise.
return {
  options = {},
  run = function(r)
    local x, s = r.x, r.sigmas
    for i = 1, r.steps do
      local x0 = r.denoise(x, i)
      if s[i + 1] > 0 then
        x = x0 * r.alpha(s[i + 1]) + r.noise(i) * s[i + 1]
      else
        x = x0
      end
      r.yield(i, x, x0)
    end
    return x
  end,
}
