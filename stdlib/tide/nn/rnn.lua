-- stdlib/tide/nn/rnn.lua: nn.RNN, nn.LSTM and nn.GRU, multi-layer and bidirectional, with
-- PyTorch's parameter names, shapes, gate order and init, so a PyTorch state dict maps one to
-- one. Per layer and direction: one GEMM projects the input of every step (x W_ih^T + biases),
-- then one fused C scan (t:lstm_scan, t:gru_scan, t:rnn_tanh_scan, t:rnn_relu_scan) runs the
-- steps. Sizes: T steps, B batch, H hidden, D directions, L layers, G gate rows (4H, 3H, H).
local tide = require "tide"
local M = require "tide.nn.module"
local init = require "tide.nn.init_fns"
local U = require "tide.nn.util"

local Module, Parameter, is_tensor = M.Module, M.Parameter, tide.is_tensor

local DEFAULTS = {num_layers = 1, batch_first = false, dropout = 0, bidirectional = false,
                  bias = true}
local KEYS = {"num_layers", "batch_first", "dropout", "bidirectional", "bias", "nonlinearity"}

local RNNBase = Module:extend("RNNBase")

-- mode: "LSTM", "GRU", "RNN_TANH" or "RNN_RELU"; gates: rows of W per hidden unit
function RNNBase:setup(name, gates, input_size, hidden_size, o)
  local cfg = ("%s(%s, %s)"):format(name, tostring(input_size), tostring(hidden_size))
  local nin = math.type(input_size) == "integer" and input_size
  local nh = math.type(hidden_size) == "integer" and hidden_size
  if not (nin and nh and nin >= 1 and nh >= 1) then
    error(cfg .. ": sizes must be positive integers", 4)
  end
  local L = o.num_layers
  if math.type(L) ~= "integer" or L < 1 then
    error(cfg .. ": num_layers must be a positive integer, got " .. tostring(L), 4)
  end
  U.in_range(cfg, "dropout", o.dropout, "[0, 1)", 5)
  self.input_size, self.hidden_size, self.num_layers = nin, nh, L
  self.batch_first, self.bidirectional = o.batch_first and true or false, o.bidirectional and true or false
  self.dropout, self.bias, self.opts = o.dropout, o.bias and true or false, o
  self.gates, self.name = gates, name
  local D = self.bidirectional and 2 or 1
  for l = 0, L - 1 do                        -- PyTorch's order: per layer, per direction
    for d = 0, D - 1 do
      local sfx = ("_l%d%s"):format(l, d == 1 and "_reverse" or "")
      local lin = l == 0 and nin or nh * D
      self["weight_ih" .. sfx] = Parameter(tide.empty(gates * nh, lin))    -- G x in
      self["weight_hh" .. sfx] = Parameter(tide.empty(gates * nh, nh))     -- G x H
      if self.bias then
        self["bias_ih" .. sfx] = Parameter(tide.empty(gates * nh))         -- G
        self["bias_hh" .. sfx] = Parameter(tide.empty(gates * nh))         -- G
      end
    end
  end
  self:reset_parameters()
end

-- PyTorch's default: every weight and bias uniform in (-1/sqrt(H), 1/sqrt(H))
function RNNBase:reset_parameters()
  local k = 1 / math.sqrt(self.hidden_size)
  for _, p in ipairs(self:parameters()) do init.uniform_(p, -k, k) end
  return self
end

function RNNBase:config()
  local o = self.opts
  local shown = {nonlinearity = "tanh"}          -- LSTM and GRU have none: never shown
  for k, v in pairs(o) do shown[k] = v end
  local defaults = {}
  for k, v in pairs(DEFAULTS) do defaults[k] = v end
  defaults.nonlinearity = "tanh"
  local str = function(v) return type(v) == "string" and ('"' .. v .. '"') or tostring(v) end
  return ("%s(%d, %d%s)"):format(self.name, self.input_size, self.hidden_size,
                                 U.opts_str(shown, defaults, KEYS, nil, str))
end

