-- stdlib/tide/quant/layers.lua: the int8 inference layers tide.quant.quantize puts in a model.
-- Their state is buffers (saved and loaded like any module's): weight (int8, out x in...),
-- weight_scale (float32, one per output channel; the zero points are 0: symmetric), bias
-- (float32), and in static mode input_scale (float32 scalar) and input_zero_point (int64
-- scalar). The packed form the kernels read is rebuilt whenever the weight tensor changes
-- (t._version), so m:load(path) into a quantized model just works.
local tide = require "tide"
local nn = require "tide.nn"

local Q = tide._quant

local function check_input(self, x)
  if not tide.is_tensor(x) then
    error(self:config() .. ": expected a float tensor, got "
          .. (getmetatable(x) and getmetatable(x).__name or type(x)), 3)
  end
  -- uint8 comes only from the quantized layer before this one (chained in static mode), already
  -- quantized with this layer's input scale and zero point
  if not x.dtype:match("^float") and not (x.dtype == "uint8" and rawget(self, "_chained")) then
    error(("%s: expected a float input, got %s (quantized layers quantize their own input)")
          :format(self:config(), x.dtype), 3)
  end
end

-- a value derived from the buffer `name` (its packed or dequantized form), made again when the
-- buffer is replaced or written in place (t._version)
local function derived(self, name, make)
  local cache = rawget(self, "_derived") or {}
  rawset(self, "_derived", cache)
  local w, c = self[name], cache[name]
  if not c or c.w ~= w or c.v ~= w._version then
    c = {w = w, v = w._version, value = make(w)}
    cache[name] = c
  end
  return c.value
end

local function packed(self, name) return derived(self, name or "weight", Q.pack) end

-- Static layers chained to a next quantized layer (quantize's `chain`) give it uint8 outputs,
-- requantized with its input scale and zero point (ReLUs between them fused: clamped at the
-- zero point), so the activations between them stay 8-bit.
local function spec(self)
  if self.dynamic then return {dynamic = true} end
  local s = {scale = self.input_scale:item(), zero_point = self.input_zero_point:item()}
  local nxt = rawget(self, "_next")
  if nxt then
    s.out_scale, s.out_zero_point = nxt.input_scale:item(), nxt.input_zero_point:item()
    s.out_relu = rawget(self, "_relu")
  end
  return s
end

-- w quantized per output channel, symmetric int8 (PyTorch's per_channel_symmetric): the int8
-- tensor and its float32 scales
local function per_channel(w)
  w = w:detach():float()
  local n = w:size(1)
  local flat = w:reshape(n, w:numel() // n)
  local lo, hi = flat:min(2):totable(), flat:max(2):totable()
  local scales = tide.empty(n)
  for i = 1, n do scales[i] = (Q.qparams(lo[i], hi[i], "int8", true)) end
  return Q.quantize(w, scales, tide.zeros({n}, {dtype = "int64"}), 1, "int8"), scales
end

local function setup(self, w, b, static)
  local q, scales = per_channel(w)
  self:register_buffer("weight", q)
  self:register_buffer("weight_scale", scales)
  self:register_buffer("bias", b and b:detach():float():clone() or nil)
  self.dynamic = not static
  if static then
    self:register_buffer("input_scale", tide.full({}, static.scale))
    self:register_buffer("input_zero_point", tide.full({}, static.zero_point, {dtype = "int64"}))
  end
end

local function mode(self) return self.dynamic and "dynamic" or "static" end

local QLinear = nn.Module:extend("QuantizedLinear")
function QLinear:init(lin, static)
  self.in_features, self.out_features = lin.in_features, lin.out_features
  setup(self, lin.weight, lin.bias, static)
end
function QLinear:config()
  return ("QuantizedLinear(%d, %d, %s)"):format(self.in_features, self.out_features, mode(self))
end
function QLinear:extra_repr()
  return ("%d -> %d, int8 weights per channel, %s activations"):format(self.in_features,
          self.out_features, mode(self))
end
function QLinear:forward(x)
  check_input(self, x)
  if x:dim() == 0 or x:size(-1) ~= self.in_features then
    error(("%s: expected input with %d features, got shape %s"):format(self:config(),
          self.in_features, table.concat(x.shape, "x")), 2)
  end
  return Q.linear(x, packed(self), self.weight_scale, self.bias, self.out_features,
                  self.in_features, spec(self))
end
-- tide.summary's hook (doc/summary.md): the float layer's MACs, now int8 multiply-adds
function QLinear:macs(_, out) return out:numel() * self.in_features end

local QConv2d = nn.Module:extend("QuantizedConv2d")
function QConv2d:init(conv, static)
  self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
  self.kernel_size, self.stride = conv.kernel_size, conv.stride
  self.padding, self.dilation = conv.padding, conv.dilation
  setup(self, conv.weight, conv.bias, static)
end
function QConv2d:config()
  local k = self.kernel_size
  return ("QuantizedConv2d(%d, %d, %dx%d, %s)"):format(self.in_channels, self.out_channels, k[1],
          k[2], mode(self))
end
function QConv2d:extra_repr()
  return self:config():match("^QuantizedConv2d%((.*)%)$") .. ", int8 weights per channel"
end
function QConv2d:forward(x)
  check_input(self, x)
  if x:dim() ~= 4 or x:size(2) ~= self.in_channels then
    error(("%s: expected input (N, %d, H, W), got shape %s"):format(self:config(),
          self.in_channels, table.concat(x.shape, "x")), 2)
  end
  local k, s, p, d = self.kernel_size, self.stride, self.padding, self.dilation
  local g = {ic = self.in_channels, oc = self.out_channels, kh = k[1], kw = k[2], sh = s[1],
             sw = s[2], ph = p[1], pw = p[2], dh = d[1], dw = d[2]}
  return Q.conv2d(x, packed(self), self.weight_scale, self.bias, g, spec(self))
end
function QConv2d:macs(_, out)
  return out:numel() * self.in_channels * self.kernel_size[1] * self.kernel_size[2]
end

-- MaxPool2d between chained layers: pools uint8 activations as integers (max commutes with a
-- positive scale), float ones as before
local QMaxPool2d = nn.Module:extend("QuantizedMaxPool2d")
function QMaxPool2d:init(pool)
  self.kernel_size, self.stride, self.padding = pool.kernel_size, pool.stride, pool.padding
end
function QMaxPool2d:config()
  return ("QuantizedMaxPool2d(%dx%d)"):format(self.kernel_size[1], self.kernel_size[2])
end
function QMaxPool2d:extra_repr() return self:config():match("%((.*)%)") end
function QMaxPool2d:forward(x)
  if tide.is_tensor(x) and x.dtype == "uint8" then
    return Q.maxpool2d(x, {kernel = self.kernel_size, stride = self.stride, padding = self.padding})
  end
  return tide.max_pool2d(x, self.kernel_size, {stride = self.stride, padding = self.padding})
end

-- LSTM, dynamic mode: every weight matrix int8 per row (buffer `weight_ih_l0` and its
-- `weight_ih_l0_scale`, ...), biases float. The input projection of each layer (one GEMM over
-- all steps) runs on the int8 kernel with the steps' activations quantized per call; the
-- recurrence runs the fused float scan on the dequantized W_hh (one small GEMM per step, where
-- quantizing h each step would cost about what it saves).
local QLSTM = nn.LSTM:extend("QuantizedLSTM")
function QLSTM:init(lstm)
  for _, k in ipairs{"input_size", "hidden_size", "num_layers", "batch_first", "bidirectional",
                     "dropout", "bias", "opts", "gates", "mode"} do
    self[k] = lstm[k]
  end
  self.name = "QuantizedLSTM"
  for name, p in pairs(lstm:named_parameters()) do
    if name:match("^weight") then
      local q, scales = per_channel(p)
      self:register_buffer(name, q)
      self:register_buffer(name .. "_scale", scales)
    else
      self:register_buffer(name, p:detach():float():clone())
    end
  end
end
function QLSTM:extra_repr()
  return nn.LSTM.extra_repr(self):gsub(", %d+ params$", ", int8 weights per row, dynamic")
end
function QLSTM.param_dtype() return "float32" end
function QLSTM:project(x2, sfx)
  local w, b_ih, b_hh = self["weight_ih" .. sfx], self["bias_ih" .. sfx], self["bias_hh" .. sfx]
  return Q.linear(x2, packed(self, "weight_ih" .. sfx), self["weight_ih" .. sfx .. "_scale"],
                  b_ih and b_ih + b_hh, w:size(1), w:size(2), {dynamic = true})
end
function QLSTM:recurrent_weight(sfx)
  local name = "weight_hh" .. sfx
  return derived(self, name, function(w)
    return Q.dequantize(w, self[name .. "_scale"], tide.zeros({w:size(1)}, {dtype = "int64"}), 1)
  end)
end

return {Linear = QLinear, Conv2d = QConv2d, MaxPool2d = QMaxPool2d, LSTM = QLSTM}
