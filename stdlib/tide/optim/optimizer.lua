-- stdlib/tide/optim/optimizer.lua: the base of every optimizer: parameter groups, per-parameter
-- state, step (one fused C update per parameter with a gradient), zero_grad, state_dict and the
-- opt.lr property. An optimizer module only supplies its defaults, checks and update function.
local tide = require "tide"

local Optimizer = {}
local methods = {}

-- Errors carry no position here: the public entry points (guard) re-raise them at the caller.
local function fail(name, msg) error(name .. ": " .. msg, 0) end

local function guard(f)
  return function(...)
    local r = table.pack(pcall(f, ...))
    if not r[1] then error(r[2], 2) end
    return table.unpack(r, 2, r.n)
  end
end

local function is_list(t)
  return type(t) == "table" and not tide.is_tensor(t) and (#t > 0 or next(t) == nil)
end

-- A module (anything with :parameters()) stands for its parameter list.
local function parameters_of(x)
  if tide.is_tensor(x) then return {x} end
  local ok, f = pcall(function() return x.parameters end)
  if ok and type(f) == "function" and (type(x) ~= "table" or x.params == nil) then
    return x:parameters()
  end
  return x
end

-- Positional entries of an options table name the first options: {0.1, momentum = 0.9}.
local function named(name, opts, order)
  if opts == nil then return {} end
  if type(opts) ~= "table" then fail(name, "expected an options table, got " .. type(opts)) end
  local out = {}
  for k, v in pairs(opts) do
    if math.type(k) == "integer" then
      local key = order[k]
      if not key then fail(name, "unexpected positional option " .. k) end
      if opts[key] ~= nil then fail(name, "option '" .. key .. "' given twice") end
      out[key] = v
    else
      out[k] = v
    end
  end
  return out
end
Optimizer.named = named

-- Fills a group's options from the spec's defaults and checks them; where names the group.
local function check_group(spec, group, where)
  local name = spec.name
  for k in pairs(group) do
    if k ~= "params" and k ~= "initial_lr" and spec.defaults[k] == nil then
      fail(name, "unknown option '" .. tostring(k) .. "'" .. where)
    end
  end
  for k, def in pairs(spec.defaults) do
    if group[k] == nil then
      if def == "required" then fail(name, k .. " is required" .. where) end
      group[k] = type(def) == "table" and table.move(def, 1, #def, 1, {}) or def
    end
    local v, want = group[k], def == "required" and "number" or type(def)
    if type(v) ~= want then
      fail(name, ("%s must be a %s, got %s"):format(k, want, type(v)) .. where)
    end
  end
  if group.lr ~= group.lr or group.lr < 0 then
    fail(name, "lr must be >= 0, got " .. tostring(group.lr) .. where)
  end
  for _, k in ipairs {"weight_decay", "eps", "momentum", "dampening", "alpha", "lr_decay",
                      "initial_accumulator_value"} do
    local v = group[k]
    if v ~= nil and (v ~= v or v < 0) then
      fail(name, ("%s must be >= 0, got %s"):format(k, tostring(v)) .. where)
    end
  end
  if spec.check then
    local msg = spec.check(group)
    if msg then fail(name, msg .. where) end
  end
end

local function check_params(name, list, seen, where)
  list = parameters_of(list)
  if not is_list(list) then
    fail(name, "expected a list of tensors" .. where .. ", got " .. type(list))
  end
  for i, p in ipairs(list) do
    if not tide.is_tensor(p) then
      fail(name, ("parameter %d%s is a %s, expected a tensor"):format(i, where, type(p)))
    end
    if p.dtype ~= "float32" and p.dtype ~= "float64" then
      fail(name, ("parameter %d%s is %s, expected float32 or float64"):format(i, where, p.dtype))
    end
    if not p.is_leaf then
      fail(name, ("parameter %d%s is not a leaf (it has grad_fn %s): optimize the tensor it " ..
                  "was computed from"):format(i, where, p.grad_fn))
    end
    if seen[p] then fail(name, ("parameter %d%s appears twice"):format(i, where)) end
    seen[p] = i
  end
  return table.move(list, 1, #list, 1, {})
end

-- Appends group {params=..., option=value...}; its missing options come from the defaults.
local function add_group(self, group, where)
  local spec = self._spec
  local k = #self.param_groups + 1
  where = where or " (group " .. k .. ")"
  if type(group) ~= "table" or tide.is_tensor(group) then
    fail(spec.name, "a parameter group must be a table {params = ...}" .. where)
  end
  local g = {}
  for key, v in pairs(group) do g[key] = v end
  local seen = setmetatable({}, {__index = self._seen}) -- committed once the group is valid
  g.params = check_params(spec.name, group.params, seen, where)
  if #g.params == 0 then fail(spec.name, "empty parameter list" .. where) end
  for key, v in pairs(self.defaults) do
    if g[key] == nil and v ~= "required" then
      g[key] = type(v) == "table" and table.move(v, 1, #v, 1, {}) or v
    end
  end
  check_group(spec, g, where)
  for p in pairs(seen) do self._seen[p] = true end
  local base = 0
  for _, gr in ipairs(self.param_groups) do base = base + #gr.params end
  self.param_groups[k] = g
  if spec.init then -- eager state (Adagrad's accumulator)
    for j, p in ipairs(g.params) do self.state[base + j] = spec.init(g, p) end
  end
  return self
end
methods.add_param_group = guard(add_group)

-- Builds an optimizer of the class described by spec (see Optimizer.class) from (params, opts).
local function new(spec, params, opts)
  local name = spec.name
  opts = named(name, opts, spec.order or {"lr"})
  params = parameters_of(params)
  if type(params) ~= "table" then
    fail(name, "expected a list of tensors or of parameter groups, got " .. type(params))
  end
  if #params == 0 then
    fail(name, next(params) == nil and "empty parameter list" or
         "expected a list of tensors or of groups, got a table with no list part " ..
         "(pass model:parameters())")
  end
  local self = setmetatable({param_groups = {}, state = {}, _spec = spec, _seen = {}},
                            spec.meta)
  local defaults = {}
  for k, v in pairs(opts) do
    if spec.defaults[k] == nil then fail(name, "unknown option '" .. tostring(k) .. "'") end
    defaults[k] = v
  end
  for k, v in pairs(spec.defaults) do if defaults[k] == nil then defaults[k] = v end end
  self.defaults = defaults
  local first = params[1]
  if type(first) == "table" and not tide.is_tensor(first) then
    for _, g in ipairs(params) do add_group(self, g) end
  else
    add_group(self, {params = params}, "")
  end
  return self
end

-- One update of every parameter that has a gradient (closure: recomputes and returns the loss).
function methods:step(closure)
  local loss
  if closure ~= nil then
    if type(closure) ~= "function" then
      error(self._spec.name .. ": step expects a closure or nothing, got " .. type(closure), 2)
    end
    loss = closure()
  end
  local update, state, i = self._spec.update, self.state, 0
  for _, group in ipairs(self.param_groups) do
    for _, p in ipairs(group.params) do
      i = i + 1
      local g = p.grad
      if g then
        local st = state[i]
        if not st then st = {}; state[i] = st end
        update(group, p, g, st)
      end
    end
  end
  return loss
end

-- Clears every gradient (.grad = nil); zero_grad(false) zeroes them in place instead.
function methods:zero_grad(set_to_none)
  for _, group in ipairs(self.param_groups) do
    for _, p in ipairs(group.params) do
      if set_to_none == false then
        local g = p.grad
        if g then g:zero_() end
      else
        p.grad = nil
      end
    end
  end
end

local function copy_value(v)
  if tide.is_tensor(v) then return v:clone() end
  if type(v) == "table" then
    local t = {}
    for k, x in pairs(v) do t[k] = copy_value(x) end
    return t
  end
  return v
end

-- {state = {[i] = {step=, buffers...}}, param_groups = {{lr=, ..., params = {i...}}}, class =
-- "Adam"}: i counts parameters across groups from 1 (PyTorch's packing, 1-based). Tensors are
-- copies (a snapshot).
function methods:state_dict()
  local groups, i = {}, 0
  for k, group in ipairs(self.param_groups) do
    local g = {}
    for key, v in pairs(group) do
      if key ~= "params" then g[key] = copy_value(v) end
    end
    g.params = {}
    for j = 1, #group.params do i = i + 1; g.params[j] = i end
    groups[k] = g
  end
  local state = {}
  for idx, st in pairs(self.state) do state[idx] = copy_value(st) end
  return {state = state, param_groups = groups, class = self._spec.name}
end

-- Saved tables may come back from a file with string keys ("1") and flags as strings or 0/1.
local function as_list(v)
  if type(v) ~= "table" or tide.is_tensor(v) then return v end
  local out = {}
  for k, x in pairs(v) do out[tonumber(k) or k] = x end
  return out
end

local function coerce(cur, v)
  if type(cur) == "boolean" and type(v) ~= "boolean" then
    return v == "true" or v == 1 or v == "1"
  elseif type(cur) == "number" and type(v) == "string" then
    return tonumber(v) or v
  elseif type(cur) == "table" then
    return as_list(v)
  end
  return v
end

local CLASSES = {} -- name -> spec of every optimizer class: options that belong to another

-- The optimizer option k of some other class than spec's (a state_dict of another class?)
local function foreign_option(spec, k)
  if spec.defaults[k] ~= nil or k == "initial_lr" then return nil end
  local owners = {}
  for name, other in pairs(CLASSES) do
    if other.defaults[k] ~= nil then owners[#owners + 1] = name end
  end
  table.sort(owners)
  return #owners > 0 and table.concat(owners, "/") or nil
end

-- A step count from a file: an integer >= 0 (PyTorch keeps it in a tensor, maybe as a float)
local function step_of(v)
  if tide.is_tensor(v) then v = v:numel() == 1 and v:item() or nil end
  v = tonumber(v)
  return v and math.tointeger(v) and v >= 0 and math.tointeger(v) or nil
end

-- Checks a state_dict() against this optimizer (its class, groups, parameter indices, step
-- counts, buffer names and shapes) and builds the new groups and state, changing nothing;
-- returns the function that installs them (it cannot fail). Errors are raised at level 0.
local function prepare_load(self, sd)
  local spec = self._spec
  local name = spec.name
  local function bad(msg, ...) fail(name, "load_state_dict: " .. msg:format(...)) end
  if type(sd) ~= "table" or type(sd.param_groups) ~= "table" or
     (sd.state ~= nil and (type(sd.state) ~= "table" or tide.is_tensor(sd.state))) then
    bad("expected a table with param_groups and state")
  end
  if sd.class ~= nil and sd.class ~= name then
    bad("the state_dict is of %s, not %s", tostring(sd.class), name)
  end
  local saved, params, ids = as_list(sd.param_groups), {}, {}
  if #saved ~= #self.param_groups then
    bad("%d parameter groups saved, the optimizer has %d", #saved, #self.param_groups)
  end
  local total = 0
  for _, group in ipairs(self.param_groups) do total = total + #group.params end
  for k, group in ipairs(self.param_groups) do
    saved[k] = as_list(saved[k])
    if type(saved[k]) ~= "table" then bad("group %d is not a table", k) end
    local keys = {}
    for key in pairs(saved[k]) do keys[#keys + 1] = tostring(key) end
    table.sort(keys) -- the same message every time
    for _, key in ipairs(keys) do
      local owner = foreign_option(spec, key)
      if owner then
        bad("group %d has option '%s' of %s, not of %s (a state_dict of another optimizer?)",
            k, key, owner, name)
      end
    end
    local list = as_list(saved[k].params or {})
    if type(list) ~= "table" or #list ~= #group.params then
      bad("group %d has %d parameters saved, %d in the optimizer", k,
          type(list) == "table" and #list or 0, #group.params)
    end
    for j, p in ipairs(group.params) do -- saved index -> the parameter in the same place
      local i = math.tointeger(tonumber(list[j]))
      if not i or i < 1 or i > total then
        bad("group %d: parameter index %s out of range 1..%d", k, tostring(list[j]), total)
      end
      if params[i] then bad("parameter index %d appears twice", i) end
      params[i], ids[#ids + 1] = p, i
    end
  end
  local state = {}
  for key, st in pairs(sd.state or {}) do
    local i = math.tointeger(tonumber(key))
    local p = i and params[i]
    if not p then bad("state for unknown parameter %s (indices are 1..%d)", tostring(key), total) end
    if state[i] then bad("state for parameter %d appears twice", i) end
    if type(st) ~= "table" or tide.is_tensor(st) then bad("state of parameter %d is not a table", i) end
    local s = {}
    for field, v in pairs(st) do
      if spec.state and not spec.state[field] then -- a class without the list takes any
        bad("state '%s' of parameter %d is not %s state (a state_dict of another optimizer?)",
            tostring(field), i, name)
      elseif field == "step" then
        v = step_of(v)
        if not v then bad("step of parameter %d must be an integer >= 0, got %s", i, tostring(st[field])) end
      elseif not tide.is_tensor(v) then
        bad("state '%s' of parameter %d is a %s, expected a tensor", field, i, type(v))
      elseif table.concat(v.shape, "x") ~= table.concat(p.shape, "x") then
        bad("state '%s' of parameter %d has shape %s, the parameter %s", field, i,
            #v.shape == 0 and "scalar" or table.concat(v.shape, "x"),
            #p.shape == 0 and "scalar" or table.concat(p.shape, "x"))
      else
        v = v:to(p.dtype):contiguous():clone()
      end
      s[field] = v
    end
    state[i] = s
  end
  local groups = {}
  for k, group in ipairs(self.param_groups) do
    local g = {}
    for key, v in pairs(group) do g[key] = v end
    for key, v in pairs(saved[k]) do
      if key ~= "params" and (spec.defaults[key] ~= nil or key == "initial_lr") then
        g[key] = coerce(group[key], copy_value(v))
      end
    end
    check_group(spec, g, " (loaded group " .. k .. ")")
    groups[k] = g
  end
  local ordered = {} -- state by the optimizer's own order of parameters
  for j, i in ipairs(ids) do ordered[j] = state[i] end
  return function()
    for k, g in ipairs(groups) do -- in place: tables users or schedulers hold stay live
      for key, v in pairs(g) do self.param_groups[k][key] = v end
    end
    self.state = ordered
  end
end

-- Restores a state_dict() (hyperparameters and buffers, tensors copied and converted to each
-- parameter's dtype) so that training continues exactly where it was saved; all or nothing.
local function load_state_dict(self, sd)
  prepare_load(self, sd)()
end
methods._prepare_load = prepare_load -- checkpoint.load checks every part before it applies any
methods.load_state_dict = guard(load_state_dict)

-- opt.lr reads the first group's lr; assigning it sets every group's (what schedulers do).
local function index(self, k)
  if k == "lr" then return self.param_groups[1].lr end
  return methods[k]
end

local function newindex(self, k, v)
  if k == "lr" then
    local name = self._spec.name
    if type(v) ~= "number" then error(name .. ": lr must be a number, got " .. type(v), 2) end
    if v ~= v or v < 0 then error(name .. ": lr must be >= 0, got " .. tostring(v), 2) end
    for _, group in ipairs(self.param_groups) do group.lr = v end
  else
    rawset(self, k, v)
  end
end

local function fmt(v)
  if type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = tostring(x) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  return tostring(v)
end

local function tostr(self)
  local lines = {self._spec.name .. " ("}
  for k, group in ipairs(self.param_groups) do
    local keys = {}
    for key in pairs(group) do if key ~= "params" then keys[#keys + 1] = key end end
    table.sort(keys)
    local parts = {}
    for j, key in ipairs(keys) do parts[j] = key .. "=" .. fmt(group[key]) end
    lines[#lines + 1] = ("  group %d: %d parameters, %s"):format(k, #group.params,
                                                               table.concat(parts, ", "))
  end
  lines[#lines + 1] = ")"
  return table.concat(lines, "\n")
end

-- Declares an optimizer class: spec = {name, defaults = {option = default or "required"},
-- order = positional option names, state = {field = true} (what a parameter's state may hold),
-- check(group) -> message or nil, update(group, p, g, state), init(group, p) -> eager state}. Returns the class table, callable as Class(params, opts).
function Optimizer.class(spec)
  CLASSES[spec.name] = spec
  spec.meta = {__index = index, __newindex = newindex, __tostring = tostr,
               __name = "optim." .. spec.name} -- help(opt) finds the class's entry
  local class = {name = spec.name, defaults = spec.defaults}
  return setmetatable(class, {__call = guard(function(_, params, opts)
    return new(spec, params, opts)
  end)})
end

Optimizer.methods = methods -- optim.Optimizer: what every optimizer shares

-- Whether x is an optimizer built by Optimizer.class.
function Optimizer.is_optimizer(x)
  local mt = type(x) == "table" and getmetatable(x)
  return mt and mt.__index == index or false
end

return Optimizer
