-- stdlib/tide/nn/loss.lua: the losses as modules, `loss(input, target)`, each calling its
-- tide.* op (doc/nn_functional.md) with the options given to the constructor.
local tide = require "tide"
local M = require "tide.nn.module"
local U = require "tide.nn.util"
local call = U.call

local Module = M.Module

local REDUCTIONS = {mean = true, sum = true, none = true}

-- the intervals of the numeric options (checked when the loss is built, not at its first call)
local RANGES = {label_smoothing = "[0, 1]", beta = "[0, inf)"}

-- name: the class; op: the tide.* function; extra: its options besides reduction (their
-- defaults; `false` for an option that is left out unless given)
local function loss(name, op, extra, reductions)
  local cls = Module:extend(name)
  local defaults = {reduction = "mean"}
  for k, v in pairs(extra or {}) do defaults[k] = v end
  function cls:init(opts)
    if opts ~= nil and type(opts) ~= "table" then
      error(name .. ": options must be a table, got " .. type(opts), 3)
    end
    local o = {}
    for k, v in pairs(opts or {}) do
      if defaults[k] == nil then error(name .. ": unknown option '" .. tostring(k) .. "'", 3) end
      o[k] = v
    end
    local r = o.reduction or "mean"
    if not (REDUCTIONS[r] or (reductions and reductions[r])) then
      error(("%s: reduction must be \"mean\", \"sum\"%s or \"none\", got %s"):format(name,
            reductions and ", \"batchmean\"" or "", tostring(r)), 3)
    end
    o.reduction = r
    self._opts = o
    for k, range in pairs(RANGES) do
      if o[k] ~= nil then U.in_range(self:config(), k, o[k], range) end
    end
    for k, v in pairs(defaults) do
      local val = o[k]
      if val == nil then val = v end
      if val ~= false then rawset(self, k, val) end
    end
  end
  function cls:config()
    local keys, parts = {}, {}
    for k in pairs(self._opts) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local v = self._opts[k]
      if v ~= defaults[k] then
        parts[#parts + 1] = k .. " = " .. (type(v) == "string" and ("%q"):format(v) or
                            tide.is_tensor(v) and "tensor" or tostring(v))
      end
    end
    return name .. "(" .. (#parts > 0 and "{" .. table.concat(parts, ", ") .. "}" or "") .. ")"
  end
  function cls:extra_repr() return self:config():match("^" .. name .. "%((.*)%)$") end
  function cls:forward(input, target)
    if not tide.is_tensor(input) or not tide.is_tensor(target) then
      error(("%s: expected input and target tensors, got %s and %s"):format(self:config(),
            type(input), type(target)), 2)
    end
    return call(self, tide[op], input, target, self._opts)
  end
  return cls
end

return {
  CrossEntropyLoss = loss("CrossEntropyLoss", "cross_entropy",
                          {label_smoothing = 0, ignore_index = false}),
  NLLLoss = loss("NLLLoss", "nll_loss", {ignore_index = false}),
  MSELoss = loss("MSELoss", "mse_loss"),
  L1Loss = loss("L1Loss", "l1_loss"),
  SmoothL1Loss = loss("SmoothL1Loss", "smooth_l1_loss", {beta = 1}),
  BCELoss = loss("BCELoss", "binary_cross_entropy"),
  BCEWithLogitsLoss = loss("BCEWithLogitsLoss", "binary_cross_entropy_with_logits",
                           {pos_weight = false}),
  KLDivLoss = loss("KLDivLoss", "kl_div", {log_target = false}, {batchmean = true}),
}
