-- stdlib/tide/nn/attention.lua: nn.MultiheadAttention on the fused op
-- tide.scaled_dot_product_attention, with PyTorch's parameters (in_proj_weight 3d x d,
-- in_proj_bias 3d, out_proj a Linear) and init. Sizes: B batch, L queries, S keys, d = embed_dim
-- = H heads x hd features each.
local tide = require "tide"
local M = require "tide.nn.module"
local init = require "tide.nn.init_fns"
local U = require "tide.nn.util"
local Linear = require("tide.nn.layers").Linear

local Module, Parameter, is_tensor = M.Module, M.Parameter, tide.is_tensor
local options, shape, opts_str = U.options, U.shape, U.opts_str

local MHA_DEFAULTS = {dropout = 0, batch_first = true, bias = true}
local CALL_DEFAULTS = {mask = false, causal = false, need_weights = true, key_padding_mask = false,
                       average_attn_weights = true}

local MultiheadAttention = Module:extend("MultiheadAttention")

function MultiheadAttention:init(d, heads, opts)
  local cfg = ("MultiheadAttention(%s, %s)"):format(tostring(d), tostring(heads))
  local nd = type(d) == "number" and math.tointeger(d)
  local nh = type(heads) == "number" and math.tointeger(heads)
  if not (nd and nh and nd >= 1 and nh >= 1) then
    error(cfg .. ": embed_dim and num_heads must be positive integers", 3)
  end
  if nd % nh ~= 0 then
    error(("%s: embed_dim %d is not divisible by num_heads %d"):format(cfg, nd, nh), 3)
  end
  local o = options(cfg, opts, MHA_DEFAULTS)
  U.in_range(cfg, "dropout", o.dropout, "[0, 1)")
  self._opts = o
  self.embed_dim, self.num_heads, self.head_dim = nd, nh, nd // nh
  self.dropout, self.batch_first = o.dropout, o.batch_first and true or false
  self.in_proj_weight = Parameter(tide.empty(3 * nd, nd))          -- (q; k; v) x d
  if o.bias then self.in_proj_bias = Parameter(tide.zeros(3 * nd)) end
  self.out_proj = Linear(nd, nd, {bias = o.bias and true or false})
  self:reset_parameters()
end

-- PyTorch's _reset_parameters: xavier_uniform_ in_proj_weight, zero biases; out_proj.weight
-- keeps Linear's default init
function MultiheadAttention:reset_parameters()
  init.xavier_uniform_(self.in_proj_weight)
  if self.in_proj_bias then
    init.zeros_(self.in_proj_bias)
    init.zeros_(self.out_proj.bias)
  end
  return self
end

function MultiheadAttention:config()
  return ("MultiheadAttention(%d, %d%s)"):format(self.embed_dim, self.num_heads,
    opts_str(self._opts, MHA_DEFAULTS, {"dropout", "batch_first", "bias"}))
end
function MultiheadAttention:extra_repr()
  return self:config():match("^MultiheadAttention%((.*)%)$")
end

-- rows r..r+n-1 of the packed projection (a view: gradients reach the parameter)
local function rows(t, r, n) return t and t:narrow(1, r, n) or nil end

-- x W^T + b on B x T x d: one addmm on the (B T) x d rows, the bias inside the GEMM's pass
local function linear(x, w, b)
  local B, T = x:size(1), x:size(2)
  local x2 = x:reshape(B * T, x:size(3))
  local y = b and tide.addmm(b, x2, w:t()) or x2:mm(w:t())
  return y:view(B, T, w:size(1))
end

-- B x T x (n d) -> n tensors B x H x T x hd, views of y (no copies: the kernel reads strides)
local function heads(y, n, H, hd)
  local B, T = y:size(1), y:size(2)
  local v = y:view(B, T, n, H, hd)
  local out = {}
  for i = 1, n do out[i] = v:select(3, i):transpose(2, 3) end
  return table.unpack(out)
end

-- a mask as an additive float mask of dtype dt (bool true = masked out, as PyTorch's
-- attn_mask and key_padding_mask)
local function additive(m, dt)
  if m.dtype == "bool" then return tide.zeros(m.shape, {dtype = dt}):masked_fill(m, -math.huge) end
  return m
end

