-- stdlib/tide/nn/init_fns.lua: nn.init, in-place initialisers with torch.nn.init's formulas.
-- Fans follow PyTorch: for a weight of shape out x in x k1 x k2 ..., fan_in = in * k1 * k2 ...
-- and fan_out = out * k1 * k2 .... Every function works under no_grad and returns its tensor.
local tide = require "tide"

local init = {}

local function check(fn, t)
  if not tide.is_tensor(t) then error("nn.init." .. fn .. ": expected a tensor, got " .. type(t), 3) end
end

local function fill(fn, t, method, ...)
  check(fn, t)
  return tide.no_grad(t[method], t, ...)
end

function init.fan_in_and_fan_out(t)
  check("fan_in_and_fan_out", t)
  if t:dim() < 2 then
    error("nn.init: fan in and fan out need a tensor with at least 2 dimensions, got shape "
          .. (t:dim() == 0 and "a scalar" or table.concat(t.shape, "x")), 2)
  end
  local receptive = 1
  for d = 3, t:dim() do receptive = receptive * t:size(d) end
  return t:size(2) * receptive, t:size(1) * receptive
end

local GAINS = {linear = 1, identity = 1, conv1d = 1, conv2d = 1, conv3d = 1, sigmoid = 1,
               tanh = 5 / 3, relu = math.sqrt(2), selu = 3 / 4}

function init.calculate_gain(nonlinearity, param)
  if nonlinearity == "leaky_relu" then
    local slope = param or 0.01
    return math.sqrt(2 / (1 + slope * slope))
  end
  local g = GAINS[nonlinearity]
  if not g then error("nn.init.calculate_gain: unknown nonlinearity " .. tostring(nonlinearity), 2) end
  return g
end

function init.uniform_(t, a, b) return fill("uniform_", t, "uniform_", a or 0, b or 1) end
function init.normal_(t, mean, std) return fill("normal_", t, "normal_", mean or 0, std or 1) end
function init.constant_(t, v) return fill("constant_", t, "fill_", v) end
function init.zeros_(t) return fill("zeros_", t, "fill_", 0) end
function init.ones_(t) return fill("ones_", t, "fill_", 1) end

function init.xavier_uniform_(t, gain)
  local fan_in, fan_out = init.fan_in_and_fan_out(t)
  local bound = (gain or 1) * math.sqrt(6 / (fan_in + fan_out))
  return init.uniform_(t, -bound, bound)
end

function init.xavier_normal_(t, gain)
  local fan_in, fan_out = init.fan_in_and_fan_out(t)
  return init.normal_(t, 0, (gain or 1) * math.sqrt(2 / (fan_in + fan_out)))
end

-- the std of Kaiming's init for opts {a=0, mode="fan_in", nonlinearity="leaky_relu"}
local function kaiming_std(fn, t, opts)
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "a" and k ~= "mode" and k ~= "nonlinearity" then
      error("nn.init." .. fn .. ": unknown option '" .. tostring(k) .. "'", 3)
    end
  end
  local mode = opts.mode or "fan_in"
  if mode ~= "fan_in" and mode ~= "fan_out" then
    error("nn.init." .. fn .. ": mode must be \"fan_in\" or \"fan_out\", got " .. tostring(mode), 3)
  end
  local fan_in, fan_out = init.fan_in_and_fan_out(t)
  local gain = init.calculate_gain(opts.nonlinearity or "leaky_relu", opts.a or 0)
  return gain / math.sqrt(mode == "fan_in" and fan_in or fan_out)
end

function init.kaiming_uniform_(t, opts)
  local bound = math.sqrt(3) * kaiming_std("kaiming_uniform_", t, opts)
  return init.uniform_(t, -bound, bound)
end

function init.kaiming_normal_(t, opts)
  return init.normal_(t, 0, kaiming_std("kaiming_normal_", t, opts))
end

return init