function RNNBase:extra_repr()
  local D = self.bidirectional and 2 or 1
  return ("%d -> %d, %d layer%s%s, %d params"):format(self.input_size, self.hidden_size * D,
    self.num_layers, self.num_layers > 1 and "s" or "", D == 2 and ", bidirectional" or "",
    self:num_parameters())
end

function RNNBase:fail(msg) error(self:config() .. ": " .. msg, 4) end

-- the initial state for one layer and direction (row i of h0 and c0): what the scan takes
function RNNBase:state0(h0, c0, i)
  local h = h0:select(1, i)
  if self.mode ~= "LSTM" then return h end
  return tide.stack({h, c0:select(1, i)})    -- 2 x B x H
end

-- h0 (and c0) checked against (L*D) x B x H, or zeros of that shape
function RNNBase:initial(state, B, dtype, unbatched)
  local H, LD = self.hidden_size, self.num_layers * (self.bidirectional and 2 or 1)
  if state == nil then
    local z = tide.zeros({LD, B, H}, {dtype = dtype})
    return z, z
  end
  local lstm = self.mode == "LSTM"
  local h, c = state, nil
  if lstm then
    if type(state) ~= "table" or is_tensor(state) or not is_tensor(state[1]) or not is_tensor(state[2]) then
      self:fail("expected the state as a table {h0, c0} of tensors, got " .. type(state))
    end
    h, c = state[1], state[2]
  elseif not is_tensor(h) then
    self:fail("expected the state h0 as a tensor, got " .. type(h))
  end
  local want = unbatched and ("%dx%d"):format(LD, H) or ("%dx%dx%d"):format(LD, B, H)
  for _, pair in ipairs({{"h0", h}, {"c0", c}}) do
    local nm, t = pair[1], pair[2]
    if t then
      if U.shape(t) ~= want then
        self:fail(("expected %s of shape %s, got %s"):format(nm, want, U.shape(t)))
      elseif t.dtype ~= dtype then
        self:fail(("%s is %s but the input is %s"):format(nm, t.dtype, dtype))
      end
    end
  end
  if unbatched then h, c = h:unsqueeze(2), c and c:unsqueeze(2) end
  return h, c
end

