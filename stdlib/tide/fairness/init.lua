-- stdlib/tide/fairness/init.lua: group fairness metrics after Fairlearn's definitions
-- (doc/fairness.md): per-group accuracy, selection rate, TPR, FPR, precision and calibration
-- error, the disparities between groups, and percentile bootstrap intervals. Every statistic is
-- a function of one table of sums: per group and probability bin, the count and the sums of
-- y, yhat, y * yhat and the predicted probability. A resample's sums are a gather and a sum (a
-- one-hot product over bins with probabilities) for bc resamples at a time: nothing loops over
-- examples in Lua but the mapping of group names to 1..G.
local tide = require "tide"
local seeds = require "tide.data.seed"

local M = {}

M.METRICS = {"count", "accuracy", "selection_rate", "tpr", "fpr", "precision", "ece"}
local KNOWN_METRIC = {}
for _, m in ipairs(M.METRICS) do KNOWN_METRIC[m] = true end
local INTEGER = {int64 = true, uint8 = true, bool = true}

local function shape(t) return t:dim() == 0 and "scalar" or table.concat(t.shape, "x") end

local function fail(fn, fmt, ...) error(fn .. ": " .. fmt:format(...), 0) end

local function check_options(fn, o, known)
  if o == nil then return {} end
  if type(o) ~= "table" then fail(fn, "options must be a table, got %s", type(o)) end
  for k in pairs(o) do
    if not known[k] then fail(fn, "unknown option '%s'", tostring(k)) end
  end
  return o
end

-- Labels or predictions as a flat float64 0/1 tensor: 1 where the value is pos_label. t holds
-- labels (bool: true is pos_label 1; numbers: 0/1 or class indices), or for predictions N x C
-- scores reduced with argmax to class indices 1..C.
local function indicator(fn, what, t, pos, n)
  if not tide.is_tensor(t) then fail(fn, "%s must be a tensor, got %s", what, type(t)) end
  if t.dtype == "bool" then t = t:long() end
  if n and t:dim() == 2 and t:size(1) == n and t:size(2) > 1 and not INTEGER[t.dtype] then
    t = t:argmax(2)                                 -- scores: the highest class
  end
  if t:dim() ~= 1 or (n and t:size(1) ~= n) then
    fail(fn, "%s must be a 1-D tensor of %s labels, got shape %s", what, n or "N", shape(t))
  end
  if t:numel() == 0 then fail(fn, "no examples (empty %s)", what) end
  if not INTEGER[t.dtype] and not t:eq(t:floor()):all():item() then
    fail(fn, "%s holds fractions: expected labels (0/1 or class indices)%s", what,
         n and ", or N x C scores; threshold probabilities first (p:ge(0.5))" or "")
  end
  return t:eq(pos):double()
end

