-- stdlib/tide/models/util.lua: the option check every model constructor shares. spec maps an
-- option to {default, kind}; kind is "int" (a positive integer), "prob" (a number in [0, 1)),
-- "num" (a positive number), "bool", or a list of the allowed strings. Errors name the model
-- and the option and are raised at the caller of the constructor. Also gpt:generate's sampler.
local tide = require "tide"

local U = {}

local function bad(model, k, want, v)
  error(("%s: option '%s' must be %s, got %s"):format(model, k, want, tostring(v)), 5)
end

local function check(model, k, kind, v)
  if kind == "int" then
    if not (math.type(v) == "integer" or (type(v) == "number" and math.tointeger(v))) or v < 1 then
      bad(model, k, "a positive integer", v)
    end
    return math.tointeger(v)
  elseif kind == "prob" then
    if type(v) ~= "number" or v < 0 or v >= 1 then bad(model, k, "a probability in [0, 1)", v) end
  elseif kind == "num" then
    if type(v) ~= "number" or v <= 0 then bad(model, k, "a positive number", v) end
  elseif kind == "bool" then
    if type(v) ~= "boolean" then bad(model, k, "true or false", v) end
  else
    for _, s in ipairs(kind) do if v == s then return v end end
    bad(model, k, "one of \"" .. table.concat(kind, "\", \"") .. "\"", v)
  end
  return v
end

-- o (nil or a table) checked against spec; with `list`, o's list part is kept as out[1..n]
function U.options(model, o, spec, list)
  if o ~= nil and type(o) ~= "table" then
    error(("%s: options must be a table, got %s"):format(model, type(o)), 3)
  end
  o = o or {}
  for k in pairs(o) do
    if spec[k] == nil and not (list and math.type(k) == "integer") then
      error(("%s: unknown option '%s'"):format(model, tostring(k)), 3)
    end
  end
  local out = {}
  for k, s in pairs(spec) do
    local v = o[k]
    if v == nil then out[k] = s[1] else out[k] = check(model, k, s[2], v) end
  end
  if list then
    for i, v in ipairs(o) do out[i] = check(model, "[" .. i .. "]", "int", v) end
  end
  return out
end

-- the id drawn from logits (vocab) / temperature, among the top_k largest when given
function U.sample(logits, temperature, top_k)
  logits = logits / temperature
  if top_k and top_k < logits:size(1) then
    local v = logits:totable()
    table.sort(v, function(a, b) return a > b end)
    logits = logits:masked_fill(logits:lt(v[top_k]), -math.huge)
  end
  local below = logits:softmax(1):cumsum(1):lt(tide.rand(1):item()):sum():item()
  return math.min(below + 1, logits:size(1))            -- the first id whose cdf reaches u
end

return U
