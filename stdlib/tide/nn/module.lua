-- stdlib/tide/nn/module.lua: nn.Module, the base of every layer and model, and nn.Parameter.
-- A module is a table whose fields hold its children, parameters and buffers; assigning a module
-- or a parameter to a new field registers it (__newindex) in per-kind lists of keys, which give
-- the walks below (parameters, state_dict, ...) their insertion order.
local tide = require "tide"

local is_tensor = tide.is_tensor
local marked = setmetatable({}, {__mode = "k"}) -- the tensors nn.Parameter made parameters

local function is_module(v) return type(v) == "table" and rawget(v, "_kind") ~= nil end
local function is_parameter(v) return marked[v] == true end

local function Parameter(t, opts)
  if not is_tensor(t) then error("nn.Parameter: expected a tensor, got " .. type(t), 2) end
  local on = not (opts and opts.requires_grad == false)
  if t.grad_fn then t = t:detach() end -- a leaf sharing t's storage, as torch.nn.Parameter does
  if on and not t.dtype:match("^float") then
    error("nn.Parameter: a " .. t.dtype .. " tensor cannot require grad (parameters are float)", 2)
  end
  t.requires_grad = on
  marked[t] = true
  return t
end

local Module = {__name = "Module"}
Module.__index = Module

local function name_of(m) return getmetatable(m).__name end

-- Records key k of m as a child ("module"), "parameter" or "buffer"; nil kind unregisters.
-- A key keeps its place when it is registered again as the same kind.
local function register(m, k, kind)
  local old = m._kind[k]
  if old == kind then return end
  if old then
    local list = m._order[old]
    for i = #list, 1, -1 do if list[i] == k then table.remove(list, i) end end
  end
  m._kind[k] = kind
  if kind then table.insert(m._order[kind], k) end
end

-- Only new keys reach __newindex: values stay in the module's own table, so reading a field costs
-- nothing. Reassigning a registered field keeps it registered (a module replacing a module, a
-- tensor replacing a parameter); walks skip keys whose value no longer fits their kind.
function Module.__newindex(m, k, v)
  if is_module(v) then register(m, k, "module")
  elseif is_parameter(v) then register(m, k, "parameter")
  elseif not (is_tensor(v) and (m._kind[k] == "parameter" or m._kind[k] == "buffer")) then
    register(m, k, nil)
  end
  rawset(m, k, v)
end

local hooked = require("tide.nn.hooks")(Module)
function Module.__call(m, ...)
  if m._hooks then return hooked(m, ...) end -- false until a hook is registered (nn/hooks.lua)
  return m:forward(...)
end

local function new(cls, ...)
  local m = setmetatable({_kind = {}, _order = {module = {}, parameter = {}, buffer = {}},
                          training = true, _hooks = false}, cls)
  m:init(...)
  return m
end

-- A subclass: its own table of methods, metamethods copied (Lua reads them raw), calling it
-- constructs an instance and runs init.
function Module:extend(name)
  if type(name) ~= "string" then error("Module:extend: expected a class name (a string)", 2) end
  local cls = {}
  for k, v in pairs(self) do
    if type(k) == "string" and k:match("^__") then cls[k] = v end
  end
  cls.__name, cls.__index = name, cls
  return setmetatable(cls, {__index = self, __call = new,
                            __tostring = function() return "nn." .. name .. " (a Module class)" end})
end
setmetatable(Module, {__call = new, __tostring = function() return "nn.Module (a class)" end})

function Module.init() end
function Module:forward()
  error(name_of(self) .. ": forward is not defined (define function " .. name_of(self)
        .. ":forward(x))", 2)
end

-- how error messages name the module: "Linear(784, 128)"; layers override it
function Module:config() return name_of(self) .. "(" .. self:extra_repr() .. ")" end

---- walks -----------------------------------------------------------------------------------

-- fn(module, prefix) for self and every descendant, parents first; `seen` visits each once.
local function walk(m, fn, prefix, seen)
  if seen then
    if seen[m] then return end
    seen[m] = true
  end
  fn(m, prefix)
  for _, k in ipairs(m._order.module) do
    local c = rawget(m, k)
    if is_module(c) then walk(c, fn, prefix .. tostring(k) .. ".", seen) end
  end
end

