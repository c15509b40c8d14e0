-- stdlib/tide/nn/conv.lua: the convolution and pooling layers (Conv2d, ConvTranspose2d,
-- MaxPool2d, AvgPool2d, AdaptiveAvgPool2d) on top of the tide.* ops of conv.c and pool.c.
-- Parameters have PyTorch's names, shapes and default init.
local tide = require "tide"
local M = require "tide.nn.module"
local init = require "tide.nn.init_fns"

local U = require "tide.nn.util"

local Module, Parameter, is_tensor = M.Module, M.Parameter, tide.is_tensor
local options, shape, call = U.options, U.shape, U.call

-- "3" or "{3, 5}"
local function size_str(s)
  if type(s) == "table" then return "{" .. tostring(s[1]) .. ", " .. tostring(s[2]) .. "}" end
  return tostring(s)
end

-- a size option as a pair of non-negative integers (positive when `positive`)
local function pair(cfg, what, s, positive, lvl)
  local t = type(s) == "table" and s or {s, s}
  local a, b = math.tointeger(t[1]), math.tointeger(t[2])
  local lo = positive and 1 or 0
  if not (a and b and a >= lo and b >= lo) or (type(s) == "table" and #s ~= 2) then
    error(("%s: %s must be a %s integer or a pair {h, w}, got %s"):format(cfg, what,
          positive and "positive" or "non-negative", size_str(s)), lvl or 4)
  end
  return {a, b}
end

local function posint(cfg, what, v, lvl)
  local n = type(v) == "number" and math.tointeger(v)
  if not (n and n >= 1) then error(cfg .. ": " .. what .. " must be a positive integer", lvl or 4) end
  return n
end

local function check_image(self, x)
  if not is_tensor(x) then
    error(self:config() .. ": expected a tensor input, got " .. type(x), 3)
  end
  if x:dim() ~= 3 and x:dim() ~= 4 then
    error(("%s: expected an N x C x H x W (or C x H x W) input, got %s"):format(self:config(),
          shape(x)), 3)
  end
end

local function check_channels(self, x, c)
  local got = x:size(x:dim() - 2)
  if got ~= c then
    error(("%s: expected %d input channel%s, got %d (input %s)"):format(self:config(), c,
          c == 1 and "" or "s", got, shape(x)), 3)
  end
end

-- the options worth showing: those that differ from the defaults ({3, 3} is the same as 3)
local function same_size(v, d) return v == d or (type(v) == "table" and v[1] == d and v[2] == d) end
local function opts_str(o, defaults, keys) return U.opts_str(o, defaults, keys, same_size, size_str) end

---- Conv2d, ConvTranspose2d -----------------------------------------------------------------

local CONV = {stride = 1, padding = 0, dilation = 1, groups = 1, bias = true}
local CONV_KEYS = {"stride", "padding", "dilation", "groups", "bias"}
local CONVT = {stride = 1, padding = 0, output_padding = 0, dilation = 1, groups = 1, bias = true}
local CONVT_KEYS = {"stride", "padding", "output_padding", "dilation", "groups", "bias"}

local function conv_init(self, name, defaults, cin, cout, k, opts, transposed)
  local cfg = ("%s(%s, %s, %s)"):format(name, tostring(cin), tostring(cout), size_str(k))
  local nin, nout = posint(cfg, "in_channels", cin, 5), posint(cfg, "out_channels", cout, 5)
  local o = options(cfg, opts, defaults, 5)
  self.in_channels, self.out_channels = nin, nout
  self.kernel_size = pair(cfg, "kernel_size", k, true, 5)
  self.stride = pair(cfg, "stride", o.stride, true, 5)
  self.padding = pair(cfg, "padding", o.padding, false, 5)
  self.dilation = pair(cfg, "dilation", o.dilation, true, 5)
  if transposed then self.output_padding = pair(cfg, "output_padding", o.output_padding, false, 5) end
  local g = posint(cfg, "groups", o.groups, 5)
  if nin % g ~= 0 or nout % g ~= 0 then
    error(("%s: groups (%d) must divide in_channels and out_channels"):format(cfg, g), 5)
  end
  self.groups = g
  self._k, self._opts = k, o
  local kh, kw = self.kernel_size[1], self.kernel_size[2]
  if transposed then
    self.weight = Parameter(tide.empty(nin, nout // g, kh, kw))   -- in x out/groups x kh x kw
  else
    self.weight = Parameter(tide.empty(nout, nin // g, kh, kw))   -- out x in/groups x kh x kw
  end
  if o.bias then self.bias = Parameter(tide.empty(nout)) end
  self:reset_parameters()
end

-- PyTorch's default: weight kaiming_uniform_(a = sqrt 5), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))
local function reset(self)
  init.kaiming_uniform_(self.weight, {a = math.sqrt(5)})
  if self.bias then
    local fan_in = init.fan_in_and_fan_out(self.weight)
    local bound = 1 / math.sqrt(fan_in)
    init.uniform_(self.bias, -bound, bound)
  end
  return self
end

local function conv_opts(self)
  local o = {stride = self.stride, padding = self.padding, dilation = self.dilation,
             groups = self.groups}
  if self.output_padding then o.output_padding = self.output_padding end
  return o
end

local Conv2d = Module:extend("Conv2d")
function Conv2d:init(cin, cout, k, opts) conv_init(self, "Conv2d", CONV, cin, cout, k, opts) end
Conv2d.reset_parameters = reset
function Conv2d:config()
  return ("Conv2d(%d, %d, %s%s)"):format(self.in_channels, self.out_channels, size_str(self._k),
                                         opts_str(self._opts, CONV, CONV_KEYS))
end
function Conv2d:extra_repr()
  return ("%s, %d params"):format(self:config():match("^Conv2d%((.*)%)$"), self:num_parameters())
end
function Conv2d:forward(x)
  check_image(self, x)
  check_channels(self, x, self.in_channels)
  return call(self, tide.conv2d, x, self.weight, self.bias, conv_opts(self))
end

local ConvTranspose2d = Module:extend("ConvTranspose2d")
function ConvTranspose2d:init(cin, cout, k, opts)
  conv_init(self, "ConvTranspose2d", CONVT, cin, cout, k, opts, true)
end
ConvTranspose2d.reset_parameters = reset
function ConvTranspose2d:config()
  return ("ConvTranspose2d(%d, %d, %s%s)"):format(self.in_channels, self.out_channels,
         size_str(self._k), opts_str(self._opts, CONVT, CONVT_KEYS))
end
function ConvTranspose2d:extra_repr()
  return ("%s, %d params"):format(self:config():match("^ConvTranspose2d%((.*)%)$"),
                                  self:num_parameters())
end
function ConvTranspose2d:forward(x)
  check_image(self, x)
  check_channels(self, x, self.in_channels)
  return call(self, tide.conv_transpose2d, x, self.weight, self.bias, conv_opts(self))
end

---- pooling ---------------------------------------------------------------------------------

local function pool(name, op)
  local cls = Module:extend(name)
  function cls:init(k, opts)
    local cfg = name .. "(" .. size_str(k) .. ")"
    local o = options(cfg, opts, {stride = false, padding = 0})
    self.kernel_size = pair(cfg, "kernel_size", k, true)
    self.stride = o.stride and pair(cfg, "stride", o.stride, true) or self.kernel_size
    self.padding = pair(cfg, "padding", o.padding, false)
    for i = 1, 2 do                          -- PyTorch's rule: no window of padding alone
      if 2 * self.padding[i] > self.kernel_size[i] then
        error(("%s: padding %s must be at most half the kernel size"):format(cfg,
              size_str(o.padding)), 3)
      end
    end
    self._k, self._opts = k, o
  end
  function cls:config()
    local parts = {}
    if self._opts.stride then parts[#parts + 1] = "stride = " .. size_str(self._opts.stride) end
    if self._opts.padding ~= 0 then parts[#parts + 1] = "padding = " .. size_str(self._opts.padding) end
    return ("%s(%s%s)"):format(name, size_str(self._k),
                               #parts > 0 and ", {" .. table.concat(parts, ", ") .. "}" or "")
  end
  function cls:extra_repr() return self:config():match("^" .. name .. "%((.*)%)$") end
  function cls:forward(x)
    check_image(self, x)
    return call(self, tide[op], x, self.kernel_size, {stride = self.stride, padding = self.padding})
  end
  return cls
end

local AdaptiveAvgPool2d = Module:extend("AdaptiveAvgPool2d")
function AdaptiveAvgPool2d:init(out, opts)
  local cfg = "AdaptiveAvgPool2d(" .. size_str(out) .. ")"
  self.output_size = pair(cfg, "output_size", out, true)
  options(cfg, opts, {})
  self._out = out
end
function AdaptiveAvgPool2d:config() return "AdaptiveAvgPool2d(" .. size_str(self._out) .. ")" end
function AdaptiveAvgPool2d:extra_repr() return size_str(self._out) end
function AdaptiveAvgPool2d:forward(x)
  check_image(self, x)
  return call(self, tide.adaptive_avg_pool2d, x, self.output_size)
end

return {
  Conv2d = Conv2d, ConvTranspose2d = ConvTranspose2d,
  MaxPool2d = pool("MaxPool2d", "max_pool2d"), AvgPool2d = pool("AvgPool2d", "avg_pool2d"),
  AdaptiveAvgPool2d = AdaptiveAvgPool2d,
}
