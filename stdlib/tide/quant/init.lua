-- stdlib/tide/quant/init.lua: tide.quant. quantize(model, opts) returns a new inference model
-- (the original is untouched) whose Linear, Conv2d (and, dynamic, LSTM) layers run on int8
-- weights; the functional quantize_per_tensor / quantize_per_channel / dequantize and the
-- QTensor class come from qtensor.lua; the observers of static mode from observers.lua.
local tide = require "tide"
local nn = require "tide.nn"
local QT = require "tide.quant.qtensor"
local obs = require "tide.quant.observers"
local QL = require "tide.quant.layers"

local M = {QTensor = QT.QTensor, quantize_per_tensor = QT.quantize_per_tensor,
           quantize_per_channel = QT.quantize_per_channel, dequantize = QT.dequantize,
           is_quantized = QT.is_quantized, Linear = QL.Linear, Conv2d = QL.Conv2d,
           MaxPool2d = QL.MaxPool2d, LSTM = QL.LSTM}

local function fail(msg) error("tide.quant.quantize: " .. msg, 4) end -- via a checker

-- a copy of the module tree: tables copied with their metatables (the classes are shared),
-- tensors cloned, so the quantized model shares nothing with the float one
local function copy(v, seen)
  if tide.is_tensor(v) then
    if not seen[v] then seen[v] = v:detach():clone() end
    return seen[v]
  end
  if type(v) ~= "table" or not nn.is_module(v) and getmetatable(v) ~= nil then return v end
  if seen[v] then return seen[v] end
  local c = {}
  seen[v] = c
  for k, x in next, v do rawset(c, k, copy(x, seen)) end
  return setmetatable(c, getmetatable(v))
end

local OPTS = {mode = true, calibrate = true, layers = true, observer = true, verbose = true}

local function check_opts(model, o)
  if not nn.is_module(model) then fail("expected a module, got " .. type(model)) end
  if type(o) ~= "table" then fail("expected an options table {mode = \"dynamic\" | \"static\"}") end
  for k in pairs(o) do
    if not OPTS[k] then fail(("unknown option '%s'"):format(tostring(k))) end
  end
  if o.mode ~= "dynamic" and o.mode ~= "static" then
    fail("mode must be \"dynamic\" or \"static\", got " .. tostring(o.mode))
  end
  if o.mode == "static" and o.calibrate == nil then
    fail("static mode needs a calibration loader: {calibrate = loader}")
  end
  if o.observer ~= nil and not obs.kinds[o.observer] then
    fail("observer must be \"minmax\", \"histogram\" or \"percentile\", got " .. tostring(o.observer))
  end
  if o.layers ~= nil and type(o.layers) ~= "table" then
    fail("layers must be a list of layer names (as in named_modules), got " .. type(o.layers))
  end
  for _, m in ipairs(model:modules()) do
    local cls = getmetatable(m)
    if cls == QL.Linear or cls == QL.Conv2d or cls == QL.LSTM then
      fail("the model is already quantized (it has " .. m:config() .. ")")
    end
  end
end

-- Conv2d then BatchNorm2d in a Sequential: the norm's affine map folded into the conv's weights
-- and bias (eval-mode statistics), the norm replaced by Identity. PyTorch fuses the same pairs.
local function fold_norms(model)
  for _, m in ipairs(model:modules()) do
    if getmetatable(m) == nn.Sequential then
      for i = 1, #m - 1 do
        local c, b = m[i], m[i + 1]
        if getmetatable(c) == nn.Conv2d and getmetatable(b) == nn.BatchNorm2d and b.running_var then
          local inv = (b.running_var + b.eps):rsqrt()
          local g = b.weight and b.weight * inv or inv
          local bias = c.bias or tide.zeros(c.out_channels)
          tide.no_grad(function()
            c.weight = c.weight * g:view(-1, 1, 1, 1)
            c.bias = (bias - b.running_mean) * g + (b.bias or 0)
          end)
          m[i + 1] = nn.Identity()
        end
      end
    end
  end
end

local KINDS = {[nn.Linear] = QL.Linear, [nn.Conv2d] = QL.Conv2d, [nn.LSTM] = QL.LSTM}

