-- stdlib/tide/prune/compact.lua: tide.prune.compact(model), structured pruning made physical.
-- In every nn.Sequential of the model, a Linear or Conv2d whose weight has all-zero output
-- channels is rebuilt without them, and so are the layers that read those channels: the
-- channel-wise layers in between (activations, dropout, pooling, Flatten, batch norm) and the
-- next Linear or Conv2d, whose inputs shrink. A dropped channel still outputs a constant (its
-- bias, through the layers in between); that constant's share of the next layer's output is
-- folded into the next layer's bias, so the compacted model computes what the pruned one did.
local tide = require "tide"
local nn = require "tide.nn"
local mask = require "tide.prune.mask"

local FN = "tide.prune.compact"

local function class_of(m) return getmetatable(m).__name end

-- layers a constant channel passes as a constant: "apply" runs the layer on the constants,
-- "same" leaves them, "bn" runs it and shrinks it with the channels
local CHAIN = {ReLU = "apply", GELU = "apply", Tanh = "apply", Sigmoid = "apply", SiLU = "apply",
               Identity = "same", Dropout = "same", MaxPool2d = "same", AvgPool2d = "same",
               AdaptiveAvgPool2d = "same", Flatten = "same", BatchNorm1d = "bn",
               BatchNorm2d = "bn"}

local function is_layer(m)
  local c = class_of(m)
  return (c == "Linear" or (c == "Conv2d" and m.groups == 1))
end

local function index(t, d, kept)
  return t:index(d, tide.tensor(kept, {dtype = "int64"})):contiguous()
end

-- a new layer like m with the given sizes, its tensors from `copy` (name -> tensor), mode kept
local function rebuild(m, sizes, copy)
  local c, n = class_of(m), nil
  if c == "Linear" then n = nn.Linear(sizes[1], sizes[2], {bias = m.bias ~= nil})
  elseif c == "Conv2d" then n = nn.Conv2d(sizes[1], sizes[2], m._k, m._opts)
  else n = nn[c](sizes[1], m._opts) end                      -- batch norm
  tide.no_grad(function()
    for k, t in pairs(copy) do
      rawget(n, k):copy_(t)
      rawget(n, k).requires_grad = rawget(m, k).requires_grad
    end
  end)
  n:train(m.training)
  return n
end

-- the constants the channels of producer p hold after chain layers seq[i+1 .. j-1]: p's bias
-- (zero without one) through them; `exact` is false when a padded average pool lets the
-- border differ from the constant
local function constants(p, seq, i, j)
  local C = p.weight:size(1)
  local u = p.bias and p.bias:detach():clone() or tide.zeros({C}, {dtype = p.weight.dtype})
  local exact = true
  tide.no_grad(function()
    for k = i + 1, j - 1 do
      local m, how = seq[k], CHAIN[class_of(seq[k])]
      if how == "apply" or how == "bn" then
        local was = m.training
        m:eval()
        local shape = class_of(m) == "BatchNorm2d" and {1, C, 1, 1} or {1, C}
        u = m(u:view(table.unpack(shape))):reshape(C)
        m:train(was)
      elseif class_of(m) == "AvgPool2d" and (m.padding[1] > 0 or m.padding[2] > 0) then
        exact = false
      end
    end
  end)
  return u:totable(), exact
end

