-- stdlib/tide/explain/lime.lua: LIME (Ribeiro et al. 2016). Random binary vectors z over the M
-- features (each kept with probability 1/2) keep x where z_i = 1 and the baseline elsewhere;
-- each sample is weighted by an exponential kernel of its distance to x in that space,
--   pi(z) = exp(-d(z)^2 / width^2), d(z) = |1 - z| = sqrt(M - |z|), width = 0.75 sqrt(M),
-- and a weighted ridge regression (intercept unpenalised, alpha = 1 as in LIME) of the target
-- score on z gives the local linear model, whose weights are returned shaped like x.
local tide = require "tide"
local C = require "tide.explain.common"
local W = require "tide.explain.wls"

local KNOWN = {samples = true, kernel_width = true, features = true, seed = true,
               baseline = true, alpha = true, batch_size = true}

return function(model, x, target, o)
  local fname = "explain.lime"
  local t
  o, x, t = C.begin(fname, KNOWN, model, x, target, o)
  local xs = x:detach()
  local n, rest = x:size(1), {table.unpack(x.shape, 2)}
  local d = x:numel() // n
  local g = C.groups(fname, x, o.features)                    -- M x D
  local m = g:size(1)
  local ns = C.posint(fname, o, "samples", 1000)
  local width = o.kernel_width or 0.75 * math.sqrt(m)
  local alpha = o.alpha or 1
  if type(width) ~= "number" or width <= 0 then
    error(fname .. ": kernel_width must be a positive number, got " .. tostring(width), 2)
  end
  if type(alpha) ~= "number" or alpha < 0 then
    error(fname .. ": alpha must be a number >= 0, got " .. tostring(alpha), 2)
  end
  local base = C.baseline(fname, xs, o.baseline or 0):reshape(n, 1, d)
  local z = C.seeded(o.seed, function()
    return tide.rand(ns, m):lt(0.5):to("float64")             -- S x M
  end)
  local dist2 = z:sum(2):neg():add(m)                         -- |1 - z|^2
  local pi = (dist2 / -(width * width)):exp()
  local keep = z:matmul(g):to(x.dtype):view(ns, d)
  local per = C.posint(fname, o, "batch_size", C.ROWS)
  local attrs = {}
  for b = 1, n do
    local xb, bb = xs[b]:reshape(1, d), base[b]
    local inp = (xb * keep + bb * (1 - keep)):view(ns, table.unpack(rest))
    local y = C.scores(fname, model, inp, C.tile(t:narrow(1, b, 1), ns), per):to("float64")
    -- ridge on the weights only: centre on the weighted means, then no intercept column
    local sw = pi:sum()
    local zm = (z * pi:view(ns, 1)):sum(1, true) / sw
    local ym = (y * pi):sum() / sw
    local coef = W.solve(z - zm, pi, y - ym, alpha)
    attrs[b] = coef:view(1, m):matmul(g)
  end
  return tide.cat(attrs, 1):to(x.dtype):view(table.unpack(x.shape))
end
