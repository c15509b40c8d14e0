-- stdlib/tide/privacy/grad_sample.lua: per-example gradients from one backward pass over the
-- batch. Each supported layer's forward is wrapped: it runs with its parameters detached (the
-- batch-summed weight gradient is never computed: it would be thrown away) and adds a zero
-- "probe" leaf to its output, so the ordinary loss:backward() leaves d loss / d output in
-- probe.grad. With the input kept, each rule below gets the per-example gradient norms, then the
-- sum of the per-example gradients scaled by each example's clipping factor. Where the norm has
-- a closed form, nothing per-example is materialised (ghost clipping): Linear on 2-D inputs
-- (||g_i|| ||x_i||), Linear on sequences and Embedding through Gram matrices.
local tide = require "tide"

local M = {}

-- how each rule reads its layer: input x (detached), output gradient g (B x ...), B
-- norms(e) -> B squared norms (all the layer's trainable parameters), leaves in e what sum needs
-- sum(e, c) -> {param_name = sum_i c_i grad_i}
local rules = {}

local function sq(t, B) return (t * t):reshape(B, -1):sum(2) end  -- per-example sum of squares
local function weighted(c, t, B) return c:view(1, B):mm(t:reshape(B, -1)) end -- sum_i c_i t_i

---- Linear: y = x W^T + b, x B x T x in (T = 1 for 2-D inputs) ------------------------------
rules.Linear = {
  norms = function(e, m)
    local B, nin, nout = e.B, m.in_features, m.out_features
    local x, g = e.x:reshape(B, -1, nin), e.g:reshape(B, -1, nout)
    local T = x:size(2)
    e.x3, e.g3 = x, g
    local gb = T == 1 and g:view(B, nout) or g:sum(2)        -- B x out: the bias gradients
    local n2
    if T == 1 then                                          -- rank one: ||g_i x_i^T|| = ||g_i|| ||x_i||
      n2 = sq(gb, B) * sq(x, B)
    elseif T * T <= nin * nout then                         -- Gram: sum_ts (x x^T)_ts (g g^T)_ts
      n2 = (x:bmm(x:transpose(2, 3)) * g:bmm(g:transpose(2, 3))):reshape(B, -1):sum(2)
    else                                                    -- cheaper to materialise g_i^T x_i
      e.gw = g:transpose(2, 3):bmm(x)
      n2 = sq(e.gw, B)
    end
    if m.bias and m.bias.requires_grad then n2 = n2 + sq(gb, B) end
    e.gb = gb
    return n2
  end,
  sum = function(e, c, m)
    local B = e.B
    local out = {}
    if e.gw then
      out.weight = weighted(c, e.gw, B):view(m.out_features, m.in_features)
    else
      local gs = (e.g3 * c:view(B, 1, 1)):reshape(-1, m.out_features)
      out.weight = gs:t():mm(e.x3:reshape(-1, m.in_features))
    end
    if m.bias then out.bias = weighted(c, e.gb, B):view(m.out_features) end
    return out
  end,
}

---- Conv2d: per-example weight gradient g_i (K x L) cols_i^T, cols = im2col(x) -----------------
rules.Conv2d = {
  norms = function(e, m)
    local B, K, G = e.B, m.out_channels, m.groups
    local cols = tide.im2col(e.x, m.kernel_size, {stride = m.stride, padding = m.padding,
                                                  dilation = m.dilation})  -- B x (C kh kw) x L
    local g = e.g:reshape(B, K, -1)                                          -- B x K x L
    local gw
    if G == 1 then
      gw = g:bmm(cols:transpose(2, 3))                                       -- B x K x C kh kw
    else
      local kg, rows, parts = K // G, cols:size(2) // G, {}
      for j = 1, G do
        parts[j] = g:narrow(2, (j - 1) * kg + 1, kg)
                    :bmm(cols:narrow(2, (j - 1) * rows + 1, rows):transpose(2, 3))
      end
      gw = tide.cat(parts, 2)
    end
    e.gw, e.gb = gw, g:sum(3)
    local n2 = m.weight.requires_grad and sq(gw, B) or tide.zeros(B, {dtype = gw.dtype})
    if m.bias and m.bias.requires_grad then n2 = n2 + sq(e.gb, B) end
    return n2
  end,
  sum = function(e, c, m)
    local out = {weight = weighted(c, e.gw, e.B):view(m.weight.shape)}
    if m.bias then out.bias = weighted(c, e.gb, e.B):view(m.out_channels) end
    return out
  end,
}

---- Embedding: example i's gradient adds g rows at its indices ---------------------------------
rules.Embedding = {
  norms = function(e, m)
    local B, D = e.B, m.embedding_dim
    local idx, g = e.x:reshape(B, -1), e.g:reshape(B, -1, D)
    if idx:size(2) == 1 then return sq(g, B) end
    -- rows t and s of one example land on the same row when their indices agree
    local same = idx:unsqueeze(3):eq(idx:unsqueeze(2)):to(g.dtype)
    return (g:bmm(g:transpose(2, 3)) * same):reshape(B, -1):sum(2)
  end,
  sum = function(e, c, m)
    local w = m.weight:detach()
    w.requires_grad = true
    local scale = c:view(e.B, table.unpack(tide.ones(e.g:dim() - 1):totable()))
    tide.embedding(e.x, w):backward(e.g * scale)                     -- the scatter-add, once
    return {weight = w.grad}
  end,
}

---- LayerNorm and GroupNorm: gradients sum g * xhat (weight) and g (bias) per example ----------
-- per(t, m, B): t (B x ...) summed to B x (the affine parameters' elements)
local function affine_norm(normalize, per)
  return {
    norms = function(e, m)
      local B = e.B
      e.gw, e.gb = per(e.g * normalize(m, e.x), m, B), per(e.g, m, B)
      local n2 = tide.zeros(B, {dtype = e.g.dtype})
      if m.weight and m.weight.requires_grad then n2 = n2 + sq(e.gw, B) end
      if m.bias and m.bias.requires_grad then n2 = n2 + sq(e.gb, B) end
      return n2
    end,
    sum = function(e, c, m)
      local out = {}
      if m.weight then out.weight = weighted(c, e.gw, e.B):view(m.weight.shape) end
      if m.bias then out.bias = weighted(c, e.gb, e.B):view(m.bias.shape) end
      return out
    end,
  }
end

rules.LayerNorm = affine_norm(function(m, x)
  return tide.layer_norm(x, m.normalized_shape, nil, nil, {eps = m.eps})
end, function(t, m, B)                          -- normalized_shape is last: B x rest x P
  local P = 1
  for _, s in ipairs(m.normalized_shape) do P = P * s end
  return t:reshape(B, -1, P):sum(2)
end)

rules.GroupNorm = affine_norm(function(m, x) return m:normalize(x) end,
  function(t, m, B) return t:reshape(B, m.num_channels, -1):sum(3) end)  -- channels are dim 2

M.rules = rules

-- the layers that mix the examples of a batch: refused, with what to use instead
M.mixing = {BatchNorm1d = true, BatchNorm2d = true}

return M
