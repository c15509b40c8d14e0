-- stdlib/tide/nn_utils.lua: gradient clipping (nn.utils): clip_grad_norm_ and clip_grad_value_
-- as torch.nn.utils (1.13). A function table; tide.nn exposes it as nn.utils.
local tide = require "tide"

local utils = {}

-- The gradients of a tensor, a list of tensors or a module (:parameters()); nil grads skipped.
local function grads_of(fn, params)
  if not tide.is_tensor(params) then
    local ok, f = pcall(function() return params.parameters end)
    if ok and type(f) == "function" then
      params = params:parameters()
    elseif type(params) ~= "table" then
      error(fn .. ": expected a tensor, a list of tensors or a module, got " .. type(params), 3)
    end
  end
  if tide.is_tensor(params) then params = {params} end
  local grads = {}
  for i, p in ipairs(params) do
    if not tide.is_tensor(p) then
      error(("%s: parameter %d is a %s, expected a tensor"):format(fn, i, type(p)), 3)
    end
    local g = p.grad
    if g then grads[#grads + 1] = g end
  end
  return grads
end

local function norm_of(g, p)
  if p == 2 then return g:norm():item() end
  local a = g:abs()
  if p == math.huge then return a:max():item() end
  if p == 1 then return a:sum():item() end
  return ((a ^ p):sum():item()) ^ (1 / p)
end

-- Scales every gradient by max_norm / (total + 1e-6) when that is below 1, where total is the
-- norm of all gradients taken together; returns total as a 0-dim tensor.
function utils.clip_grad_norm_(params, max_norm, opts)
  local fn = "clip_grad_norm_"
  if type(opts) == "number" then opts = {norm_type = opts} end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "norm_type" and k ~= "error_if_nonfinite" then
      error(fn .. ": unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  if type(max_norm) ~= "number" or not (max_norm >= 0) then -- NaN too: it would NaN every grad
    error(fn .. ": max_norm must be a number >= 0, got " ..
          (type(max_norm) ~= "number" and type(max_norm) or tostring(max_norm)), 2)
  end
  local p = opts.norm_type or 2
  if type(p) ~= "number" or p ~= p or p <= 0 then
    error(fn .. ": norm_type must be a positive number (math.huge for the max norm), got " ..
          tostring(p), 2)
  end
  local grads = grads_of(fn, params)
  if #grads == 0 then return tide.tensor(0) end
  local total = 0
  if p == math.huge then
    for _, g in ipairs(grads) do total = math.max(total, norm_of(g, p)) end
  else
    for _, g in ipairs(grads) do total = total + norm_of(g, p) ^ p end
    total = total ^ (1 / p)
  end
  if opts.error_if_nonfinite and (total ~= total or total == math.huge) then
    error(("%s: the total norm of order %g of the gradients is %s, so they cannot be clipped " ..
           "(set error_if_nonfinite = false to scale them anyway)"):format(fn, p, tostring(total)), 2)
  end
  local coef = max_norm / (total + 1e-6)
  if coef ~= coef or coef < 1 then -- NaN scales too, as in PyTorch: the gradients become NaN
    tide.no_grad(function()
      for _, g in ipairs(grads) do g:mul_(coef) end
    end)
  end
  return tide.tensor(total, {dtype = grads[1].dtype})
end

-- Clamps every gradient element to [-clip_value, clip_value] in place.
function utils.clip_grad_value_(params, clip_value)
  if type(clip_value) ~= "number" or clip_value ~= clip_value or clip_value < 0 then
    error("clip_grad_value_: clip_value must be a number >= 0, got " .. tostring(clip_value), 2)
  end
  local grads = grads_of("clip_grad_value_", params)
  tide.no_grad(function()
    for _, g in ipairs(grads) do g:clamp_(-clip_value, clip_value) end
  end)
end

return utils
