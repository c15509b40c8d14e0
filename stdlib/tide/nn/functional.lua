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
F.unfold = tide.im2col -- PyTorch's name (Tensor.unfold is another thing there)

-- y = x W^T + b, W out x in, b nil or out; x is ... x in (tide.linear with a bias)
function F.linear(x, w, b)
  if not tide.is_tensor(x) or not tide.is_tensor(w) then
    error("nn.F.linear: expected tensors x and w, got " .. type(x) .. " and " .. type(w), 2)
  end
  if b ~= nil and not tide.is_tensor(b) then
    error("nn.F.linear: bias must be a tensor or nil, got " .. type(b), 2)
  end
  if b then return tide.linear(x, w, b) end
  if x:dim() == 2 then return x:mm(w:t()) end
  return x:matmul(w:t())
end

-- softmax(q k^T * scale + mask) v over the last two dims (q: ... x L x d, k: ... x S x d,
-- v: ... x S x dv), by the fused op tide.scaled_dot_product_attention. mask: a bool tensor
-- (true = may attend) or a float tensor added to the scores, broadcasting to ... x L x S;
-- causal: query i sees keys 1..i (PyTorch's is_causal); dropout: a probability applied to the
-- weights (as PyTorch's dropout_p: always, a layer passes 0 in eval mode); scale: 1/sqrt(d).
local SDPA_OPTS = {mask = true, causal = true, dropout = true, scale = true}
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
    if not SDPA_OPTS[key] then
      error("nn.F.scaled_dot_product_attention: unknown option '" .. tostring(key) .. "'", 2)
    end
  end
  local d = q:size(-1)
  if k:size(-1) ~= d then
    error(("nn.F.scaled_dot_product_attention: q has %d features, k has %d"):format(d, k:size(-1)), 2)
  end
  local mask = opts.mask
  if mask ~= nil and not tide.is_tensor(mask) then
    error("nn.F.scaled_dot_product_attention: mask must be a tensor, got " .. type(mask), 2)
  end
  local out = tide.scaled_dot_product_attention(q, k, v, mask, {causal = opts.causal or false,
                                                dropout = opts.dropout or 0, scale = opts.scale})
  return out
end


-- Hinton et al.'s distillation loss for student and teacher logits (N x C) and int64 classes:
-- alpha T^2 KL(softmax(t/T) || softmax(s/T)) (batchmean) + (1 - alpha) CE(s, target). T^2 keeps
-- the soft term's gradients on the hard term's scale; the teacher gets no gradient.
function F.distillation_loss(s, t, target, opts)
  if not (tide.is_tensor(s) and tide.is_tensor(t) and tide.is_tensor(target)) then
    error(("nn.F.distillation_loss: expected student logits, teacher logits and target tensors, "
           .. "got %s, %s and %s"):format(type(s), type(t), type(target)), 2)
  end
  if table.concat(s.shape, "x") ~= table.concat(t.shape, "x") then
    error(("nn.F.distillation_loss: student logits %s and teacher logits %s differ in shape")
          :format(table.concat(s.shape, "x"), table.concat(t.shape, "x")), 2)
  end
  local U = require "tide.nn.util"
  local o = U.options("nn.F.distillation_loss", opts, {temperature = 4, alpha = 0.9}, 3)
  local T = U.in_range("nn.F.distillation_loss", "temperature", o.temperature, "(0, inf)", 3)
  local a = U.in_range("nn.F.distillation_loss", "alpha", o.alpha, "[0, 1]", 3)
  local soft = tide.kl_div((s / T):log_softmax(2), (t:detach() / T):softmax(2),
                           {reduction = "batchmean"})
  return soft * (a * T * T) + tide.cross_entropy(s, target) * (1 - a)
end

return F