-- the tensors of one kind under m: a list of names and a map name -> tensor
local function collect(m, kinds, dedup)
  local names, map, seen = {}, {}, {}
  walk(m, function(mod, prefix)
    for _, kind in ipairs(kinds) do
      for _, k in ipairs(mod._order[kind]) do
        local t = rawget(mod, k)
        if is_tensor(t) and not (dedup and seen[t]) then
          seen[t] = true
          local name = prefix .. tostring(k)
          names[#names + 1], map[name] = name, t
        end
      end
    end
  end, "", dedup and {} or nil)
  return names, map
end

-- map, whose pairs() follows names, and names
local function ordered(names, map)
  return setmetatable(map, {__pairs = function(t)
    local i = 0
    return function()
      i = i + 1
      if names[i] then return names[i], t[names[i]] end
    end, t, nil
  end}), names
end

local function values(names, map)
  for i, n in ipairs(names) do names[i] = map[n] end
  return names
end

function Module:named_parameters() return ordered(collect(self, {"parameter"}, true)) end
function Module:named_buffers() return ordered(collect(self, {"buffer"}, true)) end
function Module:parameters() return values(collect(self, {"parameter"}, true)) end
function Module:buffers() return values(collect(self, {"buffer"}, true)) end

function Module:named_modules()
  local names, map = {}, {}
  walk(self, function(m, prefix)
    local name = prefix:sub(1, -2)
    names[#names + 1], map[name] = name, m
  end, "", {})
  return ordered(names, map)
end

function Module:modules()
  local list = {}
  walk(self, function(m) list[#list + 1] = m end, "", {})
  return list
end

function Module:children()
  local list, seen = {}, {}
  for _, k in ipairs(self._order.module) do
    local c = rawget(self, k)
    if is_module(c) and not seen[c] then list[#list + 1], seen[c] = c, true end
  end
  return list
end

function Module:register_buffer(name, t)
  if type(name) ~= "string" or name == "" or name:find(".", 1, true) then
    error(name_of(self) .. ":register_buffer: expected a name without dots, got " .. tostring(name), 2)
  end
  if t ~= nil and not is_tensor(t) then
    error(name_of(self) .. ":register_buffer: '" .. name .. "' must be a tensor or nil, got " .. type(t), 2)
  end
  register(self, name, "buffer")
  rawset(self, name, t)
  return self
end

---- state ---------------------------------------------------------------------------------

function Module:apply(fn)
  for _, c in ipairs(self:children()) do c:apply(fn) end
  fn(self)
  return self
end

function Module:train(on)
  if on == nil then on = true end
  walk(self, function(m) rawset(m, "training", on and true or false) end, "", {})
  return self
end
function Module:eval() return self:train(false) end

function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p.grad = nil end
  return self
end

function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do n = n + p:numel() end
  return n
end

function Module:unfreeze(on)
  for _, p in ipairs(self:parameters()) do p.requires_grad = on ~= false end
  return self
end
function Module:freeze() return self:unfreeze(false) end

-- Float parameters and buffers become new tensors of `dtype` (in place in the tree: shared
-- tensors stay shared); integer buffers are kept, as in PyTorch.
function Module:to(dtype)
  if dtype ~= "float32" and dtype ~= "float64" then
    error(name_of(self) .. ":to: expected \"float32\" or \"float64\", got " .. tostring(dtype), 2)
  end
  local done = {}
  walk(self, function(m)
    for _, kind in ipairs({"parameter", "buffer"}) do
      for _, k in ipairs(m._order[kind]) do
        local t = rawget(m, k)
        if is_tensor(t) and t.dtype:match("^float") and t.dtype ~= dtype then
          if not done[t] then
            local n = t:detach():to(dtype)
            n.requires_grad = t.requires_grad
            if marked[t] then marked[n] = true end
            done[t] = n
          end
          rawset(m, k, done[t])
        end
      end
    end
  end, "", {})
  return self
end

-- "a.1.w" <-> "a.0.w": integer path components shifted by `by`
local function shift(name, by)
  return (name:gsub("[^.]+", function(c)
    if c:match("^%d+$") then return tostring(math.tointeger(c) + by) end
  end))
end

local function pytorch(fn, opts, key)    -- opts[key] == "pytorch" (or nil)
  local v = opts and opts[key]
  if v ~= nil and v ~= "pytorch" then
    error(fn .. ": " .. key .. " must be \"pytorch\" or nil, got " .. tostring(v), 3)
  end
  return v ~= nil
end

function Module:state_dict(opts)
  local pt = pytorch("state_dict", opts, "to")
  local names, map = collect(self, {"parameter", "buffer"}, false)
  local out, keys = {}, {}
  for i, n in ipairs(names) do
    keys[i] = pt and shift(n, -1) or n
    out[keys[i]] = map[n]:detach()
  end
  return ordered(keys, out)
end

-- sd as flat dotted keys (tide.load gives nested tables)
local function flatten(sd, prefix, out)
  for k, v in pairs(sd) do
    local name = prefix .. tostring(k)
    if type(v) == "table" then flatten(v, name .. ".", out) else out[name] = v end
  end
  return out
end

local function shape(t) return #t.shape == 0 and "scalar" or table.concat(t.shape, "x") end

-- Checks sd against the model and converts its tensors to their targets' dtypes, changing
-- nothing; returns the function that copies them in (it cannot fail on sd's content), the
-- missing and the unexpected keys. Errors carry no position: the callers re-raise them.
local function prepare_load(self, sd, opts)
  if type(sd) ~= "table" then
    error("load_state_dict: expected a table of tensors, got " .. type(sd), 0)
  end
  local pt = pytorch("load_state_dict", opts, "from")
  local strict = not (opts and opts.strict == false)
  local src = {}
  for k, v in pairs(flatten(sd, "", {})) do src[pt and shift(k, 1) or k] = v end
  local names, map = collect(self, {"parameter", "buffer"}, false)
  local missing, unexpected = {}, {}
  for _, n in ipairs(names) do
    local t, v = map[n], src[n]
    if v == nil then
      missing[#missing + 1] = n
    elseif not is_tensor(v) then
      error(("load_state_dict: '%s' is a %s, expected a tensor"):format(n, type(v)), 0)
    elseif shape(t) ~= shape(v) then
      error(("load_state_dict: size mismatch for '%s': the model has %s, the state dict %s")
            :format(n, shape(t), shape(v)), 0)
    elseif v.dtype ~= t.dtype then
      src[n] = v:to(t.dtype)
    end
  end
  for k in pairs(src) do
    if map[k] == nil then unexpected[#unexpected + 1] = k end
  end
  table.sort(unexpected)
  if strict and #missing + #unexpected > 0 then
    error(("load_state_dict: missing keys: %s; unexpected keys: %s (pass {strict = false} to "
           .. "load a part)"):format(#missing > 0 and table.concat(missing, ", ") or "none",
           #unexpected > 0 and table.concat(unexpected, ", ") or "none"), 0)
  end
  local function commit()
    tide.no_grad(function()
      for _, n in ipairs(names) do
        if src[n] ~= nil then map[n]:copy_(src[n]) end
      end
    end)
  end
  return commit, missing, unexpected
end
Module._prepare_load = prepare_load -- checkpoint.load checks every part before it applies any

function Module:load_state_dict(sd, opts)
  local ok, commit, missing, unexpected = pcall(prepare_load, self, sd, opts)
  if not ok then error(commit, 2) end
  commit()
  return missing, unexpected
end

-- err without the position of the stdlib line that raised it (re-raised at the user's call)
local function bare(err) return (tostring(err):gsub("^[^\n:]*%.lua:%d+: ", "")) end

-- The state dict as a safetensors file (tide.save), and back through load_state_dict (opts as
-- there: strict, from = "pytorch"), all or nothing. A checkpoint file works too: its model part
-- is loaded.
function Module:save(path)
  local ok, err = pcall(tide.save, path, self:state_dict())
  if not ok then error(bare(err), 2) end
  return self
end

function Module:load(path, opts)
  local ok, flat, kind = pcall(tide.load, path, {flat = true})
  if not ok then error(bare(flat), 2) end
  local sd = {}
  for k, v in pairs(flat) do
    if is_tensor(v) then -- metadata other tools write ("format": "pt") is not state
      local name = kind == "checkpoint" and k:match("^model%.(.+)$") or kind ~= "checkpoint" and k
      if name then sd[name] = v end
    end
  end
  local fine, commit, missing, unexpected = pcall(prepare_load, self, sd, opts)
  if not fine then error(bare(commit), 2) end
  commit()
  return missing, unexpected
end

---- printing --------------------------------------------------------------------------------

-- what goes between the parentheses: by default the module's own parameters and their count
function Module:extra_repr()
  local parts, n = {}, 0
  for _, k in ipairs(self._order.parameter) do
    local t = rawget(self, k)
    if is_tensor(t) then
      parts[#parts + 1] = tostring(k) .. " " .. shape(t)
      n = n + t:numel()
    end
  end
  if n > 0 then parts[#parts + 1] = n .. (n == 1 and " param" or " params") end
  return table.concat(parts, ", ")
end

function Module.__tostring(m)
  local extra, lines = m:extra_repr(), {}
  if extra ~= "" then lines[1] = extra end
  for _, k in ipairs(m._order.module) do
    local c = rawget(m, k)
    if is_module(c) then lines[#lines + 1] = "(" .. tostring(k) .. "): " .. tostring(c) end
  end
  if #m:children() == 0 then return name_of(m) .. "(" .. extra .. ")" end
  return name_of(m) .. "(\n  " .. table.concat(lines, "\n"):gsub("\n", "\n  ") .. "\n)"
end

return {Module = Module, Parameter = Parameter, is_module = is_module, is_parameter = is_parameter}
