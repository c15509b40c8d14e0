-- stdlib/tide/fairness/thresholds.lua: post-processing with a decision threshold per group
-- (after Hardt, Price and Srebro, 2016, without their randomisation): for every common target
-- rate on a grid, each group's threshold is the one whose selection rate (demographic parity)
-- or true positive rate (equal opportunity) comes closest to it; the target kept is the one
-- with the most correct decisions on the data given.
local tide = require "tide"

local M = {}

local CONSTRAINTS = {demographic_parity = true, equal_opportunity = true}

-- scores of the positive class as a Lua list: 1-D, or N x C with column pos
local function score_list(fn, s, n, pos)
  if not tide.is_tensor(s) then error(fn .. ": scores must be a tensor, got " .. type(s), 0) end
  if s:dim() == 2 and s:size(1) == n then
    if math.type(pos) ~= "integer" or pos < 1 or pos > s:size(2) then
      error(("%s: scores of %d columns need pos_label in 1..%d, got %s"):format(fn, s:size(2),
            s:size(2), tostring(pos)), 0)
    end
    s = s:select(2, pos)
  end
  if s:dim() ~= 1 or s:size(1) ~= n then
    error(("%s: scores must be N or N x C for %d examples, got shape %s"):format(fn, n,
          table.concat(s.shape, "x")), 0)
  end
  return s:double():totable()
end

-- One group's cut points: its examples by descending score; k[i] examples selected at
-- threshold t[i] (ties stay together), tp[i] of them positive.
local function cuts(scores, ys, members)
  local ex = {}
  for i, m in ipairs(members) do ex[i] = {scores[m], ys[m]} end
  table.sort(ex, function(a, b) return a[1] > b[1] end)
  local c = {k = {0}, tp = {0}, t = {math.huge}, pos = 0, n = #ex}
  for i, e in ipairs(ex) do
    c.pos = c.pos + e[2]
    if i == #ex or ex[i + 1][1] < e[1] then
      c.k[#c.k + 1], c.tp[#c.tp + 1], c.t[#c.t + 1] = i, c.pos, e[1]
    end
  end
  return c
end

-- the cut of c whose rate (selection or TPR) is nearest r
local function nearest(c, r, constraint)
  local best, bd = 1, math.huge
  for i = 1, #c.k do
    local rate = constraint == "demographic_parity" and c.k[i] / c.n or
                 (c.pos > 0 and c.tp[i] / c.pos or 0)
    local d = math.abs(rate - r)
    if d < bd then best, bd = i, d end
  end
  return best
end

-- tide.fairness.thresholds(y_true, scores, groups, {constraint = "demographic_parity",
-- pos_label = 1, grid = 100}) -> {[group] = threshold}, {rate =, accuracy =}
function M.thresholds(y_true, scores, groups, o)
  local fn = "tide.fairness.thresholds"
  local F = require "tide.fairness"
  o = F._check_options(fn, o, {constraint = true, pos_label = true, grid = true})
  local constraint = o.constraint or "demographic_parity"
  if not CONSTRAINTS[constraint] then
    error(fn .. ": constraint must be \"demographic_parity\" or \"equal_opportunity\", got " ..
          tostring(constraint), 0)
  end
  local grid = o.grid or 100
  if math.type(grid) ~= "integer" or grid < 1 then
    error(fn .. ": grid must be a positive integer, got " .. tostring(grid), 0)
  end
  local pos = o.pos_label == nil and 1 or o.pos_label
  local y = F._indicator(fn, "y_true", y_true, pos)
  local n = y:size(1)
  local s, ys = score_list(fn, scores, n, pos), y:totable()
  local _, keys, members = F._group_index(fn, groups, n)
  local cs = {}
  for g = 1, #keys do cs[g] = cuts(s, ys, members[g]:totable()) end
  local best, pick = -1, nil
  for j = 0, grid do
    local r, correct, chosen = j / grid, 0, {}
    for g, c in ipairs(cs) do
      local i = nearest(c, r, constraint)
      chosen[g] = i
      correct = correct + c.tp[i] + (c.n - c.pos) - (c.k[i] - c.tp[i])
    end
    if correct > best then best, pick = correct, {rate = r, chosen = chosen} end
  end
  local t = {}
  for g, k in ipairs(keys) do t[k] = cs[g].t[pick.chosen[g]] end
  return t, {rate = pick.rate, accuracy = best / n}
end

-- tide.fairness.apply_thresholds(scores, groups, thresholds [, {pos_label = 1}]) -> int64 0/1:
-- 1 where the positive class's score reaches its group's threshold
function M.apply_thresholds(scores, groups, thresholds, o)
  local fn = "tide.fairness.apply_thresholds"
  local F = require "tide.fairness"
  o = F._check_options(fn, o, {pos_label = true})
  if type(thresholds) ~= "table" then
    error(fn .. ": thresholds must be a table {[group] = threshold}, got " .. type(thresholds), 0)
  end
  local n = tide.is_tensor(scores) and scores:size(1) or 0
  local s = score_list(fn, scores, n, o.pos_label == nil and 1 or o.pos_label)
  local g, keys = F._group_index(fn, groups, n)
  local per = {}
  for i, k in ipairs(keys) do
    per[i] = thresholds[k]
    if type(per[i]) ~= "number" then
      error(fn .. ": no threshold for group " .. tostring(k), 0)
    end
  end
  local t = tide.tensor(per, {dtype = "float64"}):index(1, g)
  return tide.tensor(s, {dtype = "float64"}):ge(t):long()
end

return M
