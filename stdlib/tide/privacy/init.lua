-- stdlib/tide/privacy/init.lua: tide.privacy, differentially private training (doc/privacy.md).
-- make_private turns a model, an optimizer and a loader into DP-SGD's: the model's layers record
-- what per-example gradients need (grad_sample.lua), the optimizer clips, noises and accounts
-- (optimizer.lua), the loader samples Poisson batches (loader.lua); accountant.lua bounds epsilon.
local tide = require "tide"
local accountant = require "tide.privacy.accountant"
local gs = require "tide.privacy.grad_sample"
local loaders = require "tide.privacy.loader"
local dpopt = require "tide.privacy.optimizer"
local seeds = require "tide.data.seed"

local M = {}

local function class_of(m) return getmetatable(m).__name end

local function positive(fn, k, v, open_ok)
  if type(v) ~= "number" or v ~= v or v < 0 or (v == 0 and not open_ok) then
    error(("%s: %s must be a %s number, got %s"):format(fn, k, open_ok and "non-negative" or
          "positive", tostring(v)), 3)
  end
  return v
end

local function check_delta(fn, delta)
  if type(delta) ~= "number" or not (delta > 0 and delta < 1) then
    error(("%s: delta must be a number in (0, 1), got %s"):format(fn, tostring(delta)), 3)
  end
end

