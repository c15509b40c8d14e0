-- stdlib/tide/repl.lua: the REPL's Lua half: how values print (tensors through tostring, tables
-- one level deep) and tab completion (trepl's walk: raw fields through __index tables, tensor
-- methods from tide.Tensor, lazy globals). vm/repl.c calls show() and complete().
local M = {}

local WIDTH = 80     -- a table longer than this prints one field per line
local MAXITEMS = 40  -- fields shown before "..."
local MAXSTR = 60    -- characters of a string shown inside a table

local function is_tensor(v)
  local mt = type(v) == "userdata" and getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__name") == "tide.Tensor"
end

local function quote(s)
  if #s > MAXSTR then s = s:sub(1, MAXSTR) .. "..." end
  return (string.format("%q", s):gsub("\\\n", "\\n"))
end

-- one line for a value inside a table
local function brief(v)
  local tv = type(v)
  if tv == "string" then return quote(v) end
  if is_tensor(v) then
    local ok, dtype, shape = pcall(function() return v.dtype, v.shape end)
    if ok then
      return ("[%s tensor %s]"):format(dtype, #shape == 0 and "scalar" or table.concat(shape, "x"))
    end
  end
  if tv == "table" and not (getmetatable(v) and getmetatable(v).__tostring) then
    return next(v) == nil and "{}" or "{...}"
  end
  local ok, s = pcall(tostring, v)
  s = ok and tostring(s) or tv
  local first = s:match("^[^\n]*")
  return first == s and s or first .. " ..."
end

local function keystr(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") then return k end
  return "[" .. brief(k) .. "]"
end

local function keyorder(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta == "number" or (ta == "string" and tb ~= "number") end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

-- a table one level deep: {1, 2, a = 1, b = {...}}; the array part first, then sorted keys
function M.table(t)
  local items, n = {}, 0
  while rawget(t, n + 1) ~= nil do n = n + 1 end
  for i = 1, math.min(n, MAXITEMS) do items[#items + 1] = brief(rawget(t, i)) end
  local keys = {}
  for k in next, t do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, keyorder)
  for _, k in ipairs(keys) do
    if #items >= MAXITEMS then break end
    items[#items + 1] = keystr(k) .. " = " .. brief(rawget(t, k))
  end
  local total = n + #keys
  if total > #items then items[#items + 1] = ("... (%d more)"):format(total - #items) end
  if #items == 0 then return "{}" end
  local line = "{" .. table.concat(items, ", ") .. "}"
  if #line <= WIDTH then return line end
  return "{\n  " .. table.concat(items, ",\n  ") .. ",\n}"
end

-- how the REPL shows one value
function M.format(v)
  local mt = getmetatable(v)
  if type(v) == "table" and not (type(mt) == "table" and mt.__tostring) then return M.table(v) end
  return tostring(v)
end

-- prints a statement's values: tab-separated on one line, or one per line when any is long
function M.show(...)
  local n, out, multi = select("#", ...), {}, false
  -- a plot drawn as text was printed already: its returned page is not echoed a second time
  local gp = package.loaded["tide.plot.gnuplot"]
  if n == 1 and gp and gp.shown ~= nil and rawequal((...), gp.shown) then
    gp.shown = nil
    return
  end
  -- so was a value its function printed and marked as M.shown (tide.summary's table)
  if n == 1 and M.shown ~= nil and rawequal((...), M.shown) then
    M.shown = nil
    return
  end
  for i = 1, n do
    out[i] = M.format((select(i, ...)))
    multi = multi or out[i]:find("\n", 1, true) ~= nil
  end
  io.write(table.concat(out, multi and "\n" or "\t"), "\n")
  io.flush()
end

---- completion -----------------------------------------------------------------------------

local KEYWORDS = {"and", "break", "do", "else", "elseif", "end", "false", "for", "function",
  "goto", "if", "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until",
  "while"}

local TENSOR_PROPS = {"shape", "ndim", "dtype", "grad", "requires_grad", "grad_fn", "is_leaf", "T"}

-- the fields a table loads on first use (_G's globals, tide.fit...), listed in its
-- metatable's __lazy
local function lazy(v)
  local mt = getmetatable(v)
  local l = type(mt) == "table" and rawget(mt, "__lazy")
  return type(l) == "table" and l or {}
end

local function tensor_methods()
  local tide = package.loaded.tide or package.loaded["tide.core"]
  return type(tide) == "table" and rawget(tide, "Tensor") or {}
end

-- v's field k without running code: raw gets through __index tables; tensors and lazy
-- fields are the exceptions (their __index is tide's own and known to be harmless)
local function field(v, k)
  if type(v) == "table" and rawget(v, k) == nil and lazy(v)[k] then
    local ok, r = pcall(function() return v[k] end)
    return ok and r or nil
  end
  if v == _G then return rawget(_G, k) end
  if is_tensor(v) then
    local ok, r = pcall(function() return v[k] end)
    return ok and r or nil
  end
  for _ = 1, 10 do
    if type(v) == "table" then
      local r = rawget(v, k)
      if r ~= nil then return r end
    end
    local mt = getmetatable(v)
    local idx = type(mt) == "table" and rawget(mt, "__index")
    if type(idx) ~= "table" then return nil end
    v = idx
  end
end

local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__call") ~= nil
end

-- every name reachable as v.name (or v:name when methods): own fields and __index tables
local function fields(v, methods)
  local out, seen = {}, {}
  local function add(k, val)
    if type(k) == "string" and k:match("^[%a_][%w_]*$") and not seen[k]
      and (not methods or callable(val)) then
      seen[k] = true
      out[#out + 1] = {k, val}
    end
  end
  if type(v) == "table" then
    for k in pairs(lazy(v)) do add(k, field(v, k) or {}) end
  end
  if is_tensor(v) then
    for k, f in pairs(tensor_methods()) do add(k, f) end
    if not methods then
      for _, k in ipairs(TENSOR_PROPS) do add(k, 0) end
    end
    return out
  end
  if type(v) == "string" then v = string end
  for _ = 1, 10 do
    if type(v) == "table" then
      for k, val in next, v do add(k, val) end
    end
    local mt = getmetatable(v)
    local idx = type(mt) == "table" and rawget(mt, "__index")
    if type(idx) ~= "table" then break end
    v = idx
  end
  return out
end

-- Candidates for the word before the cursor: "pri" -> print(, "tide.ze" -> tide.zeros(, ...,
-- "t:ex" -> t:exp(. Functions get their "(" already typed.
function M.complete(word)
  local path, sep, part = word:match("^([%a_][%w_%.]*)([%.:])([%w_]*)$")
  local base, candidates = "", nil
  if path then
    local v = _G
    for name in path:gmatch("[^%.]+") do
      v = field(v, name)
      if v == nil then return {} end
    end
    base = path .. sep
    candidates = fields(v, sep == ":")
  elseif word:match("^[%a_]?[%w_]*$") then
    part = word
    candidates = fields(_G, false)
    for _, k in ipairs(KEYWORDS) do candidates[#candidates + 1] = {k, false} end
  end
  if not candidates then return {} end
  local out = {}
  for _, c in ipairs(candidates) do
    local k, val = c[1], c[2]
    if k:sub(1, #part) == part then
      out[#out + 1] = base .. k .. (callable(val) and "(" or "")
    end
  end
  table.sort(out)
  return out
end

return M
