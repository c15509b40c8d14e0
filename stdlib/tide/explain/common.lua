-- stdlib/tide/explain/common.lua: what every attribution method shares: checking the model, the
-- batch and the targets; the target scores of a batch; their gradient with respect to the input;
-- scores of many perturbed inputs, run through the model in chunks; a seeded draw that leaves
-- the global generator as it was.
local tide = require "tide"

local C = {}

function C.shape(t)
  if not tide.is_tensor(t) then return type(t) end
  return t.ndim == 0 and "scalar" or table.concat(t.shape, "x")
end

-- o with only the keys in known (a set); nil becomes {}
local function options(fname, o, known)
  if o == nil then return {} end
  if type(o) ~= "table" then error(fname .. ": options must be a table, got " .. type(o), 4) end
  for k in pairs(o) do
    if not known[k] then error(("%s: unknown option '%s'"):format(fname, tostring(k)), 4) end
  end
  return o
end

function C.posint(fname, o, key, default)
  local v = o[key]
  if v == nil then return default end
  if math.type(v) ~= "integer" or v < 1 then
    error(("%s: %s must be a positive integer, got %s"):format(fname, key, tostring(v)), 3)
  end
  return v
end

-- x: a float batch (N x ...); targets: an int64 tensor of N 1-based class indices
local function inputs(fname, model, x, target)
  if type(model) ~= "table" and type(model) ~= "function" then
    error(fname .. ": expected a model (a module or a function), got " .. type(model), 4)
  end
  if not tide.is_tensor(x) or not x.dtype:match("^float") or x.ndim < 2 then
    error(("%s: expected x to be a float batch (N x ...), got %s%s"):format(fname,
          tide.is_tensor(x) and (x.dtype .. " of shape ") or "", C.shape(x)), 4)
  end
  local n = x:size(1)
  if math.type(target) == "integer" then
    return x, tide.full({n}, target, {dtype = "int64"})
  end
  if not (tide.is_tensor(target) and target.dtype == "int64" and target:numel() == n) then
    error(("%s: target must be an integer class index or an int64 tensor of %d (one per "
           .. "example), got %s"):format(fname, n, tide.is_tensor(target)
           and (target.dtype .. " of shape " .. C.shape(target)) or tostring(target)), 4)
  end
  return x, target:reshape(n)
end

-- what every method starts with: its options checked against known, x, and the targets as
-- an int64 tensor of N; errors point at the method's caller
function C.begin(fname, known, model, x, target, o)
  o = options(fname, o, known)
  local t
  x, t = inputs(fname, model, x, target)
  return o, x, t
end

-- targets repeated k times: (k * N), step-major, as the perturbed batches are laid out
function C.tile(target, k)
  local n = target:numel()
  return target:view(1, n):expand(k, n):reshape(k * n)
end

-- rows of perturbed inputs per model call of the forward-only methods, unless batch_size says:
-- 512 images keep the seed CNN's activations near 50 MB a layer
C.ROWS = 512

-- the scores out[i][target[i]] of one model call on x (N)
function C.pick(fname, out, target, n, grad)
  if not tide.is_tensor(out) or out.ndim ~= 2 or out:size(1) ~= n then
    error(("%s: the model must return an N x C tensor of scores for a batch of %d, got %s")
          :format(fname, n, C.shape(out)), 4)
  end
  local classes = out:size(2)
  local lo, hi = target:min():item(), target:max():item()
  if lo < 1 or hi > classes then
    error(("%s: target %d out of range for a model with %d outputs (expected 1..%d)")
          :format(fname, lo < 1 and lo or hi, classes, classes), 4)
  end
  if grad and not out.requires_grad then
    error(fname .. ": the model's output does not require grad, so it has no gradient with "
          .. "respect to x (does the model run under no_grad, detach, or end in argmax?)", 4)
  end
  return out:gather(2, target:view(n, 1)):view(n)
end

-- scores of x under no_grad, batch_size rows per model call (nil: all at once)
function C.scores(fname, model, x, target, batch_size)
  local n = x:size(1)
  return tide.no_grad(function()
    if not batch_size or batch_size >= n then return C.pick(fname, model(x), target, n) end
    local parts = {}
    for s = 1, n, batch_size do
      local len = math.min(batch_size, n - s + 1)
      parts[#parts + 1] = C.pick(fname, model(x:narrow(1, s, len)), target:narrow(1, s, len), len)
    end
    return tide.cat(parts, 1)
  end)
end

-- d score_i / d x_i for every row of x (x's shape), batch_size rows per forward and backward
function C.gradient(fname, model, x, target, batch_size)
  local n = x:size(1)
  local function one(xs, ts)
    local xi = xs:detach()
    xi.requires_grad = true
    local s = C.pick(fname, model(xi), ts, xs:size(1), true)
    local g = tide.autograd.grad(s:sum(), {xi}, {allow_unused = true})[1]
    if not g then
      error(fname .. ": the model's output does not depend on x through differentiable ops", 3)
    end
    return g
  end
  if not batch_size or batch_size >= n then return one(x, target) end
  local parts = {}
  for s = 1, n, batch_size do
    local len = math.min(batch_size, n - s + 1)
    parts[#parts + 1] = one(x:narrow(1, s, len), target:narrow(1, s, len))
  end
  return tide.cat(parts, 1)
end

-- b (nil, a number, or a tensor broadcasting to x) as a tensor of x's shape
function C.baseline(fname, x, b, key)
  key = key or "baseline"
  if b == nil then return tide.zeros_like(x) end
  if type(b) == "number" then return tide.full_like(x, b) end
  local ok, r = pcall(function() return (x:detach() * 0 + b):contiguous() end)
  if not tide.is_tensor(b) or not ok then
    error(("%s: %s must be a number or a tensor broadcasting to x's shape %s, got %s")
          :format(fname, key, C.shape(x), C.shape(b)), 3)
  end
  return r
end

-- fn() with the global generator seeded by seed (when given) and restored afterwards
function C.seeded(seed, fn)
  if seed == nil then return fn() end
  local st = tide.get_rng_state()
  tide.manual_seed(seed)
  local ok, a, b = pcall(fn)
  tide.set_rng_state(st)
  if not ok then error(a, 0) end
  return a, b
end

-- features: nil (every element of one example its own feature) or an int64 tensor shaped like
-- one example (or 1 x that) of group ids. Returns the M x D float64 0/1 matrix of groups.
function C.groups(fname, x, features)
  local d = x:numel() // x:size(1)
  if features == nil then return tide.eye(d, {dtype = "float64"}) end
  local one = table.concat(x.shape, "x", 2)
  if not (tide.is_tensor(features) and features.dtype == "int64" and features:numel() == d) then
    error(("%s: features must be an int64 tensor of group ids shaped like one example (%s), "
           .. "got %s"):format(fname, one, tide.is_tensor(features)
           and (features.dtype .. " of shape " .. C.shape(features)) or type(features)), 3)
  end
  local flat, ids, seen = features:reshape(d), {}, {}
  for _, v in ipairs(flat:totable()) do
    if not seen[v] then seen[v], ids[#ids + 1] = true, v end
  end
  table.sort(ids)
  local idt = tide.tensor(ids, {dtype = "int64"})
  return flat:view(1, d):eq(idt:view(#ids, 1)):to("float64")
end

return C
