-- stdlib/tide/explain/kernel_shap.lua: Kernel SHAP (Lundberg and Lee 2017). Coalitions z of the
-- M features keep x where z_i = 1 and take each background row elsewhere; v(z) is the mean
-- target score over the background. The Shapley values are the weighted least-squares fit of
-- v(z) - v(0) = sum_i phi_i z_i with the Shapley kernel weights
--   pi(z) = (M - 1) / (C(M, |z|) |z| (M - |z|))
-- under the efficiency constraint sum_i phi_i = f(x) - v(0) (phi_M eliminated). All coalitions
-- when 2^M - 2 <= samples (exact), else samples drawn from pi in complementary pairs (then every
-- weight is 1). base_value = v(0) = E[f(background)].
local tide = require "tide"
local C = require "tide.explain.common"
local W = require "tide.explain.wls"

local KNOWN = {background = true, samples = true, features = true, seed = true, batch_size = true}

local function choose(m, s)
  local c = 1
  for i = 1, s do c = c * (m - s + i) / i end
  return c
end

-- every coalition with 1 <= |z| <= M - 1 and its kernel weight
local function all(m)
  local rows, w = {}, {}
  for code = 1, (1 << m) - 2 do
    local z, size = {}, 0
    for i = 1, m do
      z[i] = (code >> (i - 1)) & 1
      size = size + z[i]
    end
    rows[#rows + 1], w[#w + 1] = z, (m - 1) / (choose(m, size) * size * (m - size))
  end
  return rows, w
end

-- n coalitions drawn from the kernel: a size s with probability ~ (M-1)/(s (M-s)), then a
-- uniform subset of that size (the smallest of M uniform keys), each with its complement
local function sampled(m, n)
  local cdf, total = {}, 0
  for s = 1, m - 1 do
    total = total + (m - 1) / (s * (m - s))
    cdf[s] = total
  end
  local half = (n + 1) // 2
  local u, keys = tide.rand(half):totable(), tide.rand(half, m):totable()
  local rows, w = {}, {}
  for r = 1, half do
    local s = 1
    while cdf[s] < u[r] * total and s < m - 1 do s = s + 1 end
    local order = {}
    for i = 1, m do order[i] = i end
    table.sort(order, function(a, b) return keys[r][a] < keys[r][b] end)
    local z, zc = {}, {}
    for i = 1, m do z[i], zc[i] = 0, 1 end
    for i = 1, s do z[order[i]], zc[order[i]] = 1, 0 end
    rows[#rows + 1], rows[#rows + 2] = z, zc
    w[#w + 1], w[#w + 2] = 1, 1
  end
  return rows, w
end

return function(model, x, target, o)
  local fname = "explain.kernel_shap"
  local t
  o, x, t = C.begin(fname, KNOWN, model, x, target, o)
  local xs = x:detach()
  local n, rest = x:size(1), {table.unpack(x.shape, 2)}
  local d = x:numel() // n
  local bg = o.background
  if bg == nil then bg = tide.zeros({1, table.unpack(rest)}, {dtype = x.dtype}) end
  if not tide.is_tensor(bg) or bg:numel() % d ~= 0 or bg:numel() == 0 then
    error(("%s: background must be a tensor of examples shaped like x's (%s), got %s")
          :format(fname, table.concat(rest, "x"), C.shape(bg)), 2)
  end
  bg = bg:to(x.dtype):reshape(-1, d)
  local nb = bg:size(1)
  local g = C.groups(fname, x, o.features)                    -- M x D
  local m = g:size(1)
  if m < 2 then error(fname .. ": need at least 2 features, got " .. m, 2) end
  local samples = C.posint(fname, o, "samples", 2048)
  local rows, w = C.seeded(o.seed, function()
    if (1 << math.min(m, 40)) - 2 <= samples then return all(m) end
    return sampled(m, samples)
  end)
  local z = tide.tensor(rows, {dtype = "float64"})            -- S x M
  local ns = z:size(1)
  local keep = z:matmul(g):to(x.dtype):view(ns, 1, d)         -- S x 1 x D: 1 keeps x
  local rows_per = C.posint(fname, o, "batch_size", C.ROWS)
  local per = math.max(1, rows_per // nb)                     -- coalitions per model call
  local fx = C.scores(fname, model, xs, t):to("float64")
  local attrs, bases = {}, {}
  for b = 1, n do
    local tb = t:narrow(1, b, 1)
    local base = C.scores(fname, model, bg:view(nb, table.unpack(rest)), C.tile(tb, nb))
                  :to("float64"):mean():item()
    bases[b] = base
    local xb = xs[b]:reshape(1, 1, d)
    local v = {}
    for s0 = 1, ns, per do
      local k = math.min(per, ns - s0 + 1)
      local kz = keep:narrow(1, s0, k)
      local inp = (xb * kz + bg:view(1, nb, d) * (1 - kz)):view(k * nb, table.unpack(rest))
      local sc = C.scores(fname, model, inp, C.tile(tb, k * nb), rows_per)
      v[#v + 1] = sc:to("float64"):view(k, nb):mean(2)
    end
    local y = tide.cat(v, 1) - base                           -- S
    local delta = fx[b] - base
    local zl = z:narrow(2, m, 1)                              -- phi_M = delta - sum of the rest
    local a = z:narrow(2, 1, m - 1) - zl
    local phi = W.solve(a, tide.tensor(w, {dtype = "float64"}), y - zl:view(ns) * delta)
    local last = delta - phi:sum():item()
    attrs[b] = tide.cat({phi, tide.tensor({last}, {dtype = "float64"})}, 1):view(1, m):matmul(g)
  end
  return tide.cat(attrs, 1):to(x.dtype):view(table.unpack(x.shape)),
         tide.tensor(bases, {dtype = x.dtype})
end
