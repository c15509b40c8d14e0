-- stdlib/tide/prune/mask.lua: how a pruned tensor is held, PyTorch's reparametrization. Pruning
-- m's parameter `weight` moves it to `weight_orig` (the same tensor, in the same place among the
-- parameters, so an optimizer built before pruning keeps working) beside a buffer `weight_mask`;
-- m.weight becomes weight_orig * weight_mask, recomputed before each of m's forwards, so the
-- gradient reaches weight_orig masked and pruned weights stay zero whatever an optimizer does to
-- weight_orig. tide.prune (prune.lua) and compact.lua use it; nothing else should.
local tide = require "tide"

local M = {}

-- module.lua's registry (m._kind, m._order): `from` becomes `to` in place, same kind and position,
-- so parameters() and state dicts keep their order; `to` nil forgets the key
local function rename(m, from, to)
  local kind = m._kind[from]
  local order = m._order[kind]
  for i = #order, 1, -1 do
    if order[i] == from then
      if to then order[i] = to else table.remove(order, i) end
    end
  end
  m._kind[from] = nil
  if to then
    m._kind[to] = kind
    rawset(m, to, rawget(m, from))
  end
  rawset(m, from, nil)
end

-- the set of m's masked tensor names, or nil
function M.pruned(m) return rawget(m, "_pruned") end

function M.is_masked(m, name) return M.pruned(m) ~= nil and M.pruned(m)[name] == true end

-- the tensor m computes with: weight_orig * weight_mask when masked
function M.effective(m, name)
  if M.is_masked(m, name) then return rawget(m, name .. "_orig") * rawget(m, name .. "_mask") end
  return rawget(m, name)
end

-- the parameter itself: weight_orig when masked
function M.original(m, name) return rawget(m, name .. "_orig") or rawget(m, name) end

local function apply(m)
  for name in pairs(M.pruned(m)) do rawset(m, name, M.effective(m, name)) end
end

-- the mask of m's tensor `name`, created (all ones) the first time, which reparametrizes it
function M.mask(m, name)
  if not M.pruned(m) then
    local fwd = m.forward
    rawset(m, "_pruned", {})
    rawset(m, "forward", function(self, ...)   -- the masks, then the layer's own forward
      apply(self)
      return fwd(self, ...)
    end)
  end
  if not M.pruned(m)[name] then
    local t = rawget(m, name)
    rename(m, name, name .. "_orig")
    m:register_buffer(name .. "_mask", tide.ones_like(t))
    M.pruned(m)[name] = true
  end
  return rawget(m, name .. "_mask")
end

function M.set(m, name, mask)
  tide.no_grad(function()
    M.mask(m, name):copy_(mask)
    apply(m)
  end)
end

-- makes m's masks permanent: weight_orig *= weight_mask, renamed weight, the mask dropped
function M.remove(m)
  if not M.pruned(m) then return end
  tide.no_grad(function()
    for name in pairs(M.pruned(m)) do
      rawget(m, name .. "_orig"):mul_(rawget(m, name .. "_mask"))
      rename(m, name .. "_mask", nil)
      rawset(m, name, nil)
      rename(m, name .. "_orig", name)
    end
  end)
  rawset(m, "forward", nil)
  rawset(m, "_pruned", nil)
end

return M
