-- stdlib/tide/optim/schedulers.lua: learning-rate schedulers, stepped after the optimizer
-- (opt:step(); sched:step()). StepLR, ExponentialLR and CosineAnnealingLR use PyTorch 1.13's
-- chainable formulas (each lr derived from the group's current lr), so their sequences match
-- torch.optim.lr_scheduler to the last bit; LinearWarmup ramps up then hands over to `after`;
-- ReduceLROnPlateau watches a metric. Each sets every group's lr (opt.lr reads it back).
local tide = require "tide"
local Optimizer = require "tide.optim.optimizer"

local common = {}

local function fail(name, msg) error(name .. ": " .. msg, 0) end

local function lrs(opt)
  local t = {}
  for i, g in ipairs(opt.param_groups) do t[i] = g.lr end
  return t
end

local function set_lrs(self, values)
  for i, g in ipairs(self.optimizer.param_groups) do g.lr = values[i] end
end

-- The lr of every parameter group after the last step (a new list).
function common:get_last_lr()
  return table.move(self._last_lr, 1, #self._last_lr, 1, {})
end

-- One scheduler step; `metric` is what ReduceLROnPlateau watches (and passes to `after`).
function common:step(metric)
  self._spec.step(self, metric)
  self._last_lr = lrs(self.optimizer)
end

local function copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = copy(x) end
  return t
end

-- Plain numbers, strings and lists: the options and the counters (last_epoch, base_lrs...).
function common:state_dict()
  local sd = {}
  for k, v in pairs(self) do
    if k ~= "optimizer" and k ~= "_spec" and k ~= "after" then sd[k] = copy(v) end
  end
  if self.after then sd.after = self.after:state_dict() end
  return sd
end

local function restore(cur, v) -- values read back from a file may be strings and string keys
  if type(cur) == "number" and type(v) == "string" then
    return v == "inf" and math.huge or v == "-inf" and -math.huge or tonumber(v) or v
  elseif type(cur) == "table" and type(v) == "table" then
    local t = {}
    for k, x in pairs(v) do t[tonumber(k) or k] = restore(cur[1], x) end
    return t
  end
  return v
end

-- Checks sd against this scheduler (only keys it has, each value of the type it holds there,
-- lists of numbers included) and returns the function that applies it, changing nothing; errors are
-- raised at level 0.
local function prepare_load(self, sd)
  local name = self._spec.name
  if type(sd) ~= "table" then fail(name, "load_state_dict expects a table, got " .. type(sd)) end
  local new, after = {}, nil
  for k, v in pairs(sd) do
    if k == "after" then
      if self.after then after = prepare_load(self.after, v) end
    elseif k ~= "optimizer" and k ~= "_spec" then
      local cur, val = self[k], restore(self[k], copy(v))
      if cur == nil then
        fail(name, ("load_state_dict: unknown key '%s' (the state of another scheduler?)")
             :format(tostring(k)))
      end
      local ok = type(val) == type(cur)
      if ok and type(cur) == "table" then
        for _, x in pairs(val) do ok = ok and (cur[1] == nil or type(x) == type(cur[1])) end
      end
      if not ok then
        fail(name, ("load_state_dict: '%s' is %s, expected %s"):format(tostring(k),
             type(val) == "string" and ("%q"):format(val) or type(val), type(cur)))
      end
      new[k] = val
    end
  end
  return function()
    for k, v in pairs(new) do self[k] = v end
    if after then after() end
  end
end
common._prepare_load = prepare_load -- checkpoint.load checks every part before it applies any

function common:load_state_dict(sd)
  local ok, apply = pcall(prepare_load, self, sd)
  if not ok then error(apply, 2) end
  apply()
end

local function describe(self)
  local parts, lr = {}, {}
  for _, k in ipairs(self._spec.order) do
    if k ~= "after" and self[k] ~= nil and type(self[k]) ~= "table" then
      parts[#parts + 1] = k .. "=" .. tostring(self[k])
    end
  end
  for i, v in ipairs(self._last_lr) do lr[i] = ("%g"):format(v) end
  parts[#parts + 1] = "last_epoch=" .. tostring(self.last_epoch)
  parts[#parts + 1] = "lr={" .. table.concat(lr, ", ") .. "}"
  return self._spec.name .. "(" .. table.concat(parts, ", ") .. ")"
end

-- Declares a scheduler: spec = {name, order = option names (positional entries follow it),
-- options = {name = default or "required"}, check(self) -> message, init(self), get_lr(self)
-- (chainable schedulers) or step(self, metric)}.
local function class(spec)
  local meta = {__index = common, __tostring = describe, __name = "optim." .. spec.name}
  local function new(_, opt, opts)
    local name = spec.name
    if type(opt) ~= "table" or type(opt.param_groups) ~= "table" then
      fail(name, "expected an optimizer, got " .. type(opt))
    end
    opts = Optimizer.named(name, opts, spec.order)
    local self = setmetatable({optimizer = opt, _spec = spec}, meta)
    for k, v in pairs(opts) do
      if spec.options[k] == nil then fail(name, "unknown option '" .. tostring(k) .. "'") end
      self[k] = v
    end
    for k, def in pairs(spec.options) do
      if self[k] == nil then
        if def == "required" then fail(name, k .. " is required") end
        self[k] = def
      end
    end
    local msg = spec.check and spec.check(self)
    if msg then fail(name, msg) end
    spec.init(self)
    self._last_lr = lrs(opt)
    return self
  end
  return setmetatable({name = spec.name}, {__call = function(...)
    local ok, r = pcall(new, ...)
    if not ok then error(r, 2) end
    return r
  end})
end

local function positive(self, k, integer)
  local v = self[k]
  if type(v) ~= "number" or v ~= v or v <= 0 or (integer and v % 1 ~= 0) then
    return ("%s must be a positive %s, got %s"):format(k, integer and "integer" or "number",
                                                      tostring(v))
  end
end

local function number(self, k)
  if type(self[k]) ~= "number" then
    return ("%s must be a number, got %s"):format(k, type(self[k]))
  end
end

-- PyTorch's _LRScheduler: base_lrs from each group's initial_lr, then one step to epoch 0.
local function chainable_init(self)
  for _, g in ipairs(self.optimizer.param_groups) do
    if g.initial_lr == nil then g.initial_lr = g.lr end
  end
  self.base_lrs = {}
  for i, g in ipairs(self.optimizer.param_groups) do self.base_lrs[i] = g.initial_lr end
  self.last_epoch, self._step_count = -1, 0
  self._spec.step(self)
end

local function chainable_step(self)
  self._step_count = self._step_count + 1
  self.last_epoch = self.last_epoch + 1
  set_lrs(self, self._spec.get_lr(self))
end

local M = {Scheduler = common} -- optim.Scheduler: what every scheduler shares

M.StepLR = class {
  name = "StepLR", order = {"step_size", "gamma"},
  options = {step_size = "required", gamma = 0.1},
  check = function(self) return positive(self, "step_size", true) or number(self, "gamma") end,
  init = chainable_init, step = chainable_step,
  get_lr = function(self)
    local e, out = self.last_epoch, {}
    for i, g in ipairs(self.optimizer.param_groups) do
      out[i] = (e == 0 or e % self.step_size ~= 0) and g.lr or g.lr * self.gamma
    end
    return out
  end,
}

M.ExponentialLR = class {
  name = "ExponentialLR", order = {"gamma"},
  options = {gamma = "required"},
  check = function(self) return number(self, "gamma") end,
  init = chainable_init, step = chainable_step,
  get_lr = function(self)
    local out = {}
    for i, g in ipairs(self.optimizer.param_groups) do
      out[i] = self.last_epoch == 0 and g.lr or g.lr * self.gamma
    end
    return out
  end,
}

-- The recursive form PyTorch steps with (not the closed form), so lrs match it exactly and
-- changes made to the lr from outside carry on; past T_max the cosine climbs back up.
M.CosineAnnealingLR = class {
  name = "CosineAnnealingLR", order = {"T_max", "eta_min"},
  options = {T_max = "required", eta_min = 0},
  check = function(self) return positive(self, "T_max") or number(self, "eta_min") end,
  init = chainable_init, step = chainable_step,
  get_lr = function(self)
    local e, T, eta, pi, cos = self.last_epoch, self.T_max, self.eta_min, math.pi, math.cos
    local out = {}
    for i, g in ipairs(self.optimizer.param_groups) do
      if e == 0 then
        out[i] = g.lr
      elseif (e - 1 - T) % (2 * T) == 0 then
        out[i] = g.lr + (self.base_lrs[i] - eta) * (1 - cos(pi / T)) / 2
      else
        out[i] = (1 + cos(pi * e / T)) / (1 + cos(pi * (e - 1) / T)) * (g.lr - eta) + eta
      end
    end
    return out
  end,
}

-- lr = base * k / warmup_steps on optimizer steps k = 1..warmup_steps; the last of them is also
-- `after`'s epoch 0, so `after` (stepped from then on) starts at the full lr.
M.LinearWarmup = class {
  name = "LinearWarmup", order = {"warmup_steps", "after"},
  options = {warmup_steps = "required", after = false},
  check = function(self)
    local msg = positive(self, "warmup_steps", true)
    if msg then return msg end
    local a = self.after
    if a and (type(a) ~= "table" or type(a.step) ~= "function" or not a.optimizer) then
      return "after must be a scheduler, got " .. type(a)
    end
    if a and a.optimizer ~= self.optimizer then
      return "after must schedule the same optimizer"
    end
  end,
  init = function(self)
    self.after = self.after or nil
    for _, g in ipairs(self.optimizer.param_groups) do
      if g.initial_lr == nil then g.initial_lr = g.lr end
    end
    self.base_lrs = {}
    for i, g in ipairs(self.optimizer.param_groups) do self.base_lrs[i] = g.initial_lr end
    self.last_epoch = -1
    self._spec.step(self)
  end,
  step = function(self, metric)
    local e, W = self.last_epoch + 1, self.warmup_steps
    self.last_epoch = e
    if e < W then
      local out = {}
      for i, base in ipairs(self.base_lrs) do out[i] = base * (e + 1) / W end
      set_lrs(self, out)
    elseif self.after then
      self.after:step(metric)
    end
  end,
}

local function checkmetric(metric)
  if tide.is_tensor(metric) then
    if metric:numel() ~= 1 then
      fail("ReduceLROnPlateau", "step: the metric must have one element, got shape " ..
           table.concat(metric.shape, "x"))
    end
    return metric:item()
  end
  if type(metric) ~= "number" then
    fail("ReduceLROnPlateau", "step needs the metric it watches (sched:step(val_loss)), got " ..
         type(metric))
  end
  return metric
end

M.ReduceLROnPlateau = class {
  name = "ReduceLROnPlateau",
  order = {"mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr",
           "eps"},
  options = {mode = "min", factor = 0.1, patience = 10, threshold = 1e-4, threshold_mode = "rel",
             cooldown = 0, min_lr = 0, eps = 1e-8},
  check = function(self)
    if self.mode ~= "min" and self.mode ~= "max" then
      return "mode must be \"min\" or \"max\", got " .. tostring(self.mode)
    end
    if self.threshold_mode ~= "rel" and self.threshold_mode ~= "abs" then
      return "threshold_mode must be \"rel\" or \"abs\", got " .. tostring(self.threshold_mode)
    end
    for _, k in ipairs {"factor", "patience", "threshold", "cooldown", "eps"} do
      local msg = number(self, k)
      if msg then return msg end
    end
    if self.factor ~= self.factor or self.factor >= 1 then
      return "factor must be < 1, got " .. self.factor
    end
    local n, m = #self.optimizer.param_groups, self.min_lr
    if type(m) == "table" and #m ~= n then
      return ("min_lr must be a number or a list of %d numbers, got %d"):format(n, #m)
    elseif type(m) ~= "table" and type(m) ~= "number" then
      return "min_lr must be a number or a list, got " .. type(m)
    end
  end,
  init = function(self)
    local n, m = #self.optimizer.param_groups, self.min_lr
    self.min_lrs = {}
    for i = 1, n do self.min_lrs[i] = type(m) == "table" and m[i] or m end
    if type(m) == "table" then self.min_lr = nil end -- min_lrs holds it; state stays flat
    self.last_epoch, self.cooldown_counter, self.num_bad_epochs = 0, 0, 0
    self.best = self.mode == "min" and math.huge or -math.huge
  end,
  step = function(self, metric)
    local cur = checkmetric(metric)
    self.last_epoch = self.last_epoch + 1
    local better
    if self.mode == "min" then
      better = self.threshold_mode == "rel" and cur < self.best * (1 - self.threshold)
               or self.threshold_mode == "abs" and cur < self.best - self.threshold
    else
      better = self.threshold_mode == "rel" and cur > self.best * (self.threshold + 1)
               or self.threshold_mode == "abs" and cur > self.best + self.threshold
    end
    if better then
      self.best, self.num_bad_epochs = cur, 0
    else
      self.num_bad_epochs = self.num_bad_epochs + 1
    end
    if self.cooldown_counter > 0 then -- bad epochs in cooldown do not count
      self.cooldown_counter = self.cooldown_counter - 1
      self.num_bad_epochs = 0
    end
    if self.num_bad_epochs > self.patience then
      for i, g in ipairs(self.optimizer.param_groups) do
        local new = math.max(g.lr * self.factor, self.min_lrs[i])
        if g.lr - new > self.eps then g.lr = new end
      end
      self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
    end
  end,
}

return M