function MultiheadAttention:forward(q, k, v, opts)
  local cfg = self:config()
  if type(k) == "table" and not is_tensor(k) and v == nil and opts == nil then k, opts = nil, k end
  k = k or q
  v = v or k
  for i, t in ipairs({q, k, v}) do
    if not is_tensor(t) then
      error(("%s: %s must be a tensor, got %s"):format(cfg, ({"query", "key", "value"})[i], type(t)), 2)
    end
  end
  local o = options(cfg, opts, CALL_DEFAULTS, 3)
  local d, H, hd = self.embed_dim, self.num_heads, self.head_dim
  local function bad(why)
    error(("%s: %s (query %s, key %s, value %s)"):format(cfg, why, shape(q), shape(k), shape(v)), 3)
  end
  local nd = q:dim()
  if nd ~= 2 and nd ~= 3 then
    bad("expected 3-D inputs (" .. (self.batch_first and "B x L x d" or "L x B x d") .. ") or 2-D (L x d)")
  end
  if k:dim() ~= nd or v:dim() ~= nd then bad("query, key and value must have the same number of dims") end
  if q:size(-1) ~= d or k:size(-1) ~= d or v:size(-1) ~= d then
    bad("expected " .. d .. " features in the last dim")
  end
  local dt = self.in_proj_weight.dtype
  if q.dtype ~= dt or k.dtype ~= dt or v.dtype ~= dt then
    bad(("expected %s inputs (the dtype of its parameters), got %s, %s and %s"):format(dt,
        q.dtype, k.dtype, v.dtype))
  end
  local unbatched = nd == 2
  local x, kk, vv = q, k, v
  if unbatched then
    x, kk, vv = q:unsqueeze(1), k:unsqueeze(1), v:unsqueeze(1)
  elseif not self.batch_first then
    x, kk, vv = q:transpose(1, 2), k:transpose(1, 2), v:transpose(1, 2)
  end
  local B, L, S = x:size(1), x:size(2), kk:size(2)
  if kk:size(1) ~= B or vv:size(1) ~= B then bad("query, key and value must have the same batch size") end
  if vv:size(2) ~= S then bad("key and value must have the same length") end
  -- projections: one GEMM for self-attention, two for key = value
  local w, b = self.in_proj_weight, self.in_proj_bias
  local qh, kh, vh
  if rawequal(q, k) and rawequal(k, v) then
    qh, kh, vh = heads(linear(x, w, b), 3, H, hd)
  else
    qh = heads(linear(x, rows(w, 1, d), rows(b, 1, d)), 1, H, hd)
    if rawequal(k, v) then
      kh, vh = heads(linear(kk, rows(w, d + 1, 2 * d), rows(b, d + 1, 2 * d)), 2, H, hd)
    else
      kh = heads(linear(kk, rows(w, d + 1, d), rows(b, d + 1, d)), 1, H, hd)
      vh = heads(linear(vv, rows(w, 2 * d + 1, d), rows(b, 2 * d + 1, d)), 1, H, hd)
    end
  end
  -- masks: attn_mask L x S or (B H) x L x S, key_padding_mask B x S; bool true = masked out
  local mask = o.mask or nil
  if mask then
    if not is_tensor(mask) then bad("mask must be a tensor, got " .. type(mask)) end
    local ok = (mask:dim() == 2 and mask:size(1) == L and mask:size(2) == S)
      or (mask:dim() == 3 and mask:size(1) == B * H and mask:size(2) == L and mask:size(3) == S)
    if not ok then
      bad(("mask must be %d x %d or %d x %d x %d, got %s"):format(L, S, B * H, L, S, shape(mask)))
    end
    if mask:dim() == 3 then mask = mask:view(B, H, L, S) end
  end
  local kpm = o.key_padding_mask or nil
  if kpm then
    if not is_tensor(kpm) then bad("key_padding_mask must be a tensor, got " .. type(kpm)) end
    if unbatched and kpm:dim() == 1 then kpm = kpm:unsqueeze(1) end
    if kpm:dim() ~= 2 or kpm:size(1) ~= B or kpm:size(2) ~= S then
      bad(("key_padding_mask must be %d x %d, got %s"):format(B, S, shape(kpm)))
    end
    kpm = kpm:view(B, 1, 1, S)
    if not mask then mask = kpm
    elseif mask.dtype == "bool" and kpm.dtype == "bool" then mask = mask:logical_or(kpm)
    else mask = additive(mask, qh.dtype) + additive(kpm, qh.dtype) end
  end
  if mask and mask.dtype == "bool" then mask = mask:logical_not() end -- the op: true = attend
  local p = self.training and self.dropout or 0
  local out, weights = tide.scaled_dot_product_attention(qh, kh, vh, mask,
                                                         {causal = o.causal, dropout = p})
  out = self.out_proj(out:transpose(2, 3):reshape(B, L, d))           -- B x L x d
  if unbatched then out = out:squeeze(1)
  elseif not self.batch_first then out = out:transpose(1, 2) end
  if not o.need_weights then return out, nil end
  if o.average_attn_weights then weights = weights:mean(2) end        -- B x L x S
  if unbatched then weights = weights:squeeze(1) end
  return out, weights
end

return {MultiheadAttention = MultiheadAttention}
