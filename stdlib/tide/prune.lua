-- stdlib/tide/prune.lua: tide.prune, magnitude and structured pruning with PyTorch's masks
-- (torch.nn.utils.prune: l1_unstructured, global_unstructured, ln_structured, the same choice
-- among ties), gradual pruning schedules, sparsity and remove; compact is prune/compact.lua.
-- Masks are held as PyTorch holds them (prune/mask.lua): weight_orig and weight_mask.
local tide = require "tide"
local nn = require "tide.nn"
local topk = require "tide.prune.topk"
local mask = require "tide.prune.mask"

local is_tensor, is_module = tide.is_tensor, nn.is_module

local P = {}

local DEFAULT = {Linear = true, Conv2d = true}  -- the layers pruned when `layers` is not given

local function class_of(m) return getmetatable(m).__name end

-- m's class or a parent class is one of `set`
local function is_a(m, set)
  local cls = getmetatable(m)
  while type(cls) == "table" do
    if set[rawget(cls, "__name")] then return true end
    local up = getmetatable(cls)
    cls = type(up) == "table" and rawget(up, "__index") or nil
  end
  return false
end

---- arguments --------------------------------------------------------------------------------

local function round_half_even(x)           -- Python's round(), which PyTorch's count uses
  local f = math.floor(x)
  local d = x - f
  if d > 0.5 or (d == 0.5 and f % 2 == 1) then f = f + 1 end
  return math.tointeger(f)
end

-- amount as a number of units out of `size` (what is left to prune): an integer is a count, a
-- float a fraction, as PyTorch's
local function count(fn, amount, size, what)
  if math.type(amount) == "integer" then
    if amount > size then
      error(("%s: amount %d is more than the %d %s left to prune"):format(fn, amount, size, what), 4)
    end
    return amount
  end
  return round_half_even(amount * size)
end

local function check_amount(fn, amount)
  local ok = type(amount) == "number" and amount == amount and amount >= 0
             and (math.type(amount) == "integer" or amount <= 1)
  if not ok then
    error(("%s: amount must be a fraction in [0, 1] or a count (a non-negative integer), got %s")
          :format(fn, tostring(amount)), 3)
  end
end

local function check_options(fn, o, known)
  if o ~= nil and type(o) ~= "table" then error(fn .. ": options must be a table, got " .. type(o), 4) end
  for k in pairs(o or {}) do
    if not known[k] then error(fn .. ": unknown option '" .. tostring(k) .. "'", 4) end
  end
  return o or {}
end

local function weight_of(m) return mask.original(m, "weight") end

-- an int8 or uint8 `weight` anywhere: the model was quantized
local function check_float(fn, model)
  for name, m in pairs(model:named_modules()) do
    local w = weight_of(m)
    if is_tensor(w) and not w.dtype:match("^float") then
      error(("%s: the model is quantized (layer '%s', %s, has %s weights): prune the float model, "
             .. "then quantize"):format(fn, name, class_of(m), w.dtype), 4)
    end
  end
end

