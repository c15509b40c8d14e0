-- stdlib/tide/quant/qtensor.lua: quantized tensors. A quantized tensor is a Lua object (class
-- tide.QTensor) holding the integer tensor (uint8 or int8) and how to read it: a scale and zero
-- point per tensor, or per channel along one dim. It is not a tide.Tensor: passing one to a float
-- op is an error naming the op ("tide.Tensor expected, got tide.QTensor"); q:dequantize() gives
-- the float tensor back.
local tide = require "tide"
local Q = tide._quant

local QTensor = {__name = "tide.QTensor"}
QTensor.__index = QTensor

local function fail(fn, msg, level) error(fn .. ": " .. msg, level or 4) end

local function check_dtype(fn, dtype)
  if dtype ~= "uint8" and dtype ~= "int8" then
    fail(fn, "dtype must be \"uint8\" or \"int8\", got " .. tostring(dtype))
  end
end

local function check_float(fn, x)
  if not tide.is_tensor(x) then fail(fn, "expected a tensor, got " .. type(x)) end
  if not x.dtype:match("^float") then fail(fn, "expected a float tensor, got " .. x.dtype) end
end

local function new(q, scale, zp, axis)
  return setmetatable({q = q, scale = scale, zero_point = zp, axis = axis}, QTensor)
end

local function per_tensor(x, scale, zero_point, dtype)
  local fn = "quantize_per_tensor"
  check_float(fn, x)
  check_dtype(fn, dtype)
  if type(scale) ~= "number" then fail(fn, "scale must be a number, got " .. type(scale), 3) end
  if math.type(zero_point) ~= "integer" then
    fail(fn, "zero_point must be an integer, got " .. tostring(zero_point), 3)
  end
  local ok, q = pcall(Q.quantize, x, scale, zero_point, 0, dtype)
  if not ok then error(fn .. ": " .. tostring(q):gsub("^quantize: ", ""), 2) end
  return new(q, scale, zero_point)
end

local function per_channel(x, scales, zero_points, axis, dtype)
  local fn = "quantize_per_channel"
  check_float(fn, x)
  check_dtype(fn, dtype)
  if not (tide.is_tensor(scales) and tide.is_tensor(zero_points)) then
    fail(fn, "scales and zero_points must be 1-D tensors", 3)
  end
  if math.type(axis) ~= "integer" or axis < 1 or axis > x:dim() then
    fail(fn, ("axis must be a dim of the %d-D input (1..%d), got %s"):format(x:dim(), x:dim(),
         tostring(axis)), 3)
  end
  local ok, q = pcall(Q.quantize, x, scales, zero_points, axis, dtype)
  if not ok then error(fn .. ": " .. tostring(q):gsub("^quantize: ", ""), 2) end
  return new(q, scales:float(), zero_points:long(), axis)
end

function QTensor:dequantize()
  return Q.dequantize(self.q, self.scale, self.zero_point, self.axis or 0)
end
function QTensor:int_repr() return self.q end
function QTensor:qscheme() return self.axis and "per_channel_affine" or "per_tensor_affine" end
function QTensor:q_scale() return self.scale end
function QTensor:q_zero_point() return self.zero_point end
function QTensor:q_per_channel_axis() return self.axis end
function QTensor:size(d) return self.q:size(d) end
function QTensor:dim() return self.q:dim() end
function QTensor:numel() return self.q:numel() end
QTensor.__len = function(t) return #t.q end

-- dtype and shape read through to the integer tensor
local fields = {dtype = true, shape = true, ndim = true}
QTensor.__index = function(t, k)
  if fields[k] then return t.q[k] end
  return QTensor[k]
end

function QTensor.__tostring(t)
  local how = t.axis and ("per channel along dim %d, scales %s, zero points %s")
      :format(t.axis, tostring(t.scale):match("^[^\n]*"), tostring(t.zero_point):match("^[^\n]*"))
      or ("scale %.6g, zero point %d"):format(t.scale, t.zero_point)
  local body = tostring(t.q):gsub("\n%[[^\n]*%]$", "")
  return ("%s\n[quantized %s tensor %s, %s]"):format(body, t.q.dtype,
    #t.q.shape == 0 and "scalar" or table.concat(t.q.shape, "x"), how)
end

-- arithmetic on the integers would ignore the scale: refused, with the way out named
local function refuse() error("tide.QTensor: a quantized tensor takes no arithmetic; use "
                              .. "q:dequantize() (float) or q:int_repr() (the integers)", 2) end
for _, mm in ipairs{"__add", "__sub", "__mul", "__div", "__unm", "__pow", "__mod", "__idiv"} do
  QTensor[mm] = refuse
end

local function dequantize(q)
  if getmetatable(q) ~= QTensor then
    error("dequantize: expected a quantized tensor (tide.QTensor), got "
          .. (tide.is_tensor(q) and "a " .. q.dtype .. " tide.Tensor" or type(q)), 2)
  end
  return q:dequantize()
end

local function is_quantized(v) return getmetatable(v) == QTensor end

return {QTensor = QTensor, new = new, quantize_per_tensor = per_tensor,
        quantize_per_channel = per_channel, dequantize = dequantize, is_quantized = is_quantized}
