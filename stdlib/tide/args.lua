-- stdlib/tide/args.lua: tide.args, a script's command-line options. Every option has a default,
-- whose type says how the command line gives it: `--name value` for numbers and strings (a
-- number must parse as one), `--name` alone for a boolean, which sets it to true.
local function names(defaults)
  local out = {}
  for k in pairs(defaults) do out[#out + 1] = "--" .. k end
  table.sort(out)
  return table.concat(out, " ")
end

return function(defaults, argv)
  if type(defaults) ~= "table" then
    error("tide.args: expected a table of defaults, got " .. type(defaults), 2)
  end
  argv = argv or _G.arg or {}
  local opt = {}
  for k, v in pairs(defaults) do opt[k] = v end
  local i = 1
  while argv[i] ~= nil do
    local a = argv[i]
    local k = type(a) == "string" and a:match("^%-%-([%w_]+)$")
    local d = k and defaults[k]
    if d == nil then
      error(("tide.args: unknown argument '%s' (options: %s)"):format(tostring(a),
            names(defaults)), 2)
    end
    if type(d) == "boolean" then
      opt[k] = true
    else
      i = i + 1
      local v = argv[i]
      if v == nil then error(("tide.args: --%s needs a value"):format(k), 2) end
      if type(d) == "number" then
        v = tonumber(v) or error(("tide.args: --%s expects a number, got '%s'"):format(k, v), 2)
      end
      opt[k] = v
    end
    i = i + 1
  end
  return opt
end
