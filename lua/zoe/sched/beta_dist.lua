-- The inverse CDF of the Beta(a, b) distribution (scipy.stats.beta.ppf), for the "beta"
-- schedule: the regularized incomplete beta function by its continued fraction, inverted
-- by bisection (it is monotonic; 200 halvings reach double precision).
local M = {}

-- log Gamma(x) for x > 0 (Lanczos, g = 7, 9 terms: about 15 digits)
local LANCZOS = {
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
  -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
  1.5056327351493116e-7,
}
local function lgamma(x)
  if x < 0.5 then return math.log(math.pi / math.abs(math.sin(math.pi * x))) - lgamma(1 - x) end
  x = x - 1
  local s = LANCZOS[1]
  for i = 1, 8 do s = s + LANCZOS[i + 1] / (x + i) end
  local t = x + 7.5
  return 0.5 * math.log(2 * math.pi) + (x + 0.5) * math.log(t) - t + math.log(s)
end

-- continued fraction of I_x(a, b) (modified Lentz)
local function betacf(a, b, x)
  local tiny = 1e-300
  local qab, qap, qam = a + b, a + 1, a - 1
  local c, d = 1, 1 - qab * x / qap
  if math.abs(d) < tiny then d = tiny end
  d = 1 / d
  local h = d
  for m = 1, 300 do
    local m2 = 2 * m
    local aa = m * (b - m) * x / ((qam + m2) * (a + m2))
    d = 1 + aa * d; if math.abs(d) < tiny then d = tiny end
    c = 1 + aa / c; if math.abs(c) < tiny then c = tiny end
    d = 1 / d
    h = h * d * c
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
    d = 1 + aa * d; if math.abs(d) < tiny then d = tiny end
    c = 1 + aa / c; if math.abs(c) < tiny then c = tiny end
    d = 1 / d
    local del = d * c
    h = h * del
    if math.abs(del - 1) < 1e-16 then break end
  end
  return h
end

-- the regularized incomplete beta function I_x(a, b), the Beta(a, b) CDF
function M.cdf(x, a, b)
  if x <= 0 then return 0 end
  if x >= 1 then return 1 end
  local bt = math.exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * math.log(x) + b * math.log(1 - x))
  if x < (a + 1) / (a + b + 2) then return bt * betacf(a, b, x) / a end
  return 1 - bt * betacf(b, a, 1 - x) / b
end

function M.ppf(p, a, b)
  if p <= 0 then return 0 end
  if p >= 1 then return 1 end
  local lo, hi = 0, 1
  for _ = 1, 200 do
    local mid = (lo + hi) / 2
    if mid == lo or mid == hi then break end
    if M.cdf(mid, a, b) < p then lo = mid else hi = mid end
  end
  return (lo + hi) / 2
end

return M
