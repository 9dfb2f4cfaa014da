-- zoe.cache.calibration: what the step caches need to know about a model, measured once on
-- a few uncached runs and kept beside the model (DIR/cache_calibration.json):
--   teacache = {coefficients = {...}}  a degree-4 polynomial (highest power first) from the
--              relative L1 change of the time modulation to that of the blocks' output, fitted
--              by least squares over every pair of consecutive evaluations
--   magcache = {norms = {sigmas = {...}, cond = {...}, uncond = {...}}}  the residual's mean
--              per-token L2 norm at each step, averaged over the prompts
--
--   calibration.load(model)                  -> the file's tables over the family's published
--                                               ones (model.cache_defaults)
--   calibration.measure(model, prompts, opts) -> a calibration (opts: steps, seed, and any
--                                               text2video setting)
--   calibration.write(model, cal[, path])     -> the path written
local zoe = require "zoe"
local cache = require "zoe.cache"

local M = {}

M.FILE = "cache_calibration.json"

local function read_json(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local ok, v = pcall(zoe.json.decode, text)
  if not ok or type(v) ~= "table" then error(("%s: not a calibration (%s)"):format(path, tostring(v)), 0) end
  return v
end

function M.load(model)
  local cal = {}
  for k, v in pairs(model.cache_defaults or {}) do cal[k] = v end
  local file = model.dir and read_json(model.dir .. "/" .. M.FILE)
  if file then
    for k, v in pairs(file) do cal[k] = v end
  end
  return cal
end

-- Least squares polynomial of 'degree' through (xs, ys), highest power first. x is scaled to
-- [0, 1] for the normal equations, then the coefficients scaled back.
function M.fit_poly(xs, ys, degree)
  local n, m = #xs, degree + 1
  if n < m then error(("calibration: %d samples for a degree-%d polynomial"):format(n, degree), 2) end
  local scale = 0
  for _, x in ipairs(xs) do scale = math.max(scale, math.abs(x)) end
  if scale == 0 then scale = 1 end
  local A, b = {}, {}
  for i = 1, m do
    A[i], b[i] = {}, 0
    for j = 1, m do A[i][j] = 0 end
  end
  for k = 1, n do
    local u, p = xs[k] / scale, {}
    for j = 1, m do p[j] = u ^ (m - j) end
    for i = 1, m do
      b[i] = b[i] + p[i] * ys[k]
      for j = 1, m do A[i][j] = A[i][j] + p[i] * p[j] end
    end
  end
  for c = 1, m do -- Gaussian elimination with partial pivoting
    local best = c
    for r = c + 1, m do
      if math.abs(A[r][c]) > math.abs(A[best][c]) then best = r end
    end
    A[c], A[best], b[c], b[best] = A[best], A[c], b[best], b[c]
    if A[c][c] == 0 then error("calibration: the samples do not determine the polynomial", 2) end
    for r = c + 1, m do
      local f = A[r][c] / A[c][c]
      for j = c, m do A[r][j] = A[r][j] - f * A[c][j] end
      b[r] = b[r] - f * b[c]
    end
  end
  local a = {}
  for r = m, 1, -1 do
    local v = b[r]
    for j = r + 1, m do v = v - A[r][j] * a[j] end
    a[r] = v / A[r][r]
  end
  for j = 1, m do a[j] = a[j] / scale ^ (m - j) end
  return a
end

local function poly(c, x)
  local y = 0
  for _, v in ipairs(c) do y = y * x + v end
  return y
end

-- per-token L2 norm of tokens [1, L, D], averaged over the tokens
local function token_norm(t) return (t * t):sum(3):sqrt():mean():item() end

function M.measure(model, prompts, opts)
  opts = opts or {}
  if type(prompts) ~= "table" or #prompts == 0 then error("calibration: give a list of prompts", 2) end
  local xs, ys = {}, {}
  local norms, sigmas, counts = {}, {}, {}
  local recorder = {
    name = "calibrate", signal = "modulated",
    decide = function() return true end,
    computed = function(_, s)
      local st = s.state
      if st.signal then
        xs[#xs + 1] = cache.rel_l1(s.signal, st.signal)
        ys[#ys + 1] = cache.rel_l1(s.output, st.output)
      end
      st.signal, st.output = s.signal, s.output
      local e = s.evaluation
      norms[s.branch] = norms[s.branch] or {}
      counts[s.branch] = counts[s.branch] or {}
      norms[s.branch][e] = (norms[s.branch][e] or 0) + token_norm(s.residual)
      counts[s.branch][e] = (counts[s.branch][e] or 0) + 1
      sigmas[e] = s.sigma
    end,
  }
  local seeds = {}
  for i, p in ipairs(prompts) do
    local spec = {}
    for k, v in pairs(opts) do
      if k ~= "on_prompt" then spec[k] = v end
    end
    spec.model, spec.prompt, spec.cache = model, p, recorder
    spec.seed = (opts.seed or 1000) + i - 1
    seeds[i] = spec.seed
    spec.preview = false
    zoe.pipeline.text2video(spec)
    if opts.on_prompt then opts.on_prompt(i, #prompts) end
  end
  local coefficients = M.fit_poly(xs, ys, 4)
  local err = 0
  for k = 1, #xs do err = err + (poly(coefficients, xs[k]) - ys[k]) ^ 2 end
  local curves = {sigmas = sigmas}
  for branch, list in pairs(norms) do
    curves[branch] = {}
    for e, v in ipairs(list) do curves[branch][e] = v / counts[branch][e] end
  end
  local d = model.defaults
  return {
    model = model.name, weights_hash = model:hash(), made_by = "tools/calibrate_cache.lua",
    prompts = prompts, seeds = seeds, steps = opts.steps or d.steps, sampler = opts.sampler or d.sampler,
    teacache = {coefficients = coefficients, signal = "modulated", samples = #xs, rmse = math.sqrt(err / #xs)},
    magcache = {norms = curves},
  }
end

function M.write(model, cal, path)
  path = path or (model.dir .. "/" .. M.FILE)
  local tmp = path .. ".tmp"
  local f = assert(io.open(tmp, "wb"))
  f:write(zoe.json.encode(cal, {indent = true}), "\n")
  f:close()
  assert(os.rename(tmp, path))
  return path
end

return M