-- the layers to quantize: name -> module (all Linear and Conv2d, or those named in o.layers)
local function targets(model, o)
  local list, skipped = {}, {}
  local want
  if o.layers then
    want = {}
    for _, n in ipairs(o.layers) do want[n] = true end
  end
  for name, m in pairs(model:named_modules()) do
    local cls = getmetatable(m)
    if name ~= "" and (not want or want[name]) then
      local static_lstm = cls == nn.LSTM and o.mode ~= "dynamic" -- its inputs change per step
      local ok = KINDS[cls] and not (cls == nn.Conv2d and m.groups ~= 1) and not static_lstm
      -- a conv over a patch this small (the first conv of an image model) moves more data than
      -- it multiplies: in int8 it ran ~3x slower than float here, so it stays float unless named
      local patch = ok and cls == nn.Conv2d and m.in_channels * m.kernel_size[1] * m.kernel_size[2]
      if ok and (not patch or patch >= 16 or want) then
        list[#list + 1] = name
      elseif ok then
        skipped[#skipped + 1] = ("%s %s  (patch of %d values: faster in float)"):format(name,
                                 cls.__name, patch)
      elseif static_lstm then
        skipped[#skipped + 1] = name .. " LSTM  (int8 in dynamic mode only)"
      elseif #m:children() == 0 and #m:parameters() > 0 then
        skipped[#skipped + 1] = name .. " " .. cls.__name .. "  (not supported)"
      end
    end
    if want then want[name] = nil end
  end
  if want and next(want) then fail("no layer named '" .. next(want) .. "' in the model") end
  return list, skipped
end

-- static mode: one observer per target, fed the float input each target sees
local function calibrate(model, names, o)
  local mods, seen = model:named_modules(), {}
  for _, n in ipairs(names) do
    local m = mods[n]
    seen[n] = obs.new(o.observer or "histogram")
    local fwd = m.forward
    rawset(m, "forward", function(self, x)
      seen[n]:observe(x)
      return fwd(self, x)
    end)
  end
  local batches = 0
  model:eval()
  local function feed(x)
    model(x)
    batches = batches + 1
  end
  tide.no_grad(function()
    local c = o.calibrate
    if type(c) == "table" and c.iter then -- a DataLoader: its x batches
      for x in c:iter() do feed(x) end
    elseif type(c) == "table" and not tide.is_tensor(c) then -- a list of input batches
      for _, x in ipairs(c) do feed(x) end
    elseif type(c) == "function" then -- an iterator of batches
      for x in c do feed(x) end
    else
      fail("calibrate must be a loader, a list of input batches or an iterator, got " .. type(c))
    end
  end)
  for _, n in ipairs(names) do rawset(mods[n], "forward", nil) end
  if batches == 0 then fail("the calibration loader gave no batches") end
  return seen
end

-- Static mode, inside each Sequential: a quantized layer whose output reaches another one
-- through only ReLU, MaxPool2d, Flatten, Identity or Dropout hands it uint8 activations (the
-- ReLUs fused into the requantization, the pools replaced by QuantizedMaxPool2d), as PyTorch's
-- converted static models keep quint8 between their quantized ops.
local PASS = {[nn.ReLU] = true, [nn.MaxPool2d] = true, [nn.Flatten] = true,
              [nn.Identity] = true, [nn.Dropout] = true}
local function is_static(m)
  local cls = getmetatable(m)
  return (cls == QL.Linear or cls == QL.Conv2d) and not m.dynamic
end

local function chain(model)
  for _, s in ipairs(model:modules()) do
    if getmetatable(s) == nn.Sequential then
      for i = 1, #s do
        local j = i + 1
        while j <= #s and PASS[getmetatable(s[j])] do j = j + 1 end
        if is_static(s[i]) and j <= #s and is_static(s[j]) then
          rawset(s[i], "_next", s[j])
          rawset(s[j], "_chained", true)
          for k = i + 1, j - 1 do
            local cls = getmetatable(s[k])
            if cls == nn.ReLU then
              rawset(s[i], "_relu", true)
              s[k] = nn.Identity()
            elseif cls == nn.MaxPool2d then
              s[k] = QL.MaxPool2d(s[k])
            elseif cls == nn.Dropout then -- an inference model: dropout is the identity
              s[k] = nn.Identity()
            end
          end
        end
      end
    end
  end
end

-- what quantize prints: one line per quantized layer and per layer left in float
local function report(names, skipped, model, o)
  local mods = model:named_modules()
  local lines = {("tide.quant: %s int8, %d layer%s quantized"):format(o.mode, #names,
                 #names == 1 and "" or "s")}
  for _, n in ipairs(names) do lines[#lines + 1] = "  int8   " .. n .. "  " .. mods[n]:config() end
  for _, s in ipairs(skipped) do lines[#lines + 1] = "  float  " .. s end
  print(table.concat(lines, "\n"))
end

function M.quantize(model, o)
  check_opts(model, o)
  local q = copy(model, {})
  q:eval()
  if o.mode == "static" then fold_norms(q) end
  local names, skipped = targets(q, o)
  local observed = o.mode == "static" and calibrate(q, names, o) or {}
  local mods = q:named_modules()
  for _, n in ipairs(names) do
    local parent, key = n:match("^(.*)%.([^.]+)$")
    local p = parent and mods[parent] or q
    key = key or n
    key = math.tointeger(tonumber(key)) or key
    local static
    if observed[n] then
      local s, z = observed[n]:qparams()
      static = {scale = s, zero_point = z}
    end
    p[key] = KINDS[getmetatable(mods[n])](mods[n], static)
  end
  if o.mode == "static" then chain(q) end
  if o.verbose ~= false then report(names, skipped, q, o) end
  return q
end

return M
