-- stdlib/tide/metrics.lua: classification metrics over whole tensors (tide.metrics): accuracy,
-- confusion_matrix, group_accuracy. Targets are class indices 1..C; predictions are class
-- indices of the target's shape, or scores (logits, probabilities) with one more dimension, the
-- classes, reduced with argmax. Counting is one-hot matrix products over blocks of examples,
-- never a Lua loop per example.
local tide = require "tide"

local metrics = {}

local INTEGER = {int64 = true, uint8 = true}

local function shape(t) return t:dim() == 0 and "scalar" or table.concat(t.shape, "x") end

-- pred and target as flat int64 class indices of the same length; fn names the caller
local function classes(fn, pred, target)
  if not tide.is_tensor(pred) then
    error(fn .. ": predictions must be a tensor, got " .. type(pred), 3)
  end
  if not tide.is_tensor(target) then
    error(fn .. ": target must be a tensor of class indices, got " .. type(target), 3)
  end
  if not INTEGER[target.dtype] then
    error(fn .. ": target must hold class indices 1..C (int64), got " .. target.dtype, 3)
  end
  if pred:dim() == target:dim() + 1 and pred:dim() > 0 then
    pred = pred:argmax(pred:dim())              -- scores: the class of the highest one
  elseif not INTEGER[pred.dtype] then
    error(("%s: float predictions of shape %s need one more dimension (classes) than the " ..
           "target %s; class indices need int64"):format(fn, shape(pred), shape(target)), 3)
  end
  if shape(pred) ~= shape(target) then
    error(("%s: predictions of shape %s do not match the target %s"):format(
      fn, shape(pred), shape(target)), 3)
  end
  if target:numel() == 0 then error(fn .. ": no examples (empty target)", 3) end
  return pred:reshape(-1):long(), target:reshape(-1):long()
end

-- checks that every index of t lies in 1..k (k nil: no upper bound)
local function check_range(fn, what, t, k)
  local lo, hi = t:min():item(), t:max():item()
  if lo < 1 or (k and hi > k) then
    error(("%s: %s holds %d, outside 1..%s"):format(fn, what, lo < 1 and lo or hi,
                                                  k or "G"), 3)
  end
end

-- n x k float32 rows, one 1 per row at idx (1-based)
local function onehot(idx, k)
  local n = idx:size(1)
  return tide.zeros(n, k):scatter_(2, idx:view(n, 1), tide.ones(n, 1))
end

-- The k x m float64 sums of the rows of cols(first, len) (len x m) grouped by idx (1..k):
-- onehot(idx)^T cols, a block of rows at a time so the one-hot stays near 16 MB.
local function tally(idx, k, m, cols)
  local n, acc = idx:size(1), tide.zeros({k, m}, {dtype = "float64"})
  local block = math.max(1, math.min(n, 4194304 // math.max(k, m)))
  for first = 1, n, block do
    local len = math.min(block, n - first + 1)
    local part = onehot(idx:narrow(1, first, len), k).T:mm(cols(first, len))
    acc:add_(part:double())  -- float32 counts are exact below 2^24 > block
  end
  return acc
end

-- Fraction of predictions equal to the target, a number in [0, 1].
function metrics.accuracy(pred, target)
  pred, target = classes("metrics.accuracy", pred, target)
  return pred:eq(target):sum():item() / target:numel()
end

-- C x C int64 counts, rows the true class and columns the predicted one. num_classes defaults
-- to the number of score columns, or to the largest class seen.
function metrics.confusion_matrix(pred, target, num_classes)
  local fn = "metrics.confusion_matrix"
  local width = tide.is_tensor(pred) and tide.is_tensor(target) and
                pred:dim() == target:dim() + 1 and pred:size(-1) or nil
  pred, target = classes(fn, pred, target)
  local c = num_classes
  if c == nil then
    c = width or math.max(pred:max():item(), target:max():item())
  elseif math.type(c) ~= "integer" or c < 1 then
    error(fn .. ": num_classes must be a positive integer, got " .. tostring(c), 2)
  end
  check_range(fn, "target", target, c)
  check_range(fn, "predictions", pred, c)
  return tally(target, c, c, function(first, len)
    return onehot(pred:narrow(1, first, len), c)
  end):long()
end

-- Accuracy within each group: groups is an int64 tensor giving each example's group 1..G.
-- Returns {[g] = accuracy} and {[g] = number of examples} over the groups that have examples.
function metrics.group_accuracy(pred, target, groups)
  local fn = "metrics.group_accuracy"
  pred, target = classes(fn, pred, target)
  if not tide.is_tensor(groups) or not INTEGER[groups.dtype] then
    error(fn .. ": groups must be an int64 tensor of group ids 1..G, got " ..
          (tide.is_tensor(groups) and groups.dtype .. " tensor" or type(groups)), 2)
  end
  if groups:numel() ~= target:numel() then
    error(("%s: %d group ids for %d examples"):format(fn, groups:numel(), target:numel()), 2)
  end
  groups = groups:reshape(-1):long()
  check_range(fn, "groups", groups)
  local g = groups:max():item()
  local right = pred:eq(target):float()
  local sums = tally(groups, g, 2, function(first, len)
    local r = right:narrow(1, first, len):view(len, 1)
    return tide.cat({tide.ones(len, 1), r}, 2)
  end):totable()
  local acc, count = {}, {}
  for i = 1, g do                               -- a loop over groups, not examples
    local n, ok = sums[i][1], sums[i][2]
    if n > 0 then acc[i], count[i] = ok / n, math.tointeger(n) end
  end
  return acc, count
end

return metrics