-- compacts producer seq[i] against consumer seq[j]; returns whether it changed anything
local function compact_pair(seq, i, j, where)
  local p, q = seq[i], seq[j]
  local C = p.weight:size(1)
  local rows = p.weight:detach():reshape(C, -1):abs():sum(2):totable()
  local kept, dropped = {}, {}
  for c = 1, C do
    if rows[c] ~= 0 then kept[#kept + 1] = c else dropped[#dropped + 1] = c end
  end
  if #dropped == 0 then return false end
  if #kept == 0 then kept, dropped = {1}, {table.unpack(dropped, 2)} end  -- a layer keeps 1 output
  local qin = class_of(q) == "Linear" and q.in_features or q.in_channels
  if qin % C ~= 0 then return false end
  local S = qin // C                                             -- inputs of q per channel
  local u, exact = constants(p, seq, i, j)
  -- the dropped channels' share of q's output, folded into q's bias
  local shift = tide.zeros({class_of(q) == "Linear" and q.out_features or q.out_channels},
                           {dtype = q.weight.dtype})
  local qw = q.weight:detach()
  for _, c in ipairs(dropped) do
    if u[c] ~= 0 then
      local padded = class_of(q) == "Conv2d" and (q.padding[1] > 0 or q.padding[2] > 0)
      if not exact or padded or not q.bias then
        error(("%s: %s: dropped channel %d of layer %d outputs the constant %g, which layer %d "
               .. "(%s) cannot absorb%s; prune with {bias = true} (the default) so it outputs 0")
              :format(FN, where, c, i, u[c], j, q:config(), padded and " (it pads with zeros)" or ""), 3)
      end
      local cols = class_of(q) == "Linear" and qw:narrow(2, (c - 1) * S + 1, S)
                   or qw:select(2, c):reshape(qw:size(1), -1)
      shift = shift + cols:sum(2):reshape(-1) * u[c]
    end
  end
  local qcols = {}                                               -- q's inputs that stay
  for _, c in ipairs(kept) do
    for s = 1, S do qcols[#qcols + 1] = (c - 1) * S + s end
  end
  local pk = {weight = index(p.weight:detach(), 1, kept)}
  if p.bias then pk.bias = index(p.bias:detach(), 1, kept) end
  local pin = class_of(p) == "Linear" and p.in_features or p.in_channels
  seq[i] = rebuild(p, {pin, #kept}, pk)
  for k = i + 1, j - 1 do
    local m = seq[k]
    if CHAIN[class_of(m)] == "bn" then
      local copy = {}
      for _, name in ipairs({"weight", "bias", "running_mean", "running_var"}) do
        if rawget(m, name) then copy[name] = index(rawget(m, name):detach(), 1, kept) end
      end
      if m.num_batches_tracked then copy.num_batches_tracked = m.num_batches_tracked end
      seq[k] = rebuild(m, {#kept}, copy)
    end
  end
  local qk
  if class_of(q) == "Linear" then
    qk = {weight = index(qw, 2, qcols)}
  else
    qk = {weight = index(qw, 2, kept)}
  end
  if q.bias then qk.bias = q.bias:detach() + shift end
  local qout = class_of(q) == "Linear" and q.out_features or q.out_channels
  seq[j] = rebuild(q, {#kept * S, qout}, qk)
  return true
end

-- the consumer of seq[i]: the next Linear or Conv2d after channel-wise layers only, or nil
local function consumer(seq, i)
  local flat = false
  for j = i + 1, #seq do
    local m = seq[j]
    if is_layer(m) then
      local a, b = class_of(seq[i]), class_of(m)
      local ok = (a == "Linear" and b == "Linear") or (a == "Conv2d" and b == "Conv2d" and not flat)
                 or (a == "Conv2d" and b == "Linear" and flat)
      return ok and j or nil
    end
    if not CHAIN[class_of(m)] then return nil end
    flat = flat or class_of(m) == "Flatten"
  end
  return nil
end

return function(model)
  if not nn.is_module(model) then
    error(FN .. ": expected a module (nn.Module), got " .. type(model), 2)
  end
  for _, m in ipairs(model:modules()) do mask.remove(m) end       -- masks made permanent
  for name, seq in pairs(model:named_modules()) do
    if class_of(seq) == "Sequential" then
      for i = 1, #seq - 1 do
        local j = is_layer(seq[i]) and consumer(seq, i)
        if j then compact_pair(seq, i, j, name == "" and "the model" or "'" .. name .. "'") end
      end
    end
  end
  return model
end
