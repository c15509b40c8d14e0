-- stdlib/tide/nn/transformer.lua: nn.TransformerEncoderLayer, nn.TransformerEncoder and
-- nn.PositionalEncoding, with PyTorch's submodule names (self_attn, linear1, linear2, norm1,
-- norm2, dropout, dropout1, dropout2; layers.N, norm) so state dicts map one to one. Sizes: B batch,
-- T positions, d = d_model.
local tide = require "tide"
local M = require "tide.nn.module"
local U = require "tide.nn.util"
local layers = require "tide.nn.layers"
local LayerNorm = require("tide.nn.norm").LayerNorm
local MultiheadAttention = require("tide.nn.attention").MultiheadAttention
local ModuleList = require("tide.nn.containers").ModuleList

local Module, is_tensor, is_module = M.Module, tide.is_tensor, M.is_module
local Linear, Dropout = layers.Linear, layers.Dropout
local options, shape, opts_str = U.options, U.shape, U.opts_str

local LAYER_DEFAULTS = {dim_feedforward = 2048, dropout = 0.1, activation = "relu",
                        norm_first = false, batch_first = true, layer_norm_eps = 1e-5, bias = true}
local LAYER_KEYS = {"dim_feedforward", "dropout", "activation", "norm_first", "batch_first",
                    "layer_norm_eps", "bias"}
local CALL_DEFAULTS = {mask = false, causal = false, key_padding_mask = false}
local ACTIVATIONS = {relu = function(x) return x:relu() end, gelu = function(x) return x:gelu() end}

-- x, or dropout(x) when the module is training with p > 0 (dropout with p = 0 would copy x)
local function drop(m, x)
  if m.training and m.p > 0 then return x:dropout(m.p, true) end
  return x
end

local function posint(cfg, what, v)
  local n = type(v) == "number" and math.tointeger(v)
  if not (n and n >= 1) then error(cfg .. ": " .. what .. " must be a positive integer", 4) end
  return n
end

---- TransformerEncoderLayer -------------------------------------------------------------------

local EncoderLayer = Module:extend("TransformerEncoderLayer")

function EncoderLayer:init(d, heads, opts)
  local cfg = ("TransformerEncoderLayer(%s, %s)"):format(tostring(d), tostring(heads))
  d, heads = posint(cfg, "d_model", d), posint(cfg, "nhead", heads)
  if d % heads ~= 0 then
    error(("%s: d_model %d is not divisible by nhead %d"):format(cfg, d, heads), 3)
  end
  local o = options(cfg, opts, LAYER_DEFAULTS)
  U.in_range(cfg, "dropout", o.dropout, "[0, 1)")
  U.in_range(cfg, "layer_norm_eps", o.layer_norm_eps, "[0, inf)")
  local act = o.activation
  if not (ACTIVATIONS[act] or type(act) == "function") then
    error(cfg .. ": activation must be \"relu\", \"gelu\" or a function, got " .. tostring(act), 3)
  end
  local ff = posint(cfg, "dim_feedforward", o.dim_feedforward)
  self._args, self._opts = {d, heads, opts}, o
  self.d_model, self.nhead, self.norm_first = d, heads, o.norm_first and true or false
  self.batch_first = o.batch_first and true or false
  self.activation = ACTIVATIONS[act] or act
  self.self_attn = MultiheadAttention(d, heads, {dropout = o.dropout, batch_first = o.batch_first,
                                                 bias = o.bias})
  self.linear1 = Linear(d, ff, {bias = o.bias})
  self.dropout = Dropout(o.dropout)
  self.linear2 = Linear(ff, d, {bias = o.bias})
  self.norm1 = LayerNorm(d, {eps = o.layer_norm_eps, bias = o.bias})
  self.norm2 = LayerNorm(d, {eps = o.layer_norm_eps, bias = o.bias})
  self.dropout1 = Dropout(o.dropout)
  self.dropout2 = Dropout(o.dropout)
end

function EncoderLayer:config()
  return ("TransformerEncoderLayer(%d, %d%s)"):format(self.d_model, self.nhead,
    opts_str(self._opts, LAYER_DEFAULTS, LAYER_KEYS))
end
function EncoderLayer:extra_repr() return self:config():match("^TransformerEncoderLayer%((.*)%)$") end

-- a new layer with the same configuration and copies of the parameter values
function EncoderLayer:clone()
  local c = EncoderLayer(table.unpack(self._args, 1, 3))
  local src = self:state_dict()
  c:load_state_dict(src)
  c:train(self.training)
  return c
end

function EncoderLayer:_sa(x, o)
  local y = self.self_attn(x, x, x, {mask = o.mask, causal = o.causal,
                                     key_padding_mask = o.key_padding_mask, need_weights = false})
  return drop(self.dropout1, y)
end

function EncoderLayer:_ff(x)
  local h = drop(self.dropout, self.activation(self.linear1(x)))
  return drop(self.dropout2, self.linear2(h))
end

function EncoderLayer:forward(x, opts)                 -- x: B x T x d (T x B x d unless batch_first)
  local cfg = self:config()
  if not is_tensor(x) then error(cfg .. ": expected a tensor input, got " .. type(x), 2) end
  if (x:dim() ~= 3 and x:dim() ~= 2) or x:size(-1) ~= self.d_model then
    error(("%s: expected input %s x %d, got %s"):format(cfg,
          self.batch_first and "B x T" or "T x B", self.d_model, shape(x)), 2)
  end
  local dt = self.linear1.weight.dtype
  if x.dtype ~= dt then
    error(("%s: expected a %s input (the dtype of its parameters), got %s (input %s)"):format(cfg,
          dt, x.dtype, shape(x)), 2)
  end
  local o = options(cfg, opts, CALL_DEFAULTS, 3)
  if self.norm_first then
    x = x + self:_sa(self.norm1(x), o)
    return x + self:_ff(self.norm2(x))
  end
  x = self.norm1(x + self:_sa(x, o))
  return self.norm2(x + self:_ff(x))
