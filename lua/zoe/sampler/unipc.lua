-- UniPC (Zhao et al. 2023): a multistep predictor (UniP) and, after every model call, a
-- corrector (UniC) that refines the previous step with the new x0 at no extra call. This is
-- diffusers' UniPCMultistepScheduler with predict_x0, solver_type "bh2", lower_order_final and
-- final sigma 0, written with alpha and sigma: for flow models it is Wan2.1's
-- FlowUniPCMultistepScheduler (its default sampler; with schedule "flow" it starts from Wan's
-- sigma_max 0.999), for eps/v/x0 models diffusers' UniPC.
-- Settings: order (1..3, default 2), corrector (default true).
local num = require "zoe.numeric"

-- UniPC's coefficients for a step of length h in lambda, with history ratios rks (the last 1):
-- h_phi_1 = e^-h - 1, B(h) = e^-h - 1 (bh2), the matrix R[k] = rks^(k-1), the vector b.
local function coefficients(h, rks)
  local hh = -h
  local h_phi_1 = num.expm1(hh)
  local h_phi_k = h_phi_1 / hh - 1
  local b_h = h_phi_1
  local R, b, factorial = {}, {}, 1
  for k = 1, #rks do
    R[k] = {}
    for j, rk in ipairs(rks) do R[k][j] = rk ^ (k - 1) end
    b[k] = h_phi_k * factorial / b_h
    factorial = factorial * (k + 1)
    h_phi_k = h_phi_k / hh - 1 / factorial
  end
  return h_phi_1, b_h, R, b
end

-- The history terms: for each earlier x0 m_k (newest first after m0), rk = (lambda_k -
-- lambda_0)/h and D_k = (m_k - m0)/rk. A history point at lambda = -inf (flow sigma 1) has
-- rk = -inf: its term vanishes, so it is dropped (the limit of the formulas).
local function history(ms, lambdas, lambda0, h, order)
  local rks, ds = {}, {}
  for k = 1, order - 1 do
    local rk = (lambdas[k] - lambda0) / h
    if rk == rk and math.abs(rk) ~= math.huge then
      rks[#rks + 1] = rk
      ds[#ds + 1] = (ms[k] - ms[0]) / rk
    end
  end
  rks[#rks + 1] = 1
  return rks, ds
end

local function weighted(ds, rhos)
  local acc
  for k, d in ipairs(ds) do
    acc = acc and acc + d * rhos[k] or d * rhos[k]
  end
  return acc
end

return {
  options = {order = 2, corrector = true},
  -- Wan's UniPC starts its flow schedule at the top of its training table, 0.999 in float32
  schedule = {flow = {sigma_max = num.f32(0.999)}},
  run = function(r)
    local x, s = r.x, r.sigmas
    local order_max = r.opt("order")
    if order_max < 1 or order_max > 3 or order_max % 1 ~= 0 then
      error(("unipc: order must be 1, 2 or 3, got %s"):format(tostring(order_max)), 0)
    end
    local lam = {}
    for i = 1, r.steps + 1 do lam[i] = r.lambda(s[i]) end
    local ms = {}          -- x0 predictions: ms[j] made at sigma s[j]
    local last_x, last_order
    local lower_order_nums = 0
    for i = 1, r.steps do
      local x0 = r.denoise(x, i)
      -- UniC: correct the previous step's result with this x0
      if last_x and r.opt("corrector") then
        local h = lam[i] - lam[i - 1]
        local prev = {[0] = ms[i - 1]}
        local lambdas = {}
        for k = 1, last_order - 1 do prev[k], lambdas[k] = ms[i - 1 - k], lam[i - 1 - k] end
        local rks, ds = history(prev, lambdas, lam[i - 1], h, last_order)
        local h_phi_1, b_h, R, b = coefficients(h, rks)
        local rhos = #rks == 1 and {0.5} or num.solve(R, b)
        local a_t = r.alpha(s[i])
        local corr = (x0 - ms[i - 1]) * rhos[#rhos]
        local hist = weighted(ds, rhos)
        if hist then corr = corr + hist end
        x = last_x * (s[i] / s[i - 1]) - ms[i - 1] * (a_t * h_phi_1) - corr * (a_t * b_h)
      end
      ms[i] = x0
      ms[i - order_max] = nil
      -- UniP: predict the next level; first steps warm up, the last is first order
      local order = math.min(order_max, r.steps - i + 1, lower_order_nums + 1)
      last_x, last_order = x, order
      if s[i + 1] == 0 then
        x = x0 -- h = inf: the predictor is x0 exactly
      else
        local h = lam[i + 1] - lam[i]
        local prev = {[0] = x0}
        local lambdas = {}
        for k = 1, order - 1 do prev[k], lambdas[k] = ms[i - k], lam[i - k] end
        local rks, ds = history(prev, lambdas, lam[i], h, order)
        local h_phi_1, b_h, R, b = coefficients(h, rks)
        local a_next = r.alpha(s[i + 1])
        x = x * (s[i + 1] / s[i]) - x0 * (a_next * h_phi_1)
        if #ds > 0 then
          local rhos
          if #rks == 2 then
            rhos = {0.5} -- diffusers' simplified order 2
          else
            local Rs, bs = {}, {}
            for k = 1, #rks - 1 do
              Rs[k] = {}
              for j = 1, #rks - 1 do Rs[k][j] = R[k][j] end
              bs[k] = b[k]
            end
            rhos = num.solve(Rs, bs)
          end
          x = x - weighted(ds, rhos) * (a_next * b_h)
        end
      end
      lower_order_nums = math.min(lower_order_nums + 1, order_max)
      r.yield(i, x, x0)
    end
    return x
  end,
}
