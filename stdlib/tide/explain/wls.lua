-- stdlib/tide/explain/wls.lua: weighted least squares for the surrogate models of kernel_shap
-- and lime: the normal equations (A' W A + ridge I) b = A' W y, formed with matmul and solved
-- by a Cholesky factorisation in Lua (A has at most a few hundred columns).
local tide = require "tide"

local W = {}

-- solves S b = r for a symmetric positive definite S (k x k list of rows) and r (list)
local function cholesky_solve(s, r)
  local k, l = #r, {}
  for i = 1, k do
    l[i] = {}
    for j = 1, i do
      local v = s[i][j]
      for p = 1, j - 1 do v = v - l[i][p] * l[j][p] end
      if i == j then
        if v <= 0 then return nil end
        l[i][i] = math.sqrt(v)
      else
        l[i][j] = v / l[j][j]
      end
    end
  end
  local y, b = {}, {}
  for i = 1, k do
    local v = r[i]
    for p = 1, i - 1 do v = v - l[i][p] * y[p] end
    y[i] = v / l[i][i]
  end
  for i = k, 1, -1 do
    local v = y[i]
    for p = i + 1, k do v = v - l[p][i] * b[p] end
    b[i] = v / l[i][i]
  end
  return b
end

-- b minimising sum_s w_s (y_s - A_s b)^2 + ridge |b|^2 (A: S x k, w and y: S; float64). A
-- singular system (too few distinct samples) gets a growing jitter on the diagonal.
function W.solve(a, w, y, ridge)
  local aw = a * w:view(-1, 1)
  local s = aw:t():matmul(a):totable()
  local r = aw:t():matmul(y:view(-1, 1)):view(-1):totable()
  local k = #r
  local trace = 0
  for i = 1, k do trace = trace + s[i][i] end
  local jitter = ridge or 0
  for _ = 1, 12 do
    for i = 1, k do s[i][i] = s[i][i] + jitter end
    local b = cholesky_solve(s, r)
    if b then return tide.tensor(b, {dtype = "float64"}) end
    for i = 1, k do s[i][i] = s[i][i] - jitter end
    jitter = jitter == 0 and 1e-10 * math.max(trace / k, 1e-30) or jitter * 100
  end
  error("explain: the weighted least-squares system is singular (too few samples?)", 3)
end

return W
