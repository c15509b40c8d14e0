-- stdlib/tide/summary/macs.lua: the one place tide counts multiply-accumulates (MACs) per layer.
-- A formula takes the module, the list of its forward's arguments and its first result (tensors
-- as they were in this call, batch included) and returns the MACs the module does itself in
-- that call, its children excluded (each child counts its own). doc/summary.md lists them.
-- A module class can answer for itself with a method m:macs(inputs, output), which wins over
-- this table; classes it does not know count 0. Sizes: N the output's elements, B batch.
local is_tensor = require("tide").is_tensor

local M = {}

local function numel(t) return t:numel() end

-- rows of the last dim: B x T x ... for a tensor whose last dim is features
local function rows(t) return t:numel() // t:size(-1) end

local function linear(m, _, out) return numel(out) * m.in_features end

local function conv(m, _, out)                 -- N x (in/groups) x kh x kw
  return numel(out) * (m.in_channels // m.groups) * m.kernel_size[1] * m.kernel_size[2]
end

local function conv_transpose(m, inputs)       -- each input pixel scatters a kernel
  return numel(inputs[1]) * (m.out_channels // m.groups) * m.kernel_size[1] * m.kernel_size[2]
end

local function per_element(_, _, out) return numel(out) end  -- the scale and shift

local function avg_pool(m, _, out) return numel(out) * m.kernel_size[1] * m.kernel_size[2] end

-- the total length of the windows of adaptive pooling along one dim (windows may overlap)
local function windows(n_in, n_out)
  local s = 0
  for i = 0, n_out - 1 do
    s = s + (-((-(i + 1) * n_in) // n_out)) - (i * n_in) // n_out   -- ceil - floor
  end
  return s
end

local function adaptive_avg_pool(m, inputs, out)
  local x = inputs[1]
  local d = x:dim()
  local planes = numel(out) // (out:size(d - 1) * out:size(d))
  return planes * windows(x:size(d - 1), m.output_size[1]) * windows(x:size(d), m.output_size[2])
end

-- per layer and direction, every step: the G = gates x H rows of W_ih and W_hh on the step's
-- input and hidden state (gate nonlinearities and products are not counted)
local function rnn(m, inputs)
  local x, H = inputs[1], m.hidden_size
  local TB = rows(x)                          -- T x B steps
  local D = m.bidirectional and 2 or 1
  local G = m.gates * H
  local total = 0
  for l = 0, m.num_layers - 1 do
    local lin = l == 0 and m.input_size or H * D
    total = total + D * TB * G * (lin + H)
  end
  return total
end

-- q, k, v projections (L + 2 S) d^2 per batch element, then Q K^T and the weighted sum of V,
-- L S d each; out_proj is a Linear child and counts itself
local function attention(m, inputs)
  local q, k, v = inputs[1], inputs[2], inputs[3]
  if not is_tensor(k) then k = q end        -- forward(q, opts): self-attention
  if not is_tensor(v) then v = k end
  local d = m.embed_dim
  local S = (k:dim() == 3 and m.batch_first) and k:size(2) or k:size(1)
  local BL, BS = rows(q), rows(k)
  return (BL + BS + rows(v)) * d * d + 2 * BL * S * d
end

-- formulas by class name (nn's classes; another file can add its own here)
M.formulas = {
  Linear = linear, Conv2d = conv, ConvTranspose2d = conv_transpose,
  RNN = rnn, LSTM = rnn, GRU = rnn, MultiheadAttention = attention,
  BatchNorm1d = per_element, BatchNorm2d = per_element, LayerNorm = per_element,
  AvgPool2d = avg_pool, AdaptiveAvgPool2d = adaptive_avg_pool,
}

-- the formula for m: its own macs method, else the table's row for its class or the nearest
-- parent class that has one, else nil (the module does no MACs of its own)
function M.formula(m)
  local f = m.macs
  if type(f) == "function" then return f end
  local cls = getmetatable(m)
  while type(cls) == "table" do
    local row = M.formulas[rawget(cls, "__name")]
    if row then return row end
    local up = getmetatable(cls)
    cls = type(up) == "table" and rawget(up, "__index") or nil
  end
  return nil
end

return M
