-- stdlib/tide/nn/containers.lua: nn.Sequential and nn.ModuleList. Their children sit at the
-- integer keys 1..n of the module's own table (named "1", "2", ... in state dicts), so seq[i],
-- #seq and ipairs(list) are plain Lua.
local M = require "tide.nn.module"

local Module, is_module = M.Module, M.is_module

-- Sequential{a, b} or Sequential(a, b): the children as a list, checked
local function children(cls, ...)
  local list, n = {...}, select("#", ...)
  if n == 1 and type(list[1]) == "table" and not is_module(list[1]) then
    list = list[1]
    n = #list
  end
  for i = 1, n do
    if not is_module(list[i]) then
      error(("nn.%s: element %d is a %s, expected a module"):format(cls, i, type(list[i])), 3)
    end
  end
  return list, n
end

-- seq[i] = m: a module at 1..#seq + 1 (other keys behave as in any module)
local function newindex(self, k, v)
  if math.type(k) == "integer" and not (is_module(v) and k >= 1 and k <= #self + 1) then
    error(("%s: cannot set [%d] to a %s (expected a module at 1..%d)")
          :format(getmetatable(self).__name, k, type(v), #self + 1), 2)
  end
  Module.__newindex(self, k, v)
end

local function append(self, m)
  if not is_module(m) then
    error(getmetatable(self).__name .. ":append: expected a module, got " .. type(m), 2)
  end
  self[#self + 1] = m
  return self
end

local Sequential = Module:extend("Sequential")
Sequential.__newindex, Sequential.append = newindex, append

function Sequential:init(...)
  local list, n = children("Sequential", ...)
  for i = 1, n do self[i] = list[i] end
end

function Sequential:forward(x)
  for i = 1, #self do x = self[i](x) end
  return x
end

local ModuleList = Module:extend("ModuleList")
ModuleList.__newindex, ModuleList.append = newindex, append

function ModuleList:init(...)
  local list, n = children("ModuleList", ...)
  for i = 1, n do self[i] = list[i] end
end

function ModuleList.forward()
  error("ModuleList: a list is not callable; iterate it with ipairs and call each module", 2)
end

return {Sequential = Sequential, ModuleList = ModuleList}
