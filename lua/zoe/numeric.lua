-- zoe.numeric: scalar helpers the schedules and samplers share (plain Lua numbers, doubles).
local M = {}

-- exp(x) - 1 without the cancellation of the naive form near 0 (Kahan's trick);
-- expm1(-inf) = -1, as the solvers need at sigma 0 / sigma 1.
function M.expm1(x)
  if x == -math.huge then return -1 end
  if math.abs(x) < 1e-5 then return x + x * x / 2 + x * x * x / 6 end
  local u = math.exp(x)
  if u == math.huge then return u end
  if u == 1 then return x end
  local um1 = u - 1
  if um1 == -1 then return -1 end
  return um1 * x / math.log(u)
end

-- the nearest float32 value, as a double (schedules that PyTorch keeps in float32)
function M.f32(x)
  return (string.unpack("<f", string.pack("<f", x)))
end

-- numpy.linspace(a, b, n): a + i*step, the last value exactly b
function M.linspace(a, b, n)
  local out = {}
  if n == 1 then return {a} end
  local step = (b - a) / (n - 1)
  for i = 0, n - 1 do out[i + 1] = i * step + a end
  out[n] = b
  return out
end

-- Solves the small dense system A x = b (A a list of rows) by Gaussian elimination
-- with partial pivoting; used for UniPC's coefficients (at most 3x3).
function M.solve(A, b)
  local n = #b
  local m = {}
  for i = 1, n do
    m[i] = {}
    for j = 1, n do m[i][j] = A[i][j] end
    m[i][n + 1] = b[i]
  end
  for c = 1, n do
    local p = c
    for r = c + 1, n do
      if math.abs(m[r][c]) > math.abs(m[p][c]) then p = r end
    end
    m[c], m[p] = m[p], m[c]
    if m[c][c] == 0 then error("solve: singular matrix", 2) end
    for r = c + 1, n do
      local f = m[r][c] / m[c][c]
      for j = c, n + 1 do m[r][j] = m[r][j] - f * m[c][j] end
    end
  end
  local x = {}
  for r = n, 1, -1 do
    local s = m[r][n + 1]
    for j = r + 1, n do s = s - m[r][j] * x[j] end
    x[r] = s / m[r][r]
  end
  return x
end

return M