-- Group ids (an integer tensor or a Lua list of strings or numbers) as int64 1..G, the sorted
-- keys, and each group's positions.
local function group_index(fn, groups, n)
  local list
  if tide.is_tensor(groups) then
    if not INTEGER[groups.dtype] or groups:dim() ~= 1 then
      fail(fn, "groups must be a 1-D int64 tensor of group ids or a list of names, got a %s " ..
           "tensor of shape %s", groups.dtype, shape(groups))
    end
    list = groups:long():totable()
  elseif type(groups) == "table" then
    list = groups
  else
    fail(fn, "groups must be an int64 tensor or a list of names, got %s", type(groups))
  end
  if #list ~= n then fail(fn, "%d group ids for %d examples", #list, n) end
  local seen, keys, kind = {}, {}, nil
  for i = 1, n do
    local v = list[i]
    local tv = math.type(v) == "integer" and "integer" or type(v) == "string" and "string"
    if not tv then fail(fn, "groups[%d] is %s: expected an integer or a string", i, tostring(v)) end
    if kind and tv ~= kind then fail(fn, "groups mixes integers and strings (groups[%d])", i) end
    kind = tv
    if not seen[v] then seen[v], keys[#keys + 1] = true, v end
  end
  table.sort(keys)
  local rank, pos = {}, {}
  for g, k in ipairs(keys) do rank[k], pos[g] = g, {} end
  local idx = {}
  for i = 1, n do
    local g = rank[list[i]]
    idx[i], pos[g][#pos[g] + 1] = g, i
  end
  for g = 1, #keys do pos[g] = tide.tensor(pos[g], {dtype = "int64"}) end
  return tide.tensor(idx, {dtype = "int64"}), keys, pos
end

-- Probabilities of the positive class: a 1-D tensor in [0, 1], or N x C rows (column pos).
local function probabilities(fn, p, n, pos)
  if not tide.is_tensor(p) then fail(fn, "y_prob must be a tensor, got %s", type(p)) end
  if p:dim() == 2 and p:size(1) == n then
    if math.type(pos) ~= "integer" or pos < 1 or pos > p:size(2) then
      fail(fn, "y_prob of shape %s needs pos_label in 1..%d, got %s", shape(p), p:size(2),
           tostring(pos))
    end
    p = p:select(2, pos)
  end
  if p:dim() ~= 1 or p:size(1) ~= n then
    fail(fn, "y_prob must be N or N x C probabilities for %d examples, got shape %s", n, shape(p))
  end
  p = p:double()
  if not p:ge(0):logical_and(p:le(1)):all():item() then
    fail(fn, "y_prob must hold probabilities in [0, 1] (apply softmax or sigmoid to logits)")
  end
  return p
end

-- The examples of one call: per example the columns [1, y, yhat, y * yhat, p] (VALS) and its
-- probability bin 1..bins; each group's positions.
local VALS = 5
local function prepare(fn, y_true, y_pred, groups, o)
  local pos = o.pos_label == nil and 1 or o.pos_label
  if type(pos) ~= "number" then fail(fn, "pos_label must be a number, got %s", type(pos)) end
  local y = indicator(fn, "y_true", y_true, pos)
  local n = y:size(1)
  local zeros = tide.zeros(n, {dtype = "float64"})
  local yh = y_pred ~= nil and indicator(fn, "y_pred", y_pred, pos, n) or zeros
  local _, keys, members = group_index(fn, groups, n)
  local bins, p = 1, nil
  if o.y_prob ~= nil then
    p = probabilities(fn, o.y_prob, n, pos)
    bins = o.bins or 10
    if math.type(bins) ~= "integer" or bins < 1 then
      fail(fn, "bins must be a positive integer, got %s", tostring(bins))
    end
  end
  local vals = tide.stack({tide.ones(n, {dtype = "float64"}), y, yh, y * yh, p or zeros}, 2)
  return {fn = fn, n = n, G = #keys, keys = keys, members = members, bins = bins, vals = vals,
          bin = bins > 1 and ((p * bins):floor():clamp(0, bins - 1) + 1):long() or nil,
          has_prob = p ~= nil}
end

-- For bc draws of k examples each (idx: bc * k positions), the bc x bins x VALS sums of their
-- columns by probability bin (a one-hot product over blocks of about 16 MB).
local function sums(d, idx, bc, k)
  local v = d.vals:index(1, idx):view(bc, k, VALS)
  if d.bins == 1 then return v:sum(2):view(bc, 1, VALS) end
  local b = d.bin:index(1, idx):view(bc, k, 1)
  local acc = tide.zeros({bc, d.bins, VALS}, {dtype = "float64"})
  local block = math.max(1, math.min(k, 2097152 // (bc * d.bins)))
  for first = 1, k, block do
    local len = math.min(block, k - first + 1)
    local onehot = tide.zeros({bc, len, d.bins}, {dtype = "float64"})
      :scatter_(3, b:narrow(2, first, len), tide.ones({bc, len, 1}, {dtype = "float64"}))
    acc:add_(tide.bmm(onehot:transpose(2, 3), v:narrow(2, first, len)))
  end
  return acc
end

-- Per group g (and [0] for all): tn, fp, fn, tp, n, and per bin {n, pos, psum}; from S[g], a
-- bins x VALS Lua table of group g's sums.
local function cells(d, S)
  local out = {}
  for g = 0, d.G do
    out[g] = {tn = 0, fp = 0, fn = 0, tp = 0, n = 0, bins = {}}
    for b = 1, d.bins do out[g].bins[b] = {n = 0, pos = 0, psum = 0} end
  end
  for g = 1, d.G do
    for b = 1, d.bins do
      local n, y, yh, tp, psum = table.unpack(S[g][b])
      for _, t in ipairs{out[g], out[0]} do
        t.tp, t.fp, t.fn = t.tp + tp, t.fp + yh - tp, t.fn + y - tp
        t.tn, t.n = t.tn + n - y - yh + tp, t.n + n
        local bin = t.bins[b]
        bin.n, bin.pos, bin.psum = bin.n + n, bin.pos + y, bin.psum + psum
      end
    end
  end
  return out
end

local function ratio(a, b) return b > 0 and a / b or 0 / 0 end

-- One metric of one cell table (NaN where its denominator is 0).
local METRIC = {
  count = function(c) return c.n end,
  accuracy = function(c) return ratio(c.tp + c.tn, c.n) end,
  selection_rate = function(c) return ratio(c.tp + c.fp, c.n) end,
  tpr = function(c) return ratio(c.tp, c.tp + c.fn) end,
  fpr = function(c) return ratio(c.fp, c.fp + c.tn) end,
  precision = function(c) return ratio(c.tp, c.tp + c.fp) end,
  ece = function(c)          -- sum over bins of n_b/n |mean(y) - mean(p)| = |pos - psum| / n
    local e = 0
    for _, b in ipairs(c.bins) do e = e + math.abs(b.pos - b.psum) end
    return ratio(e, c.n)
  end,
}

-- Fairlearn's aggregations of a metric over groups (NaN groups left out): "between_groups"
-- max - min (ratio min / max); "to_overall" the largest |m_g - overall| (ratio the smallest
-- min(m_g / overall, overall / m_g)).
local function disparity(values, overall, method, kind)
  local lo, hi, worst = math.huge, -math.huge, kind == "ratio" and math.huge or 0
  for _, v in ipairs(values) do
    if v == v then
      lo, hi = math.min(lo, v), math.max(hi, v)
      if kind == "ratio" then worst = math.min(worst, math.min(ratio(v, overall), ratio(overall, v)))
      else worst = math.max(worst, math.abs(v - overall)) end
    end
  end
  if lo > hi then return 0 / 0 end
  if method == "to_overall" then return worst end
  if kind == "ratio" then return ratio(lo, hi) end
  return hi - lo
end

local function by_groups(c, d, name)
  local v = {}
  for g = 1, d.G do v[g] = METRIC[name](c[g]) end
  return v
end

-- A named disparity of a cell table; o.method, o.agg as Fairlearn's.
local function dis(c, d, name, kind, method)
  return disparity(by_groups(c, d, name), METRIC[name](c[0]), method, kind)
end
local DISPARITY = {
  demographic_parity_difference = function(c, d, o)
    return dis(c, d, "selection_rate", "difference", o.method) end,
  demographic_parity_ratio = function(c, d, o)
    return dis(c, d, "selection_rate", "ratio", o.method) end,
  equal_opportunity_difference = function(c, d, o)
    return dis(c, d, "tpr", "difference", o.method) end,
  equal_opportunity_ratio = function(c, d, o) return dis(c, d, "tpr", "ratio", o.method) end,
  equalized_odds_difference = function(c, d, o)
    local a, b = dis(c, d, "tpr", "difference", o.method), dis(c, d, "fpr", "difference", o.method)
    return o.agg == "mean" and (a + b) / 2 or math.max(a, b)
  end,
  equalized_odds_ratio = function(c, d, o)
    local a, b = dis(c, d, "tpr", "ratio", o.method), dis(c, d, "fpr", "ratio", o.method)
    return o.agg == "mean" and (a + b) / 2 or math.min(a, b)
  end,
}
M.DISPARITIES = {"demographic_parity_difference", "demographic_parity_ratio",
                 "equalized_odds_difference", "equalized_odds_ratio",
                 "equal_opportunity_difference", "equal_opportunity_ratio"}

-- The q-quantile of the sorted list xs, NumPy's default (linear) interpolation.
local function quantile(xs, q)
  local n = #xs
  if n == 0 then return 0 / 0 end
  local h = (n - 1) * q + 1
  local i = math.floor(h)
  if i >= n then return xs[n] end
  return xs[i] + (h - i) * (xs[i + 1] - xs[i])
end

-- Runs f with tide's generator restarted at seed, then puts the caller's stream back.
local function seeded(seed, f)
  if seed == nil then return f() end
  return seeds.with(tide, seed, f)
end

local function check_bootstrap(fn, o)
  local B = o.bootstrap or 0
  if math.type(B) ~= "integer" or B < 0 then
    fail(fn, "bootstrap must be a number of resamples (an integer >= 0), got %s", tostring(B))
  end
  local level = o.level or 0.95
  if type(level) ~= "number" or not (level > 0 and level < 1) then
    fail(fn, "level must be a number in (0, 1), got %s", tostring(level))
  end
  if o.seed ~= nil and math.type(o.seed) ~= "integer" then
    fail(fn, "seed must be an integer, got %s", tostring(o.seed))
  end
  return B, level
end

-- Evaluates stat(cells) -> flat list of numbers on the data, and with o.bootstrap = B on B
-- resamples (stratified: each group resampled with replacement within itself, so every group
-- keeps its size). Returns the values and, with B > 0, lists of lower and upper bounds of the
-- percentile interval at o.level (resamples where a value is NaN are left out of its bounds).
local function evaluate(d, stat, o)
  local B, level = check_bootstrap(d.fn, o)
  local S = {}
  for g = 1, d.G do S[g] = sums(d, d.members[g], 1, d.members[g]:size(1))[1]:totable() end
  local point = stat(cells(d, S))
  if B == 0 then return point end
  local draws = {}
  for i = 1, #point do draws[i] = {} end
  seeded(o.seed, function()
    local bc = math.max(1, math.min(B, 524288 // d.n))
    for first = 1, B, bc do
      local len, R = math.min(bc, B - first + 1), {}
      for g = 1, d.G do
        local m = d.members[g]
        local k = m:size(1)
        R[g] = sums(d, m:index(1, tide.randint(1, k, {len * k})), len, k):totable()
      end
      for r = 1, len do
        local Sr = {}
        for g = 1, d.G do Sr[g] = R[g][r] end
        for i, v in ipairs(stat(cells(d, Sr))) do
          if v == v then draws[i][#draws[i] + 1] = v end
        end
      end
    end
  end)
  local lo, hi, a = {}, {}, (1 - level) / 2
  for i = 1, #point do
    table.sort(draws[i])
    lo[i], hi[i] = quantile(draws[i], a), quantile(draws[i], 1 - a)
  end
  return point, lo, hi
end

---- the public functions ------------------------------------------------------------------------

local COMMON = {pos_label = true, bootstrap = true, seed = true, level = true}
local function known(extra)
  local k = {}
  for name in pairs(COMMON) do k[name] = true end
  for _, name in ipairs(extra) do k[name] = true end
  return k
end

local function metric_list(fn, list, has_prob)
  list = list or (has_prob and {"count", "accuracy", "selection_rate", "tpr", "fpr", "ece"}
                  or {"count", "accuracy", "selection_rate", "tpr", "fpr"})
  if type(list) ~= "table" or #list == 0 then
    fail(fn, "metrics must be a list of names such as {\"accuracy\", \"tpr\"}")
  end
  for _, m in ipairs(list) do
    if not KNOWN_METRIC[m] then
      fail(fn, "unknown metric %s (known: %s)", tostring(m), table.concat(M.METRICS, ", "))
    end
    if m == "ece" and not has_prob then fail(fn, "metric \"ece\" needs y_prob = probabilities") end
  end
  return list
end

local FRAME_OPTS = known{"metrics", "y_prob", "bins", "method"}

-- tide.fairness.metric_frame(y_true, y_pred, groups, {metrics=, pos_label=1, y_prob=, bins=10,
-- bootstrap=0, seed=, level=0.95}) -> {overall=, by_group=, difference=, ratio=, groups=, ci=}
function M.metric_frame(y_true, y_pred, groups, o)
  local fn = "tide.fairness.metric_frame"
  o = check_options(fn, o, FRAME_OPTS)
  local d = prepare(fn, y_true, y_pred, groups, o)
  local names = metric_list(fn, o.metrics, d.has_prob)
  local method = o.method or "between_groups"
  if method ~= "between_groups" and method ~= "to_overall" then
    fail(fn, "method must be \"between_groups\" or \"to_overall\", got %s", tostring(method))
  end
  -- the flat list: per metric, overall, each group, difference, ratio
  local stride = d.G + 3
  local function stat(c)
    local out = {}
    for j, name in ipairs(names) do
      local base, v = (j - 1) * stride, by_groups(c, d, name)
      local all = METRIC[name](c[0])
      out[base + 1] = all
      for g = 1, d.G do out[base + 1 + g] = v[g] end
      out[base + d.G + 2] = disparity(v, all, method, "difference")
      out[base + d.G + 3] = disparity(v, all, method, "ratio")
    end
    return out
  end
  local v, lo, hi = evaluate(d, stat, o)
  local r = {overall = {}, by_group = {}, difference = {}, ratio = {}, groups = d.keys,
             metrics = names, ci = lo and {overall = {}, by_group = {}, difference = {},
                                             ratio = {}} or nil}
  for _, k in ipairs(d.keys) do
    r.by_group[k] = {}
    if lo then r.ci.by_group[k] = {} end
  end
  for j, name in ipairs(names) do
    local base = (j - 1) * stride
    local function put(t, ct, key, i)
      t[key] = v[base + i]
      if lo then ct[key] = {lo[base + i], hi[base + i]} end
    end
    put(r.overall, r.ci and r.ci.overall, name, 1)
    for g, k in ipairs(d.keys) do put(r.by_group[k], r.ci and r.ci.by_group[k], name, 1 + g) end
    put(r.difference, r.ci and r.ci.difference, name, d.G + 2)
    put(r.ratio, r.ci and r.ci.ratio, name, d.G + 3)
  end
  return r
end

-- The disparity functions: value [, {lo, hi}]
local DIS_OPTS = known{"method", "agg"}
for _, name in ipairs(M.DISPARITIES) do
  M[name] = function(y_true, y_pred, groups, o)
    local fn = "tide.fairness." .. name
    o = check_options(fn, o, DIS_OPTS)
    local method, agg = o.method or "between_groups", o.agg or "worst_case"
    if method ~= "between_groups" and method ~= "to_overall" then
      fail(fn, "method must be \"between_groups\" or \"to_overall\", got %s", tostring(method))
    end
    if agg ~= "worst_case" and agg ~= "mean" then
      fail(fn, "agg must be \"worst_case\" or \"mean\", got %s", tostring(agg))
    end
    local d = prepare(fn, y_true, y_pred, groups, o)
    local f, oo = DISPARITY[name], {method = method, agg = agg}
    local v, lo, hi = evaluate(d, function(c) return {f(c, d, oo)} end, o)
    if lo then return v[1], {lo[1], hi[1]} end
    return v[1]
  end
end

-- tide.fairness.calibration(y_true, y_prob, groups, {bins=10, pos_label=1, bootstrap=, seed=})
-- -> {overall = ece, by_group = {[g] = ece}, difference =, ci = ...}
local CAL_OPTS = known{"bins"}
function M.calibration(y_true, y_prob, groups, o)
  local fn = "tide.fairness.calibration"
  o = check_options(fn, o, CAL_OPTS)
  local oo = {}
  for k, v in pairs(o) do oo[k] = v end
  oo.y_prob = y_prob
  if y_prob == nil then fail(fn, "y_prob (probabilities of the positive class) is required") end
  local d = prepare(fn, y_true, nil, groups, oo)
  local function stat(c)
    local v = by_groups(c, d, "ece")
    local all = METRIC.ece(c[0])
    local out = {all}
    for g = 1, d.G do out[g + 1] = v[g] end
    out[d.G + 2] = disparity(v, all, "between_groups", "difference")
    return out
  end
  local v, lo, hi = evaluate(d, stat, o)
  local r = {overall = v[1], by_group = {}, difference = v[d.G + 2], groups = d.keys}
  for g, k in ipairs(d.keys) do r.by_group[k] = v[g + 1] end
  if lo then
    r.ci = {overall = {lo[1], hi[1]}, by_group = {}, difference = {lo[d.G + 2], hi[d.G + 2]}}
    for g, k in ipairs(d.keys) do r.ci.by_group[k] = {lo[g + 1], hi[g + 1]} end
  end
  return r
end

M._indicator, M._group_index, M._quantile = indicator, group_index, quantile
M._check_options = check_options
local mitigate = require "tide.fairness.mitigate"
M.reweighing, M.reweighed_loader = mitigate.reweighing, mitigate.reweighed_loader
local thresholds = require "tide.fairness.thresholds"
M.thresholds, M.apply_thresholds = thresholds.thresholds, thresholds.apply_thresholds
M.report = function(...) return require("tide.fairness.report").report(...) end

return M