-- tide.privacy.epsilon{noise_multiplier=, sample_rate=, steps=, delta=}
function M.epsilon(o)
  local fn = "tide.privacy.epsilon"
  if type(o) ~= "table" then error(fn .. ": expected a table {noise_multiplier =, sample_rate =, "
                                   .. "steps =, delta =}, got " .. type(o), 2) end
  for k in pairs(o) do
    if k ~= "noise_multiplier" and k ~= "sample_rate" and k ~= "steps" and k ~= "delta" then
      error(fn .. ": unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  local sigma, q = positive(fn, "noise_multiplier", o.noise_multiplier, true), o.sample_rate
  if type(q) ~= "number" or not (q >= 0 and q <= 1) then
    error(fn .. ": sample_rate must be a number in [0, 1], got " .. tostring(q), 2)
  end
  local steps = math.tointeger(o.steps)
  if not steps or steps < 0 then
    error(fn .. ": steps must be a non-negative integer, got " .. tostring(o.steps), 2)
  end
  check_delta(fn, o.delta)
  return accountant.epsilon(sigma, q, steps, o.delta)
end

-- tide.privacy.get_noise_multiplier(target_epsilon, delta, sample_rate, epochs [, {tolerance}])
function M.get_noise_multiplier(target, delta, q, epochs, opts)
  local fn = "tide.privacy.get_noise_multiplier"
  positive(fn, "target_epsilon", target)
  check_delta(fn, delta)
  if type(q) ~= "number" or not (q > 0 and q <= 1) then
    error(fn .. ": sample_rate must be a number in (0, 1], got " .. tostring(q), 2)
  end
  positive(fn, "epochs", epochs)
  local sigma = accountant.noise_multiplier(target, delta, q, epochs, opts and opts.tolerance)
  if not sigma then
    error(("%s: no noise multiplier up to 1e6 reaches epsilon %g"):format(fn, target), 2)
  end
  return sigma
end

---- make_private ------------------------------------------------------------------------------

-- a list of the tape entries of the layers' calls since the last step, with clear()
local function new_tape()
  local tape = {}
  function tape.clear() for i = #tape, 1, -1 do tape[i] = nil end end
  return tape
end

-- Layer m's calls under grad mode run with its trainable parameters detached (a forward
-- pre-hook swaps them, the forward hook puts them back), keep their input, and add a zero probe
-- leaf to their output: backward leaves d loss / d output in probe.grad, even for a first layer
-- whose output nothing else tracks.
local function instrument(m, tape)
  local kind, own = class_of(m), {}
  for _, k in ipairs(m._order.parameter) do
    local p = rawget(m, k)
    if tide.is_tensor(p) and p.requires_grad then own[k] = p end
  end
  local active = false
  m:register_forward_pre_hook(function(mod)
    active = tide.is_grad_enabled()
    if active then for k, p in pairs(own) do rawset(mod, k, p:detach()) end end
  end)
  m:register_forward_hook(function(mod, input, out)
    if not active then return nil end
    for k, p in pairs(own) do rawset(mod, k, p) end
    local probe = tide.zeros(out.shape, {dtype = out.dtype, requires_grad = true})
    tape[#tape + 1] = {m = mod, kind = kind, x = input[1]:detach(), probe = probe}
    return out + probe
  end)
end

-- every module with trainable parameters of its own must have a rule; BatchNorm is refused
local function check_model(model)
  local fn = "tide.privacy.make_private"
  local list = {}
  for name, m in pairs(model:named_modules()) do
    local kind, own = class_of(m), false
    for _, k in ipairs(m._order.parameter) do
      local p = rawget(m, k)
      own = own or (tide.is_tensor(p) and p.requires_grad)
    end
    local where = name == "" and "the model" or "'" .. name .. "'"
    if gs.mixing[kind] then
      error(("%s: %s is %s, which mixes the examples of a batch: per-example gradients do not " ..
             "exist for it; use nn.GroupNorm (or LayerNorm) instead"):format(fn, where,
             m:config()), 3)
    end
    if own and not gs.rules[kind] then
      local known = {}
      for k in pairs(gs.rules) do known[#known + 1] = k end
      table.sort(known)
      error(("%s: %s (%s) has trainable parameters and no per-example gradient rule " ..
             "(supported: %s; freeze it with m:freeze() to train the rest)"):format(fn, where,
             kind, table.concat(known, ", ")), 3)
    end
    if own then list[#list + 1] = m end
  end
  return list
end

local KNOWN = {noise_multiplier = true, max_grad_norm = true, target_epsilon = true,
               target_delta = true, epochs = true, poisson = true, seed = true,
               loss_reduction = true}

-- tide.privacy.make_private(model, optimizer, loader, opts) -> model, optimizer, loader
function M.make_private(model, opt, loader, o)
  local fn = "tide.privacy.make_private"
  if type(model) ~= "table" or not model.named_modules then
    error(fn .. ": expected a model (an nn.Module), got " .. type(model), 2)
  end
  if type(opt) ~= "table" or not opt.param_groups then
    error(fn .. ": expected an optimizer (optim.SGD, ...), got " .. type(opt), 2)
  end
  if type(loader) ~= "table" or not loader.fetch or not loader.dataset then
    error(fn .. ": expected a data.DataLoader, got " .. tostring(loader), 2)
  end
  if type(o) ~= "table" then error(fn .. ": expected an options table, got " .. type(o), 2) end
  for k in pairs(o) do
    if not KNOWN[k] then error(fn .. ": unknown option '" .. tostring(k) .. "'", 2) end
  end
  if rawget(model, "_dp_tape") then error(fn .. ": the model is private already", 2) end
  local C = positive(fn, "max_grad_norm", o.max_grad_norm)
  local delta = o.target_delta or 1e-5
  check_delta(fn, delta)
  if o.noise_multiplier == nil and o.target_epsilon == nil then
    error(fn .. ": give noise_multiplier or target_epsilon (with epochs)", 2)
  end
  local red = o.loss_reduction or "mean"
  if red ~= "mean" and red ~= "sum" then
    error(fn .. ": loss_reduction must be \"mean\" or \"sum\", got " .. tostring(red), 2)
  end
  if #loader == 0 then error(fn .. ": the loader has no batches", 2) end
  local q = 1 / #loader               -- Opacus's sample rate: one expected pass per epoch
  local sigma = o.noise_multiplier
  if o.target_epsilon ~= nil then positive(fn, "target_epsilon", o.target_epsilon) end
  if sigma ~= nil then
    positive(fn, "noise_multiplier", sigma, true)
  else
    if o.epochs == nil then error(fn .. ": target_epsilon needs epochs", 2) end
    positive(fn, "epochs", o.epochs)
    sigma = accountant.noise_multiplier(o.target_epsilon, delta, q, o.epochs)
  end
  local seed = o.seed ~= nil and math.tointeger(o.seed)
  if o.seed ~= nil and not seed then error(fn .. ": seed must be an integer, got " .. tostring(o.seed), 2) end
  local layers = check_model(model)
  local tape = new_tape()
  for _, m in ipairs(layers) do instrument(m, tape) end
  rawset(model, "_dp_tape", tape)
  local poisson = o.poisson ~= false
  local dl = poisson and loaders.new(loader, q, seed and seeds.mix(seed, 1) or seeds.draw(tide))
             or loader
  local st = {tape = tape, noise_multiplier = sigma, max_grad_norm = C, sample_rate = q,
              expected_batch_size = poisson and dl.expected_batch_size or loader.batch_size,
              delta = delta, target_epsilon = o.target_epsilon, steps = 0,
              seed = seed and seeds.mix(seed, 2), loss_reduction = red}
  return model, dpopt.wrap(opt, st), dl
end

M.accountant = accountant

return M
