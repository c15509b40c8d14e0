-- stdlib/tide/nn/layers.lua: the layers written in Lua on top of tensor ops: Linear, Flatten,
-- Dropout, Identity and the activations. Parameters are plain tensors with PyTorch's names,
-- shapes and default init (Linear.weight is out x in, Linear.bias is out).
local tide = require "tide"
local M = require "tide.nn.module"
local init = require "tide.nn.init_fns"

local Module, Parameter, is_tensor = M.Module, M.Parameter, tide.is_tensor
local U = require "tide.nn.util"
local options, call = U.options, U.call

local function check_input(self, x)
  if not is_tensor(x) then
    error(self:config() .. ": expected a tensor input, got " .. type(x), 3)
  end
end

---- Linear ----------------------------------------------------------------------------------

local Linear = Module:extend("Linear")

function Linear:init(in_features, out_features, opts)
  local cfg = ("Linear(%s, %s)"):format(tostring(in_features), tostring(out_features))
  local nin = type(in_features) == "number" and math.tointeger(in_features)
  local nout = type(out_features) == "number" and math.tointeger(out_features)
  if not (nin and nout and nin >= 1 and nout >= 1) then
    error(cfg .. ": sizes must be positive integers", 3)
  end
  local o = options(cfg, opts, {bias = true})
  self.in_features, self.out_features = nin, nout
  self.weight = Parameter(tide.empty(nout, nin))              -- out x in
  if o.bias then self.bias = Parameter(tide.empty(nout)) end  -- out
  self:reset_parameters()
end

-- PyTorch's default: weight kaiming_uniform_(a = sqrt 5), i.e. U(-1/sqrt(in), 1/sqrt(in)); the
-- bias from the same range.
function Linear:reset_parameters()
  init.kaiming_uniform_(self.weight, {a = math.sqrt(5)})
  if self.bias then
    local bound = 1 / math.sqrt(self.in_features)
    init.uniform_(self.bias, -bound, bound)
  end
  return self
end

function Linear:config()
  return ("Linear(%d, %d%s)"):format(self.in_features, self.out_features,
                                     self.bias and "" or ", {bias = false}")
end

function Linear:extra_repr()
  return ("%d -> %d, %s%d params"):format(self.in_features, self.out_features,
                                          self.bias and "" or "no bias, ", self:num_parameters())
end

function Linear:forward(x)                   -- x: ... x in -> ... x out
  check_input(self, x)
  if x:dim() == 0 then
    error(("%s: expected input with %d features, got a scalar"):format(self:config(),
          self.in_features), 2)
  elseif x:size(-1) ~= self.in_features then
    error(("%s: expected input with %d features, got %d (input %s)"):format(self:config(),
          self.in_features, x:size(-1), table.concat(x.shape, "x")), 2)
  end
  local w, b = self.weight, self.bias
  if x.dtype ~= w.dtype then U.dtype_error(self, x, w.dtype, 2) end
  if b then return tide.linear(x, w, b) end  -- one op: gradients come out in W's own layout
  if x:dim() == 2 then return x:mm(w:t()) end
  return x:matmul(w:t())
end

---- shape and regularisation ------------------------------------------------------------------

local Identity = Module:extend("Identity")
function Identity.forward(_, x) return x end

local Flatten = Module:extend("Flatten")
function Flatten:init(start_dim, end_dim, opts)
  local cfg = ("Flatten(%s, %s)"):format(tostring(start_dim or 2), tostring(end_dim or -1))
  self.start_dim, self.end_dim = start_dim or 2, end_dim or -1
  if math.type(self.start_dim) ~= "integer" or math.type(self.end_dim) ~= "integer" then
    error(cfg .. ": start_dim and end_dim must be integers", 3)
  end
  options(cfg, opts, {})
end
function Flatten:extra_repr() return ("start_dim=%d, end_dim=%d"):format(self.start_dim, self.end_dim) end
function Flatten:forward(x)
  check_input(self, x)
  return call(self, x.flatten, x, self.start_dim, self.end_dim)
end

local Dropout = Module:extend("Dropout")
function Dropout:init(p, opts)
  p = U.in_range("Dropout(" .. tostring(p) .. ")", "p", p or 0.5, "[0, 1)")
  options("Dropout(" .. p .. ")", opts, {})
  self.p = p
end
function Dropout:extra_repr() return "p=" .. self.p end
function Dropout:forward(x)
  check_input(self, x)
  return call(self, x.dropout, x, self.p, self.training)
end

---- activations -----------------------------------------------------------------------------

local function activation(name, method)
  local cls = Module:extend(name)
  function cls.init(_, opts) options(name, opts, {}) end
  function cls:forward(x)
    check_input(self, x)
    return call(self, x[method], x)
  end
  return cls
end

local GELU = activation("GELU", "gelu")
function GELU:init(opts)
  self.approximate = options("GELU", opts, {approximate = "none"}).approximate
  if self.approximate ~= "none" and self.approximate ~= "tanh" then
    error("GELU: approximate must be \"none\" or \"tanh\", got " .. tostring(self.approximate), 3)
  end
end
function GELU:extra_repr() return self.approximate == "tanh" and "approximate=tanh" or "" end
function GELU:forward(x)
  check_input(self, x)
  if self.approximate == "none" then return x:gelu() end
  local c = math.sqrt(2 / math.pi)           -- 0.5 x (1 + tanh(c (x + 0.044715 x^3)))
  return x * 0.5 * ((x + x * x * x * 0.044715) * c):tanh():add(1)
end

local function with_dim(name, method)
  local cls = activation(name, method)
  function cls:init(dim, opts)
    if math.type(dim) ~= "integer" then
      error(name .. ": dim must be an integer (e.g. nn." .. name .. "(-1)), got " .. tostring(dim), 3)
    end
    options(name .. "(" .. dim .. ")", opts, {})
    self.dim = dim
  end
  function cls:extra_repr() return "dim=" .. self.dim end
  function cls:forward(x)
    check_input(self, x)
    return call(self, x[method], x, self.dim)
  end
  return cls
end

return {
  Linear = Linear, Identity = Identity, Flatten = Flatten, Dropout = Dropout, GELU = GELU,
  ReLU = activation("ReLU", "relu"), Tanh = activation("Tanh", "tanh"),
  Sigmoid = activation("Sigmoid", "sigmoid"), SiLU = activation("SiLU", "silu"),
  Softmax = with_dim("Softmax", "softmax"), LogSoftmax = with_dim("LogSoftmax", "log_softmax"),
}
