-- stdlib/tide/nn/functional.lua: nn.F, the functional forms of the layers and losses. Most are
-- the tide.* ops themselves (doc/nn_functional.md); linear is composed here.
local tide = require "tide"

local F = {}

for _, name in ipairs({
  "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
  "relu", "gelu", "softmax", "log_softmax", "dropout", "embedding", "layer_norm", "batch_norm",
  "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "binary_cross_entropy",
  "binary_cross_entropy_with_logits", "kl_div",
}) do
  F[name] = tide[name]
end

-- y = x W^T + b, W out x in, b nil or out; x is ... x in (addmm when x is 2-D)
function F.linear(x, w, b)
  if not tide.is_tensor(x) or not tide.is_tensor(w) then
    error("nn.F.linear: expected tensors x and w, got " .. type(x) .. " and " .. type(w), 2)
  end
  if b ~= nil and not tide.is_tensor(b) then
    error("nn.F.linear: bias must be a tensor or nil, got " .. type(b), 2)
  end
  if x:dim() == 2 then return b and tide.addmm(b, x, w:t()) or x:mm(w:t()) end
  local y = x:matmul(w:t())
  return b and y + b or y
end

-- softmax(q k^T / sqrt(d) + mask) v over the last two dims (q: ... x L x d, k: ... x S x d,
-- v: ... x S x dv). mask: a bool tensor (true = may attend) or a float tensor added to the
-- scores, broadcasting to ... x L x S; causal: query i sees keys 1..i (PyTorch's is_causal).
function F.scaled_dot_product_attention(q, k, v, opts)
  for i, t in ipairs({q, k, v}) do
    if not tide.is_tensor(t) then
      error("nn.F.scaled_dot_product_attention: argument " .. i .. " must be a tensor, got "
            .. type(t), 2)
    end
  end
  if q:dim() < 2 or k:dim() < 2 or v:dim() < 2 then
    error("nn.F.scaled_dot_product_attention: q, k and v need at least 2 dims", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("nn.F.scaled_dot_product_attention: options must be a table, got " .. type(opts), 2)
  end
  opts = opts or {}
  for key in pairs(opts) do
    if key ~= "mask" and key ~= "causal" then
      error("nn.F.scaled_dot_product_attention: unknown option '" .. tostring(key) .. "'", 2)
    end
  end
  local d = q:size(-1)
  if k:size(-1) ~= d then
    error(("nn.F.scaled_dot_product_attention: q has %d features, k has %d"):format(d, k:size(-1)), 2)
  end
  local scores = q:matmul(k:transpose(-2, -1)) / math.sqrt(d)
  local mask = opts.mask
  if mask ~= nil then
    if not tide.is_tensor(mask) then
      error("nn.F.scaled_dot_product_attention: mask must be a tensor, got " .. type(mask), 2)
    end
    if mask.dtype == "bool" then scores = scores:masked_fill(mask:logical_not(), -math.huge)
    else scores = scores + mask end
  end
  if opts.causal then
    local L, S = q:size(-2), k:size(-2)
    local above = tide.arange(1, S):view(1, S):gt(tide.arange(1, L):view(L, 1))
    scores = scores:masked_fill(above, -math.huge)
  end
  return scores:softmax(-1):matmul(v)
end

return F