-- the layers to prune: {name, module} pairs, from opts.layers (modules or their names) or the
-- model's Linear and Conv2d layers
local function targets(fn, model, layers)
  if not is_module(model) then error(fn .. ": expected a module (nn.Module), got " .. type(model), 4) end
  check_float(fn, model)
  local names, list = {}, {}
  for name, m in pairs(model:named_modules()) do names[m] = name end
  if layers == nil then
    for name, m in pairs(model:named_modules()) do
      if is_a(m, DEFAULT) and is_tensor(weight_of(m)) then list[#list + 1] = {name, m} end
    end
    if #list == 0 then error(fn .. ": the model has no Linear or Conv2d layer (pass layers = {...})", 4) end
    return list
  end
  if type(layers) ~= "table" or is_module(layers) then layers = {layers} end
  local byname = model:named_modules()
  for i, l in ipairs(layers) do
    local m = l
    if type(l) == "string" then m = byname[l] end
    if type(l) == "string" and not m then
      error(("%s: unknown layer '%s' (not a name of model:named_modules())"):format(fn, l), 4)
    elseif not is_module(m) or not names[m] then
      error(("%s: layers[%d] is not a module of the model (a %s)"):format(fn, i, type(l)), 4)
    elseif not is_tensor(weight_of(m)) then
      error(("%s: layer '%s' (%s) has no weight to prune"):format(fn, names[m], class_of(m)), 4)
    end
    list[#list + 1] = {names[m], m}
  end
  return list
end

---- unstructured -----------------------------------------------------------------------------

-- Zeroes `n` more entries of the weight masks of `layers`, chosen over all of them together: the
-- smallest |weight x mask| among the entries still unmasked, as torch.topk picks them.
local function prune_entries(layers, n)
  for _, l in ipairs(layers) do mask.mask(l[2], "weight") end  -- masked even when n = 0
  if n == 0 then return end
  local vals, at_layer, at_pos, flats = {}, {}, {}, {}
  for li, l in ipairs(layers) do
    local m = l[2]
    local w = tide.no_grad(function() return mask.effective(m, "weight"):reshape(-1):totable() end)
    local f = mask.mask(m, "weight"):reshape(-1):totable()
    for i = 1, #w do
      if f[i] ~= 0 then
        vals[#vals + 1], at_layer[#vals + 1], at_pos[#vals + 1] = math.abs(w[i]), li, i
      end
    end
    flats[li] = f
  end
  for _, p in ipairs(topk.select(vals, n, false)) do flats[at_layer[p]][at_pos[p]] = 0 end
  for li, l in ipairs(layers) do
    local w = weight_of(l[2])
    mask.set(l[2], "weight", tide.tensor(flats[li], {dtype = w.dtype}):view(w.shape))
  end
end

local function left(m)                       -- entries of m's weight not masked yet
  if not mask.is_masked(m, "weight") then return weight_of(m):numel() end
  return math.tointeger(mask.mask(m, "weight"):ne(0):sum():item())
end

local function unstructured(fn, layers, amount, scope)
  if scope == "global" then
    local size = 0
    for _, l in ipairs(layers) do size = size + left(l[2]) end
    prune_entries(layers, count(fn, amount, size, "weights"))
  else
    for _, l in ipairs(layers) do prune_entries({l}, count(fn, amount, left(l[2]), "weights")) end
  end
end

local function check_scope(fn, scope)
  if scope ~= "layer" and scope ~= "global" then
    error(fn .. ': scope must be "layer" or "global", got ' .. tostring(scope), 4)
  end
  return scope
end

function P.magnitude(model, amount, opts)
  local fn = "tide.prune.magnitude"
  check_amount(fn, amount)
  local o = check_options(fn, opts, {scope = true, layers = true})
  local scope = check_scope(fn, o.scope or "layer")
  unstructured(fn, targets(fn, model, o.layers), amount, scope)
  return model
end

---- structured -------------------------------------------------------------------------------

-- rows of t with dim d first: C x (the rest)
local function channels(t, d) return t:transpose(1, d):contiguous():reshape(t:size(d), -1) end

local function as_float32(x) return string.unpack("f", string.pack("f", x)) end

-- the channels along dim d of m's weight whose mask is not all zero, and their L`norm` norms of
-- weight x mask (rounded to float32 for a float32 weight, the precision PyTorch compares in)
local function alive_channels(m, d, norm)
  local w = weight_of(m)
  local rows = tide.no_grad(function() return channels(mask.effective(m, "weight"), d):totable() end)
  local mrows = mask.is_masked(m, "weight") and channels(mask.mask(m, "weight"), d):totable()
  local alive, norms = {}, {}
  for c, r in ipairs(rows) do
    local any, s = not mrows, 0
    for i, v in ipairs(r) do
      any = any or mrows[c][i] ~= 0
      s = s + (norm == 1 and math.abs(v) or v * v)
    end
    if any then
      local x = norm == 1 and s or math.sqrt(s)
      alive[#alive + 1], norms[#norms + 1] = c, w.dtype == "float32" and as_float32(x) or x
    end
  end
  return alive, norms
end

local function check_structured(fn, name, m, d)
  local w = weight_of(m)
  if w:dim() < 2 then
    error(("%s: layer '%s' has a %d-D weight: structured pruning needs 2 or more dims"):format(fn,
          name, w:dim()), 4)
  elseif d > w:dim() then
    error(("%s: dim %d is out of range for layer '%s' (its weight is %s)"):format(fn, d, name,
          table.concat(w.shape, "x")), 4)
  end
end

local BN = {BatchNorm1d = true, BatchNorm2d = true}

-- module -> the batch norm that follows it in a Sequential of the model (normalising its outputs)
local function norms_after(model)
  local after = {}
  for _, s in ipairs(model:modules()) do
    if class_of(s) == "Sequential" then
      for i = 1, #s - 1 do
        if is_a(s[i + 1], BN) and is_tensor(mask.original(s[i + 1], "weight")) then
          after[s[i]] = s[i + 1]
        end
      end
    end
  end
  return after
end

-- Prunes n more channels along dim d of m's weight (those of smallest norm among the channels
-- not pruned yet, as torch.topk keeps the others). With `bias` and d = 1, the whole channel:
-- its bias entry and the scale and shift of the batch norm `bn` that follows, so it outputs 0.
local function prune_channels(m, n, d, norm, bias, bn)
  mask.mask(m, "weight")                   -- masked even when n = 0
  local alive, norms = alive_channels(m, d, norm)
  local keep = {}
  for _, p in ipairs(topk.select(norms, #alive - n, true)) do keep[alive[p]] = true end
  local w = weight_of(m)
  local on = {}
  for c = 1, w:size(d) do on[c] = keep[c] and 1 or 0 end
  local shape = {}
  for i = 1, w:dim() do shape[i] = i == d and w:size(d) or 1 end
  local cmask = tide.tensor(on, {dtype = w.dtype}):view(shape)   -- 1 x C x 1 ... along dim d
  if n > 0 then mask.set(m, "weight", mask.mask(m, "weight") * cmask) end
  local b = mask.original(m, "bias")
  if bias and d == 1 and is_tensor(b) then
    local alive_after = alive_channels(m, d, norm)
    local ob = {}
    for c = 1, w:size(1) do ob[c] = 0 end
    for _, c in ipairs(alive_after) do ob[c] = 1 end
    mask.set(m, "bias", tide.tensor(ob, {dtype = b.dtype}))
  end
  if bias and d == 1 and bn then
    local on_after = tide.zeros({w:size(1)}, {dtype = w.dtype})
    for _, c in ipairs(alive_channels(m, d, norm)) do on_after[c] = 1 end
    mask.set(bn, "weight", on_after)
    mask.set(bn, "bias", on_after)
  end
end

local function channels_left(m, d, norm) return #alive_channels(m, d, norm) end

function P.structured(model, amount, opts)
  local fn = "tide.prune.structured"
  check_amount(fn, amount)
  local o = check_options(fn, opts, {dim = true, norm = true, layers = true, bias = true})
  local d, norm = o.dim or 1, o.norm or 1
  if math.type(d) ~= "integer" or d < 1 then
    error(fn .. ": dim must be a positive integer, got " .. tostring(d), 2)
  end
  if norm ~= 1 and norm ~= 2 then error(fn .. ": norm must be 1 or 2, got " .. tostring(norm), 2) end
  local layers = targets(fn, model, o.layers)
  for _, l in ipairs(layers) do check_structured(fn, l[1], l[2], d) end
  local after = norms_after(model)
  for _, l in ipairs(layers) do
    local n = count(fn, amount, channels_left(l[2], d, norm), "channels of layer '" .. l[1] .. "'")
    prune_channels(l[2], n, d, norm, o.bias ~= false, after[l[2]])
  end
  return model
end

---- gradual pruning --------------------------------------------------------------------------

local Schedule = {}
Schedule.__index = Schedule

-- the target sparsity after step t: Zhu and Gupta's cubic ramp (or a straight line) from `from`
-- at step 0 to `to` at step `steps`, then flat
function Schedule:amount(t)
  local f = math.min(math.max(t, 0), self.steps) / self.steps
  if self.kind == "linear" then return self.from + (self.to - self.from) * f end
  return self.to + (self.from - self.to) * (1 - f) ^ 3
end

-- Prunes the model up to the target of step t (default: the step after the last one): the count
-- still missing, by magnitude or by channels, per layer or over all; every `every` steps.
function Schedule:step(model, t)
  local fn = "tide.prune.schedule:step"
  if t ~= nil and (math.type(t) ~= "integer" or t < 0) then
    error(fn .. ": t must be a non-negative integer step, got " .. tostring(t), 2)
  end
  t = t or self.t + 1
  self.t = t
  local target = self:amount(t)
  if t % self.every ~= 0 and t < self.steps then return target end
  local layers = targets(fn, model, self.layers)
  local function missing(size, now_left)    -- to prune so that round(target * size) are pruned
    return math.max(0, round_half_even(target * size) - (size - now_left))
  end
  if self.method == "structured" then
    local after = norms_after(model)
    for _, l in ipairs(layers) do
      local m = l[2]
      check_structured(fn, l[1], m, self.dim)
      local n = missing(weight_of(m):size(self.dim), channels_left(m, self.dim, self.norm))
      prune_channels(m, n, self.dim, self.norm, self.bias, after[m])
    end
  elseif self.scope == "global" then
    local size, now = 0, 0
    for _, l in ipairs(layers) do size, now = size + weight_of(l[2]):numel(), now + left(l[2]) end
    prune_entries(layers, missing(size, now))
  else
    for _, l in ipairs(layers) do
      prune_entries({l}, missing(weight_of(l[2]):numel(), left(l[2])))
    end
  end
  return target
end

function Schedule:state_dict() return {t = self.t} end
function Schedule:load_state_dict(sd) self.t = math.tointeger(tonumber(sd.t)) or 0 end

function Schedule.__tostring(s)
  return ("tide.prune.schedule{from = %g, to = %g, steps = %d, method = %q, step %d: %g}")
         :format(s.from, s.to, s.steps, s.method, s.t, s:amount(s.t))
end

function P.schedule(o)
  local fn = "tide.prune.schedule"
  if type(o) ~= "table" then error(fn .. ": expected an options table {from =, to =, steps =}", 2) end
  check_options(fn, o, {from = true, to = true, steps = true, every = true, kind = true,
    method = true, scope = true, layers = true, dim = true, norm = true, bias = true})
  local s = setmetatable({from = o.from or 0, to = o.to, steps = o.steps, every = o.every or 1,
    kind = o.kind or "cubic", method = o.method or "magnitude", scope = o.scope or "layer",
    layers = o.layers, dim = o.dim or 1, norm = o.norm or 1, bias = o.bias ~= false, t = 0},
    Schedule)
  for _, k in ipairs({"from", "to"}) do
    local v = s[k]
    if type(v) ~= "number" or v ~= v or v < 0 or v > 1 then
      error(("%s: %s must be a sparsity in [0, 1], got %s"):format(fn, k, tostring(v)), 2)
    end
  end
  for _, k in ipairs({"steps", "every"}) do
    if math.type(s[k]) ~= "integer" or s[k] < 1 then
      error(("%s: %s must be a positive integer, got %s"):format(fn, k, tostring(s[k])), 2)
    end
  end
  if s.kind ~= "cubic" and s.kind ~= "linear" then
    error(fn .. ': kind must be "cubic" or "linear", got ' .. tostring(s.kind), 2)
  end
  if s.method ~= "magnitude" and s.method ~= "structured" then
    error(fn .. ': method must be "magnitude" or "structured", got ' .. tostring(s.method), 2)
  end
  check_scope(fn, s.scope)
  return s
end

---- the rest ---------------------------------------------------------------------------------

function P.remove(model)
  if not is_module(model) then
    error("tide.prune.remove: expected a module (nn.Module), got " .. type(model), 2)
  end
  for _, m in ipairs(model:modules()) do mask.remove(m) end
  return model
end

function P.sparsity(model)
  if not is_module(model) then
    error("tide.prune.sparsity: expected a module (nn.Module), got " .. type(model), 2)
  end
  local out, zeros, total = {layers = {}}, 0, 0
  tide.no_grad(function()
    for name, m in pairs(model:named_modules()) do
      local w = weight_of(m)
      if is_tensor(w) and w:dim() >= 2 and (mask.pruned(m) or is_a(m, DEFAULT)) then
        local z = math.tointeger(mask.effective(m, "weight"):eq(0):sum():item())
        out.layers[name] = z / w:numel()
        zeros, total = zeros + z, total + w:numel()
      end
    end
  end)
  out.total = total > 0 and zeros / total or 0
  return out
end

P.compact = require "tide.prune.compact"

return P
