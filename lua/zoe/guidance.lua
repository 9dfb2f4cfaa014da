-- zoe.guidance: classifier-free guidance (Ho & Salimans 2022) with a negative prompt, and
-- guidance rescale (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps are
-- Flawed", eq. 15-16). It works on the model's own prediction (v, eps, ...), as Wan and
-- diffusers do: pred = uncond + cfg*(cond - uncond).
--
-- The model is called in one of two forms:
--   model(x, t, cond, info) -> prediction shaped like x         (one context per call)
--   model_batch(xs, t, conds, info) -> predictions [#conds, ...] (xs [#conds, ...]: x stacked
--                                       once per context: cond and uncond in one forward)
-- info = {sigma =, step =} for models that want them. Given model_batch, guidance makes one
-- call per step; given only model, two.
local T = require("zoe").tensor

local M = {}

-- the guidance scale at a step: a number or fn(step, sigma, timestep) -> number
function M.scale(cfg, step, sigma, timestep)
  if cfg == nil then return 1 end
  if type(cfg) == "function" then cfg = cfg(step, sigma, timestep) end
  if type(cfg) ~= "number" then
    error(("cfg must be a number or fn(step, sigma, timestep) -> number, got %s"):format(type(cfg)), 3)
  end
  return cfg
end

-- CogVideoX's dynamic guidance (pipeline_cogvideox.py, use_dynamic_cfg): at timestep t of a run of
-- 'steps' steps, 1 + scale*(1 - cos(pi*((steps - t)/steps)^5))/2. t is the timestep value (999,
-- 979, ...), not the step index, exactly as the reference writes it; a cfg function for any run.
function M.dynamic(scale, steps)
  return function(_, _, t)
    return 1 + scale * ((1 - math.cos(math.pi * ((steps - t) / steps) ^ 5.0)) / 2)
  end
end

local function std(x) return math.sqrt(x:var():item()) end

-- Lin et al.: scale the guided prediction back to the std of the cond one, blend by phi.
-- The std is taken over the whole latent (one sample).
function M.rescale(guided, cond, phi)
  if not phi or phi == 0 then return guided end
  local s = std(guided)
  if s == 0 then return guided end
  local rescaled = guided * (std(cond) / s)
  return rescaled * phi + guided * (1 - phi)
end

-- Predictions for cond (and uncond) at x; the model form is chosen by what settings has.
-- (n is 1 or 2: cond may be nil, so #conds cannot tell)
local function predict(settings, x, t, n, conds, info)
  if settings.model_batch then
    local xs = n == 1 and x:unsqueeze(1) or T.stack({x, x}, 1)
    local out = settings.model_batch(xs, t, conds, info)
    local res = {}
    for i = 1, n do res[i] = out:select(1, i) end
    return res
  end
  local res = {}
  for i = 1, n do res[i] = settings.model(x, t, conds[i], info) end
  return res
end

-- fn(x, t, info) -> the guided prediction. Reads settings.cfg and settings.cfg_rescale at every
-- call, so a recipe may change them between steps; settings.on_cfg(w), when given, hears the
-- scale each call used (the pipeline records them, so a replay guides the same).
function M.predictor(settings)
  if not settings.model and not settings.model_batch then
    error("no model: give model = fn(x, t, cond, info) or model_batch = fn(xs, t, conds, info)", 3)
  end
  return function(x, t, info)
    local w = M.scale(settings.cfg, info.step, info.sigma, t)
    if settings.on_cfg then settings.on_cfg(w) end
    if w == 1 then return predict(settings, x, t, 1, {settings.cond}, info)[1] end
    if settings.uncond == nil then
      error(("cfg = %g needs uncond (the negative prompt's context); give uncond or cfg = 1"):format(w), 0)
    end
    local p = predict(settings, x, t, 2, {settings.cond, settings.uncond}, info)
    local c, u = p[1], p[2]
    local guided = u + (c - u) * w
    return M.rescale(guided, c, settings.cfg_rescale)
  end
end

return M
