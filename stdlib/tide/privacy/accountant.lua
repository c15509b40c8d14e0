-- stdlib/tide/privacy/accountant.lua: the RDP accountant of the sampled Gaussian mechanism
-- (Mironov, Talwar and Zhang 2019, "Renyi Differential Privacy of the Sampled Gaussian
-- Mechanism"): each DP-SGD step releases a sum of clipped gradients plus N(0, sigma^2 C^2) noise,
-- over a batch that holds each example with probability q. Its Renyi divergence of order alpha
-- is log(A_alpha) / (alpha - 1); T steps compose by adding. (epsilon, delta) comes from the
-- conversion of Balle et al. 2020 (Thm. 21), the one Opacus uses:
--   epsilon = min over alpha of rdp(alpha) + log((alpha - 1) / alpha) - (log delta + log alpha) / (alpha - 1)
local M = {}

local log, exp, sqrt, huge = math.log, math.exp, math.sqrt, math.huge

-- Opacus's default grid of orders: 1.1, 1.2, ..., 10.9, then 12, 13, ..., 63
local ORDERS = {}
for x = 1, 99 do ORDERS[#ORDERS + 1] = 1 + x / 10 end
for a = 12, 63 do ORDERS[#ORDERS + 1] = a end
M.orders = ORDERS

local function logadd(a, b)           -- log(e^a + e^b)
  if a == -huge then return b end
  if b == -huge then return a end
  local m = a > b and a or b
  return m + log(exp(a - m) + exp(b - m))
end

-- log erfc(x) for every x, without underflow: for x >= 0 the Chebyshev fit of Press et al.
-- (Numerical Recipes, erfcc: erfc(x) = t exp(-x^2 + P(t)), t = 1/(1 + x/2), relative error
-- < 1.2e-7), and erfc(x) = 2 - erfc(-x) below 0.
local function log_erfc(x)
  local z = math.abs(x)
  local t = 1 / (1 + 0.5 * z)
  local p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
            + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223
            + t * 0.17087277))))))))
  local l = log(t) - z * z + p
  if x >= 0 then return l end
  return log(2 - exp(l))
end

-- log A_alpha for an integer alpha: sum over k = 0..alpha of
-- C(alpha, k) (1-q)^(alpha-k) q^k exp((k^2 - k) / (2 sigma^2)), every term positive
local function log_a_int(q, sigma, alpha)
  local acc, lc = -huge, 0             -- lc: log C(alpha, k), updated term by term
  for k = 0, alpha do
    if k > 0 then lc = lc + log((alpha - k + 1) / k) end
    local term = lc + k * log(q) + (alpha - k) * log(1 - q) + (k * k - k) / (2 * sigma * sigma)
    acc = logadd(acc, term)
  end
  return acc
end

-- log A_alpha for a fractional alpha (Section 3.3 of the paper): the integral splits at
-- z0 = sigma^2 log(1/q - 1) + 1/2, where (1-q) mu0 = q mu1; each side is a binomial series
-- (signed: C(alpha, k) alternates past alpha) of Gaussian tail masses:
--   A0 = sum_k C(alpha,k) (1-q)^(alpha-k) q^k e^((k^2-k)/2s^2) erfc((k - z0)/(sqrt2 s)) / 2
--   A1 = sum_k C(alpha,k) q^(alpha-k) (1-q)^k e^((j^2-j)/2s^2) erfc((z0 - j)/(sqrt2 s)) / 2, j = alpha-k
local function log_a_frac(q, sigma, alpha)
  local pos, neg = -huge, -huge
  local z0 = sigma * sigma * log(1 / q - 1) + 0.5
  local s2, r2 = 2 * sigma * sigma, sqrt(2) * sigma
  local lc, sign = 0, 1                 -- log |C(alpha, k)| and its sign, term by term
  -- Past alpha the terms alternate in sign and shrink only like k^-(alpha+2) (the Gaussian
  -- factors cancel): stop once one is 1e-12 of the sum (the remainder of an alternating series
  -- is below its next term).
  for k = 0, 1000000 do
    if k > 0 then
      local f = (alpha - k + 1) / k
      if f < 0 then sign = -sign end
      lc = lc + log(math.abs(f))
    end
    local j = alpha - k
    local t0 = lc + k * log(q) + j * log(1 - q) + (k * k - k) / s2 + log_erfc((k - z0) / r2)
    local t1 = lc + j * log(q) + k * log(1 - q) + (j * j - j) / s2 + log_erfc((z0 - j) / r2)
    local t = logadd(t0, t1) - log(2)
    if sign > 0 then pos = logadd(pos, t) else neg = logadd(neg, t) end
    if k > alpha and t < pos - 28 then break end
  end
  return pos + log(1 - exp(neg - pos))
end

-- the RDP of one step at order alpha
function M.rdp_step(q, sigma, alpha)
  if q == 0 then return 0 end
  if sigma == 0 or alpha == huge then return huge end
  if q == 1 then return alpha / (2 * sigma * sigma) end
  local la = alpha == math.floor(alpha) and log_a_int(q, sigma, math.tointeger(alpha))
             or log_a_frac(q, sigma, alpha)
  return la / (alpha - 1)
end

-- the RDP of one step at every order (a list parallel to orders)
function M.rdp(sigma, q, orders)
  local out = {}
  for i, a in ipairs(orders or ORDERS) do out[i] = M.rdp_step(q, sigma, a) end
  return out
end

-- (epsilon, the order giving it) from total RDP values at each order
function M.to_epsilon(rdp, delta, orders)
  local best, at = huge, nil
  for i, a in ipairs(orders or ORDERS) do
    local e = rdp[i] + log((a - 1) / a) - (log(delta) + log(a)) / (a - 1)
    if e < best then best, at = e, a end
  end
  return math.max(best, 0), at
end

-- epsilon after `steps` steps, and the order that gives it
function M.epsilon(sigma, q, steps, delta, orders)
  if steps == 0 or q == 0 then return 0 end -- nothing released (the conversion alone is not tight)
  local r = M.rdp(sigma, q, orders)
  for i, v in ipairs(r) do r[i] = steps * v end
  return M.to_epsilon(r, delta, orders)
end

-- The smallest noise multiplier (to within `tol` in epsilon, as Opacus) whose epsilon after
-- steps = epochs / q is at most target: doubles an upper bound, then bisects.
function M.noise_multiplier(target, delta, q, epochs, tol)
  tol = tol or 0.01
  local steps = math.floor(epochs / q + 0.5)
  local lo, hi = 0, 10
  while M.epsilon(hi, q, steps, delta) > target do
    lo, hi = hi, 2 * hi
    if hi > 1e6 then return nil end
  end
  while true do
    local mid = (lo + hi) / 2
    local e = M.epsilon(mid, q, steps, delta)
    if e <= target then hi = mid else lo = mid end
    if e <= target and target - e < tol or hi - lo < 1e-9 then return hi end
  end
end

return M