-- One layer and direction: x is T x B x in (time-major) or B x T x in (bf, layer 0 only);
-- returns the scan's output (T x B x H, in the scan's time order) and, LSTM, c at its last step.
-- The input projection of one layer and direction: x2 (T*B x in) W_ih^T + biases, one GEMM.
-- (tide.quant's int8 LSTM overrides it, and recurrent_weight.)
function RNNBase:project(x2, sfx)
  local w_ih, b_ih, b_hh = self["weight_ih" .. sfx], self["bias_ih" .. sfx], self["bias_hh" .. sfx]
  local b = b_ih
  if b and self.mode ~= "GRU" then b = b_ih + b_hh end  -- GRU keeps b_hh inside r * (.)
  return b and tide.addmm(b, x2, w_ih:t()) or x2:mm(w_ih:t())  -- (T*B) x G
end
function RNNBase:recurrent_weight(sfx) return self["weight_hh" .. sfx] end
function RNNBase:param_dtype() return self.weight_ih_l0.dtype end

function RNNBase:direction(x, sfx, s0, bf, reverse)
  local w_hh, b_hh = self:recurrent_weight(sfx), self["bias_hh" .. sfx]
  local T, B = x:size(bf and 2 or 1), x:size(bf and 1 or 2)
  local gx = self:project(x:reshape(-1, x:size(3)), sfx)
  local G = gx:size(2)
  gx = bf and gx:view(B, T, G):transpose(1, 2) or gx:view(T, B, G)
  if reverse then gx = gx:index(1, tide.arange(T, 1, -1, {dtype = "int64"})) end
  if self.mode == "LSTM" then                -- S: T x B x 6H saved state, c in its first H
    local out, S = gx:lstm_scan(w_hh, s0)
    return out, S:select(1, T):narrow(2, 1, self.hidden_size)
  end
  if self.mode == "GRU" then                 -- w_hh with b_hh as its last column: G x (H+1)
    local bh = b_hh or tide.zeros({G}, {dtype = w_hh.dtype})
    return (gx:gru_scan(tide.cat({w_hh, bh:view(G, 1)}, 2), s0))
  end
  if self.mode == "RNN_RELU" then return gx:rnn_relu_scan(w_hh, s0) end
  return gx:rnn_tanh_scan(w_hh, s0)
end

function RNNBase:forward(x, state)
  if not is_tensor(x) then self:fail("expected a tensor input, got " .. type(x)) end
  local nd = x:dim()
  if nd ~= 2 and nd ~= 3 then
    self:fail(("expected input of 3 dims (%s x in) or 2 (T x in, unbatched), got %s"):format(
      self.batch_first and "B x T" or "T x B", U.shape(x)))
  end
  if x:size(-1) ~= self.input_size then
    self:fail(("expected input with %d features, got %d (input %s)"):format(
      self.input_size, x:size(-1), U.shape(x)))
  end
  local pdt = self:param_dtype()
  if not x.dtype:match("^float") then
    self:fail(("expected a %s input (the dtype of its parameters), got %s (input %s)"):format(
      pdt, x.dtype, U.shape(x)))
  elseif x.dtype ~= pdt then
    self:fail(("input is %s but the parameters are %s (use :to(\"%s\"))"):format(
      x.dtype, pdt, x.dtype))
  end
  local unbatched = nd == 2
  local bf = self.batch_first and not unbatched
  if unbatched then x = x:unsqueeze(2) end   -- T x 1 x in
  local T, B = x:size(bf and 2 or 1), x:size(bf and 1 or 2)
  local h0, c0 = self:initial(state, B, x.dtype, unbatched)
  local D, L, lstm = self.bidirectional and 2 or 1, self.num_layers, self.mode == "LSTM"
  local hn, cn, rev = {}, {}, nil
  for l = 0, L - 1 do
    local outs = {}
    for d = 0, D - 1 do
      local i = l * D + d + 1
      local out, c = self:direction(x, ("_l%d%s"):format(l, d == 1 and "_reverse" or ""),
                                    self:state0(h0, c0, i), bf and l == 0, d == 1)
      hn[i], cn[i] = out:select(1, T), c    -- the scan's last step
      if d == 1 then
        rev = rev or tide.arange(T, 1, -1, {dtype = "int64"})
        out = out:index(1, rev)             -- back to time order
      end
      outs[d + 1] = out
    end
    x = D == 1 and outs[1] or tide.cat(outs, 3)  -- T x B x D*H
    if l < L - 1 and self.dropout > 0 and self.training then x = x:dropout(self.dropout, true) end
  end
  local h = tide.stack(hn)                    -- (L*D) x B x H
  local c = lstm and tide.stack(cn) or nil
  if unbatched then
    x, h, c = x:select(2, 1), h:select(2, 1), c and c:select(2, 1)
  elseif self.batch_first then
    x = x:transpose(1, 2)                     -- B x T x D*H
  end
  if lstm then return x, {h, c} end
  return x, h
end

local function class(name, mode, gates)
  local cls = RNNBase:extend(name)
  function cls:init(input_size, hidden_size, opts)
    local cfg = ("%s(%s, %s)"):format(name, tostring(input_size), tostring(hidden_size))
    local defaults = {}
    for k, v in pairs(DEFAULTS) do defaults[k] = v end
    if mode == "RNN" then defaults.nonlinearity = "tanh" end
    local o = U.options(cfg, opts, defaults)
    self.mode = mode
    if mode == "RNN" then
      if o.nonlinearity ~= "tanh" and o.nonlinearity ~= "relu" then
        error(cfg .. ': nonlinearity must be "tanh" or "relu", got ' .. tostring(o.nonlinearity), 3)
      end
      self.mode, self.nonlinearity = o.nonlinearity == "relu" and "RNN_RELU" or "RNN_TANH", o.nonlinearity
    end
    self:setup(name, gates, input_size, hidden_size, o)
  end
  return cls
end

return {RNN = class("RNN", "RNN", 1), LSTM = class("LSTM", "LSTM", 4), GRU = class("GRU", "GRU", 3)}
