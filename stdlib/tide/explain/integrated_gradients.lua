-- stdlib/tide/explain/integrated_gradients.lua: Integrated Gradients (Sundararajan et al.
-- 2017): (x - x') * integral over a in [0, 1] of d f(x' + a (x - x')) / dx, by a quadrature
-- rule over `steps` points, all steps of the batch in one forward and backward (or chunks of
-- batch_size rows). Completeness: the attributions sum to f(x) - f(x'); delta is the error.
local tide = require "tide"
local C = require "tide.explain.common"

local KNOWN = {baseline = true, steps = true, method = true, batch_size = true}

-- Gauss-Legendre nodes and weights on [-1, 1] (Newton's method on the Legendre polynomial P_n)
local function legendre(n)
  local xs, ws = {}, {}
  for i = 1, n do
    local z, pp = math.cos(math.pi * (i - 0.25) / (n + 0.5)), 0
    for _ = 1, 100 do
      local p1, p2 = 1, 0
      for j = 1, n do p1, p2 = ((2 * j - 1) * z * p1 - (j - 1) * p2) / j, p1 end
      pp = n * (z * p1 - p2) / (z * z - 1)
      local dz = p1 / pp
      z = z - dz
      if math.abs(dz) < 1e-15 then break end
    end
    xs[n + 1 - i], ws[n + 1 - i] = z, 2 / ((1 - z * z) * pp * pp) -- ascending
  end
  return xs, ws
end

-- the points a_k in [0, 1] and the weights w_k of the rule
local RULES = {
  riemann_trapezoid = function(n) -- a_k = (k-1)/(n-1); w_k = 1/n, halved at both ends
    local a, w = {}, {}
    for k = 1, n do a[k], w[k] = (k - 1) / (n - 1), 1 / n end
    w[1], w[n] = w[1] / 2, w[n] / 2
    return a, w
  end,
  gausslegendre = function(n) -- a_k = (1 + z_k)/2, w_k = v_k/2 for the nodes z and weights v
    local z, v = legendre(n)
    for k = 1, n do z[k], v[k] = (1 + z[k]) / 2, v[k] / 2 end
    return z, v
  end,
}

return function(model, x, target, o)
  local fname = "explain.integrated_gradients"
  local t
  o, x, t = C.begin(fname, KNOWN, model, x, target, o)
  local steps = C.posint(fname, o, "steps", 50)
  local method = o.method or "riemann_trapezoid"
  if not RULES[method] then
    error(fname .. ": method must be \"riemann_trapezoid\" or \"gausslegendre\", got "
          .. tostring(method), 2)
  end
  if steps < 2 then error(fname .. ": steps must be at least 2, got " .. steps, 2) end
  local xs = x:detach()
  local base = C.baseline(fname, xs, o.baseline)
  local a, w = RULES[method](steps)
  local n, rest = x:size(1), {table.unpack(x.shape, 2)}
  local ones = {}
  for i = 1, x.ndim do ones[i] = 1 end
  local alpha = tide.tensor(a, {dtype = x.dtype}):view(steps, table.unpack(ones))
  local weight = tide.tensor(w, {dtype = x.dtype}):view(steps, table.unpack(ones))
  local diff = xs - base
  local path = (base:unsqueeze(1) + alpha * diff:unsqueeze(1)):view(steps * n, table.unpack(rest))
  local g = C.gradient(fname, model, path, C.tile(t, steps), C.posint(fname, o, "batch_size"))
  local attr = (g:view(steps, n, table.unpack(rest)) * weight):sum(1) * diff
  local ends = C.scores(fname, model, tide.cat({xs, base}, 1), C.tile(t, 2))
  local delta = attr:reshape(n, -1):sum(2) - (ends:narrow(1, 1, n) - ends:narrow(1, n + 1, n))
  return attr, delta
end
