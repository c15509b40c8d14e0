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

return F
