-- stdlib/tide/fairness/mitigate.lua: reweighing (Kamiran and Calders, "Data preprocessing
-- techniques for classification without discrimination", 2012). Each (group, label) cell gets
-- the weight P(g) P(y) / P(g, y): the weight that makes label and group independent in the
-- weighted training set. The weights go into training through the loss (per-example weights)
-- or through a loader that draws each epoch's examples in proportion to them.
local tide = require "tide"
local data = require "tide.data"
local seeds = require "tide.data.seed"

local M = {}

-- The cells of y (0/1 float64) and groups: per group g, the positions of its negatives and
-- positives, and the weights {[g] = {[0] =, [1] =}} (nil for an empty cell).
local function cells(fn, y_true, groups, o)
  local F = require "tide.fairness"
  local y = F._indicator(fn, "y_true", y_true, o.pos_label == nil and 1 or o.pos_label)
  local n = y:size(1)
  local g, keys, members = F._group_index(fn, groups, n)
  local pos, npos = {}, y:sum():item()
  for k = 1, #keys do
    local m = members[k]
    local yg = y:index(1, m)
    pos[k] = {[0] = m:masked_select(yg:eq(0)), [1] = m:masked_select(yg:eq(1))}
  end
  local w, by = {}, {}
  for k, key in ipairs(keys) do
    w[k], by[key] = {}, {}
    local ng = members[k]:size(1)
    for c = 0, 1 do
      local ngy, ny = pos[k][c]:numel(), c == 1 and npos or n - npos
      if ngy > 0 then
        w[k][c] = ng * ny / (n * ngy)
        by[key][c] = w[k][c]
      end
    end
  end
  return {y = y, g = g, n = n, keys = keys, pos = pos, w = w, by = by}
end

-- tide.fairness.reweighing(y_true, groups, {pos_label = 1}) -> per-example float32 weights,
-- {[group] = {[0] = weight of its negatives, [1] = of its positives}}
function M.reweighing(y_true, groups, o)
  local fn = "tide.fairness.reweighing"
  o = require("tide.fairness")._check_options(fn, o, {pos_label = true})
  local c = cells(fn, y_true, groups, o)
  local flat = {}
  for k = 1, #c.keys do flat[2 * k - 1], flat[2 * k] = c.w[k][0] or 0, c.w[k][1] or 0 end
  local cell = (c.g - 1) * 2 + c.y:long() + 1
  return tide.tensor(flat, {dtype = "float64"}):index(1, cell):float(), c.by
end

local LOADER_OPTS = {pos_label = true, batch_size = true, seed = true, drop_last = true,
                     transform = true}

-- tide.fairness.reweighed_loader(ds, y_true, groups, {batch_size=, seed=, pos_label=1,
-- drop_last=, transform=}): a data.DataLoader whose every epoch is #ds examples drawn with
-- replacement, example i with probability proportional to its reweighing weight: a cell
-- (g, y) with probability P(g) P(y), then uniformly inside it. Seeded per epoch like a
-- shuffled DataLoader (tide's own generator is left where it was).
function M.reweighed_loader(ds, y_true, groups, o)
  local fn = "tide.fairness.reweighed_loader"
  o = require("tide.fairness")._check_options(fn, o, LOADER_OPTS)
  local c = cells(fn, y_true, groups, o)
  local ok, n = pcall(function() return #ds end)
  if not ok or n ~= c.n then
    error(("%s: the dataset has %s examples, y_true %d"):format(fn, tostring(ok and n or "no"),
          c.n), 2)
  end
  local loader = data.DataLoader(ds, {batch_size = o.batch_size, seed = o.seed, shuffle = true,
                                      drop_last = o.drop_last, transform = o.transform})
  -- the drawing probability of each non-empty cell, renormalised over them
  local list, total = {}, 0
  for k = 1, #c.keys do
    for y = 0, 1 do
      local m = c.pos[k][y]
      if m:numel() > 0 then
        local p = c.w[k][y] * m:numel() / c.n
        list[#list + 1], total = {members = m, p = p}, total + p
      end
    end
  end
  local F = require "tide.fairness"
  function loader.order(self, epoch)
    return seeds.with(tide, seeds.mix(self.seed, epoch), function()
      local u, drawn, parts = tide.rand(n, {dtype = "float64"}) * total, 0, {}
      local cum = 0
      for i, cell in ipairs(list) do
        cum = cum + cell.p
        local below = i == #list and n or u:lt(cum):sum():item()
        local k = below - drawn
        drawn = below
        if k > 0 then
          parts[#parts + 1] = cell.members:index(1, tide.randint(1, cell.members:numel(), {k}))
        end
      end
      local order = tide.cat(parts, 1)
      return order:index(1, tide.randperm(n))
    end)
  end
  return loader
end

return M
