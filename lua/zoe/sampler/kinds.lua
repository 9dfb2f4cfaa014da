-- What a model predicts, and how the samplers see it. Every sampler works with a denoiser
-- D(x, sigma) -> x0 (k-diffusion's view); a kind turns the model's own prediction into x0.
--
-- Three latent spaces:
--   "flow" (kind flow):    x = (1 - sigma)*x0 + sigma*noise; the model predicts v = noise - x0.
--   "ve"   (eps, v, x0):   x = x0 + sigma*noise (k-diffusion's convention for DDPM models); the
--                          model is given x / sqrt(1 + sigma^2), its own variance-preserving latent.
--   "vp"   (vp_v):         that variance-preserving latent itself (see vp_v below).
-- alpha(sigma) is the weight of x0 in x: 1 - sigma for flow, 1 for ve, sqrt(1 - sigma^2) for vp. Samplers written with
-- alpha and sigma serve both spaces.
local M = {}

M.flow = {
  space = "flow",
  alpha = function(sigma) return 1 - sigma end,
  input_scale = function() return 1 end,
  to_x0 = function(x, v, sigma) return x - v * sigma end,
  -- the starting latent from unit noise: pure noise (Wan starts at sigma 0.999 from it unscaled)
  start = function(noise) return noise end,
}

local function ve_scale(sigma) return 1 / math.sqrt(1 + sigma * sigma) end
local function ve_start(noise, sigma_max) return noise * math.sqrt(1 + sigma_max * sigma_max) end
local function one() return 1 end

M.eps = {
  space = "ve", alpha = one, input_scale = ve_scale, start = ve_start,
  to_x0 = function(x, eps, sigma) return x - eps * sigma end,
}

-- v-prediction (Salimans & Ho): x0 = c_skip*x + c_out*v, as k-diffusion's VDenoiser
M.v = {
  space = "ve", alpha = one, input_scale = ve_scale, start = ve_start,
  to_x0 = function(x, v, sigma)
    local s2 = sigma * sigma
    return x * (1 / (s2 + 1)) - v * (sigma / math.sqrt(s2 + 1))
  end,
}

M.x0 = {
  space = "ve", alpha = one, input_scale = ve_scale, start = ve_start,
  to_x0 = function(_, x0) return x0 end,
}

-- v-prediction stepped in the model's own variance-preserving latent, x = alpha*x0 + sigma*noise
-- with alpha = sqrt(1 - sigma^2) (sigma = sqrt(1 - alphas_cumprod)), as diffusers' CogVideoX
-- schedulers step it: under zero terminal SNR the first level is sigma = 1, pure noise, which the
-- "ve" view (sigma/alpha) cannot hold. x0 = alpha*x - sigma*v.
local function vp_alpha(sigma) return math.sqrt(math.max(0, 1 - sigma * sigma)) end
M.vp_v = {
  space = "vp", alpha = vp_alpha, input_scale = one,
  to_x0 = function(x, v, sigma) return x * vp_alpha(sigma) - v * sigma end,
  start = function(noise) return noise end,
}

M.names = {"flow", "eps", "v", "x0", "vp_v"}

function M.get(name)
  local k = M[name or "flow"]
  if type(k) ~= "table" or not k.to_x0 then
    error(("unknown model kind '%s' (flow, eps, v, x0, vp_v)"):format(tostring(name)), 3)
  end
  return k
end

return M
