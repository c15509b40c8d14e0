-- stdlib/tide/nn/util.lua: what the layer files share: options tables checked against their
-- defaults, a tensor's shape as "8x3x28x28", op errors re-raised naming the layer, and a layer's
-- non-default options for tostring.
local U = {}

-- opts checked against defaults (unknown keys are errors), raised at level lvl: the caller of
-- the constructor (init <- new <- user code) by default
function U.options(cfg, o, defaults, lvl)
  lvl = lvl or 4
  if o ~= nil and type(o) ~= "table" then
    error(cfg .. ": options must be a table, got " .. type(o), lvl)
  end
  for k in pairs(o or {}) do
    if defaults[k] == nil then error(cfg .. ": unknown option '" .. tostring(k) .. "'", lvl) end
  end
  local out = {}
  for k, v in pairs(defaults) do
    if o == nil or o[k] == nil then out[k] = v else out[k] = o[k] end
  end
  return out
end

-- v if it is a number in the interval spec ("[0, 1)", "[0, inf)", ...), else an error naming
-- cfg, the option and the interval, raised at level lvl (as options); NaN is in no interval
function U.in_range(cfg, what, v, spec, lvl)
  local lo_c, lo, hi, hi_c = spec:match("^([%[%(])(.-), (.-)([%]%)])$")
  lo, hi = tonumber(lo) or -math.huge, tonumber(hi) or math.huge -- "inf" is no Lua number
  if type(v) == "number" and (v > lo or lo_c == "[" and v == lo)
     and (v < hi or hi_c == "]" and v == hi) then
    return v
  end
  local got = type(v) ~= "number" and type(v) or v ~= v and "nan" or tostring(v)
  error(("%s: %s must be a number in %s, got %s"):format(cfg, what, spec, got), lvl or 4)
end

function U.shape(x) return #x.shape == 0 and "scalar" or table.concat(x.shape, "x") end

-- f(...) for layer m: an error of the op (whose message names the op and the shapes) is raised
-- again as "<m's config>: <message>", at the caller of m's forward
local function rethrow(m, ok, ...)
  if ok then return ... end
  local msg = tostring((...)):gsub("^[^\n]-%.lua:%d+: ", "")
  error(m:config() .. ": " .. msg, 2)
end
function U.call(m, f, ...) return rethrow(m, pcall(f, ...)) end

-- the error for an input x whose dtype is not that of layer m's parameters
function U.dtype_error(m, x, dtype, lvl)
  error(("%s: expected a %s input (the dtype of its parameters), got %s (input %s)"):format(
        m:config(), dtype, x.dtype, U.shape(x)), lvl + 1)
end

-- the options that differ from the defaults, as ", {k = v, ...}"; same(v, d) and str(v)
-- compare and print values (pairs such as {h, w} need their own)
function U.opts_str(o, defaults, keys, same, str)
  same = same or function(v, d) return v == d end
  str = str or tostring
  local parts = {}
  for _, k in ipairs(keys) do
    if not same(o[k], defaults[k]) then parts[#parts + 1] = k .. " = " .. str(o[k]) end
  end
  return #parts > 0 and (", {" .. table.concat(parts, ", ") .. "}") or ""
end

return U