end

---- TransformerEncoder --------------------------------------------------------------------------

local Encoder = Module:extend("TransformerEncoder")

-- layer: a TransformerEncoderLayer, or its options {d_model=, nhead=, dim_feedforward=, ...};
-- either way one layer is cloned n times, so the layers start equal, as in PyTorch.
-- opts.norm: a module applied after the last layer, or true for LayerNorm(d_model).
function Encoder:init(layer, n, opts)
  local proto = layer
  if not (is_module(layer) and getmetatable(layer) == EncoderLayer) then
    if type(layer) ~= "table" or is_module(layer) then
      error(("TransformerEncoder(%s, %s): expected a TransformerEncoderLayer or its options "
             .. "{d_model=, nhead=, ...}"):format(is_module(layer) and layer:config() or type(layer),
             tostring(n)), 3)
    end
    local lo = {}
    for k, v in pairs(layer) do if k ~= "d_model" and k ~= "nhead" then lo[k] = v end end
    proto = EncoderLayer(layer.d_model, layer.nhead, lo)
  end
  local cfg = ("TransformerEncoder(%s, %s)"):format(proto:config(), tostring(n))
  n = posint(cfg, "num_layers", n)
  local o = options(cfg, opts, {norm = false})
  local list = {}
  for i = 1, n do list[i] = proto:clone() end
  self.num_layers = n
  self.layers = ModuleList(list)
  if o.norm == true then
    self.norm = LayerNorm(proto.d_model, {eps = proto._opts.layer_norm_eps})
  elseif o.norm then
    if not is_module(o.norm) then error(cfg .. ": norm must be a module or true, got " .. type(o.norm), 3) end
    self.norm = o.norm
  end
end

function Encoder:config()
  return ("TransformerEncoder(%s, %d)"):format(self.layers[1]:config(), self.num_layers)
end
function Encoder.extra_repr() return "" end

function Encoder:forward(x, opts)
  for _, layer in ipairs(self.layers) do x = layer(x, opts) end
  if self.norm then x = self.norm(x) end
  return x
end

---- PositionalEncoding ----------------------------------------------------------------------

local PositionalEncoding = Module:extend("PositionalEncoding")

-- PyTorch's tutorial: pe[t, 1, 2i-1] = sin(t / 10000^(2(i-1)/d)), pe[t, 1, 2i] = cos(...), t from
-- 0, a buffer max_len x 1 x d (the tutorial's layout, so its state dicts load)
function PositionalEncoding:init(d, max_len, opts)
  local cfg = ("PositionalEncoding(%s, %s)"):format(tostring(d), tostring(max_len))
  d = posint(cfg, "d_model", d)
  max_len = posint(cfg, "max_len", max_len or 5000)
  local o = options(cfg, opts, {dropout = 0.1, batch_first = true})
  U.in_range(cfg, "dropout", o.dropout, "[0, 1)")
  self.d_model, self.max_len, self.batch_first = d, max_len, o.batch_first and true or false
  self._opts = o
  self.dropout = Dropout(o.dropout)
  local half = (d + 1) // 2
  local pos = tide.arange(0, max_len - 1, {dtype = "float64"}):view(max_len, 1)
  local div = (tide.arange(0, half - 1, {dtype = "float64"}) * (-2 * math.log(10000) / d)):exp()
  local ang = pos * div:view(1, half)                                  -- max_len x half
  local pe = tide.stack({ang:sin(), ang:cos()}, 3):view(max_len, 2 * half):narrow(2, 1, d)
  self:register_buffer("pe", pe:contiguous():to("float32"):view(max_len, 1, d))
end

function PositionalEncoding:config()
  return ("PositionalEncoding(%d, %d%s)"):format(self.d_model, self.max_len,
    opts_str(self._opts, {dropout = 0.1, batch_first = true}, {"dropout", "batch_first"}))
end
function PositionalEncoding:extra_repr() return self:config():match("^PositionalEncoding%((.*)%)$") end

function PositionalEncoding:forward(x)                -- x: B x T x d (T x B x d unless batch_first)
  local cfg = self:config()
  if not is_tensor(x) or x:dim() ~= 3 or x:size(3) ~= self.d_model then
    error(("%s: expected input %s x %d, got %s"):format(cfg, self.batch_first and "B x T" or "T x B",
          self.d_model, is_tensor(x) and shape(x) or type(x)), 2)
  end
  if not x.dtype:match("^float") then
    error(("%s: expected a float input, got %s (input %s)"):format(cfg, x.dtype, shape(x)), 2)
  end
  local T = x:size(self.batch_first and 2 or 1)
  if T > self.max_len then
    error(("%s: sequence of %d positions is longer than max_len %d (input %s)"):format(cfg, T,
          self.max_len, shape(x)), 2)
  end
  local pe = self.pe:narrow(1, 1, T)                                   -- T x 1 x d
  if pe.dtype ~= x.dtype then pe = pe:to(x.dtype) end
  if self.batch_first then pe = pe:view(T, self.d_model) end           -- broadcasts over B
  return drop(self.dropout, x + pe)
end

return {TransformerEncoderLayer = EncoderLayer, TransformerEncoder = Encoder,
        PositionalEncoding = PositionalEncoding}
