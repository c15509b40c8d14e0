-- stdlib/tide/summary.lua: tide.summary(model, input, opts), a table of the model's layers
-- (output shape, parameters, MACs, activation memory) and its totals, from one forward run in
-- eval mode without gradients; tide.summary.macs(model, input) is the MAC count alone, for the
-- training loop's FLOPs. The formulas are in tide.summary.macs's module (summary/macs.lua).
local tide = require "tide"
local formulas = require "tide.summary.macs"

local is_tensor, is_module = tide.is_tensor, require("tide.nn").is_module

local BYTES = {float32 = 4, float64 = 8, int64 = 8, int32 = 4, uint8 = 1, int8 = 1, bool = 1,
               float16 = 2, bfloat16 = 2}

local function bytes(t) return t:numel() * (BYTES[t.dtype] or 4) end

local function class_of(m) return getmetatable(m).__name end

-- x / B, an integer when it divides (the formulas are linear in the batch, so it does)
local function per(x, B)
  local q = x // B
  return q * B == x and math.tointeger(q) or x / B
end

local function shape_str(s) return s and (#s == 0 and "scalar" or table.concat(s, "x")) or "--" end

-- the forward's arguments and the number of examples they hold: a shape of one example
-- (batch dim added, size 1), an example batch (a tensor) or a list of inputs (tensors)
local function inputs(fn, model, input, o)
  if is_tensor(input) then input = {input} end
  if type(input) ~= "table" or input[1] == nil then
    error(("%s: expected the shape of one example (e.g. {1, 28, 28}), an example batch (a "
           .. "tensor) or a list of inputs, got %s"):format(fn, type(input)), 4)
  end
  if is_tensor(input[1]) then
    local x = input[1]
    if x:dim() < o.batch_dim then
      error(("%s: batch_dim %d is out of range for the %d-D input %s"):format(fn, o.batch_dim,
            x:dim(), shape_str(x.shape)), 4)
    end
    return input, x:size(o.batch_dim)
  end
  local shape = {}
  for i, s in ipairs(input) do
    if math.type(s) ~= "integer" or s < 1 then
      error(("%s: input shape entry %d is %s, expected a positive integer"):format(fn, i,
            tostring(s)), 4)
    end
    shape[i] = s
  end
  if o.batch_dim > #shape + 1 then
    error(("%s: batch_dim %d is out of range for an example of %d dims"):format(fn, o.batch_dim,
          #shape), 4)
  end
  table.insert(shape, o.batch_dim, 1)
  local p = model:parameters()[1]
  local dtype = o.dtype or (p and p.dtype:match("^float") and p.dtype) or "float32"
  if dtype:match("^float") then return {tide.zeros(shape, {dtype = dtype})}, 1 end
  return {tide.ones(shape, {dtype = dtype})}, 1  -- ids 1: valid for any embedding
end

-- One forward with every module's forward wrapped (an instance field shadowing the class's,
-- restored after): per module, the calls' MACs, output elements' bytes and last output shape.
local function observe(fn, model, args)
  local stats, saved = {}, {}
  for _, m in ipairs(model:modules()) do
    local own, fwd, f = rawget(m, "forward"), m.forward, formulas.formula(m)
    local st = {macs = 0, act = 0, calls = 0}
    stats[m], saved[#saved + 1] = st, {m, own, rawget(m, "training")}
    rawset(m, "forward", function(self, ...)
      local res = table.pack(fwd(self, ...))
      local out = res[1]
      st.calls = st.calls + 1
      if is_tensor(out) then
        st.shape, st.act = out.shape, st.act + bytes(out)
        if f then st.macs = st.macs + f(self, {...}, out) end
      end
      return table.unpack(res, 1, res.n)
    end)
  end
  model:eval()                       -- no batch-norm statistics updated, no dropout
  local ok, err = pcall(tide.no_grad, function() return model(table.unpack(args)) end)
  for _, s in ipairs(saved) do
    rawset(s[1], "forward", s[2])
    rawset(s[1], "training", s[3])
  end
  if not ok then   -- the position is the wrapper's: the message names the layer already
    error(fn .. ": the model's forward failed: " .. tostring(err):gsub("^[^\n]-%.lua:%d+: ", ""), 4)
  end
  return stats
end

local function options(fn, o)
  if o ~= nil and type(o) ~= "table" then error(fn .. ": options must be a table, got " .. type(o), 4) end
  o = o or {}
  local known = {depth = true, batch_size = true, batch_dim = true, dtype = true, print = true}
  for k in pairs(o) do
    if not known[k] then error(fn .. ": unknown option '" .. tostring(k) .. "'", 4) end
  end
  local r = {depth = o.depth or 2, batch_size = o.batch_size, batch_dim = o.batch_dim or 1,
             dtype = o.dtype, print = o.print ~= false}
  for _, k in ipairs({"depth", "batch_dim", "batch_size"}) do
    local v = r[k]
    if v ~= nil and (math.type(v) ~= "integer" or v < (k == "depth" and 0 or 1)) then
      error(("%s: %s must be a %s integer, got %s"):format(fn, k,
            k == "depth" and "non-negative" or "positive", tostring(v)), 4)
    end
  end
  if r.dtype ~= nil and not BYTES[r.dtype] then
    error(fn .. ": unknown dtype '" .. tostring(r.dtype) .. "'", 4)
  end
  return r
end

local function check_model(fn, model)
  if not is_module(model) then
    error(fn .. ": expected a module (nn.Module), got " .. type(model), 4)
  end
end

-- the pruning masks of a model's parameters: a parameter `w_orig` beside a buffer `w_mask` (the
-- names torch.nn.utils.prune and tide.prune give them) counts as w_orig * w_mask
local function masks_of(model)
  local masks = {}
  for _, m in ipairs(model:modules()) do
    for name, b in pairs(m:named_buffers()) do
      local base = name:match("^([^.]+)_mask$")
      local orig = base and rawget(m, base .. "_orig")
      if is_tensor(orig) then masks[orig] = b end
    end
  end
  return masks
end

-- elements of a list of parameters: all, trainable, non-zero, the trainable ones' bytes, and
-- whether a weight matrix or kernel (2-D or more) has zeros, as pruning leaves
local function count(params, masks)
  local n, trainable, nonzero, nbytes, sparse = 0, 0, 0, 0, false
  for _, p in ipairs(params) do
    local live = masks[p] and tide.no_grad(function() return p * masks[p] end) or p
    local nz = math.tointeger(live:ne(0):sum():item())
    n, nonzero = n + p:numel(), nonzero + nz
    if p.requires_grad then trainable, nbytes = trainable + p:numel(), nbytes + bytes(p) end
    sparse = sparse or (p:dim() >= 2 and nz < p:numel())
  end
  return n, trainable, nonzero, nbytes, sparse
end

---- the report ------------------------------------------------------------------------------

local function thousands(n)
  if math.type(n) ~= "integer" then return ("%.1f"):format(n) end
  local s = tostring(n)
  repeat
    local k
    s, k = s:gsub("^(-?%d+)(%d%d%d)", "%1,%2")
  until k == 0
  return s
end

local function mb(b) return ("%.2f MB"):format(b / 1e6) end

local function human(b)                      -- 880 B, 12.5 KB, 3.14 MB (powers of 1000)
  if b < 1e3 then return ("%d B"):format(math.floor(b + 0.5)) end
  if b < 1e6 then return ("%.1f KB"):format(b / 1e3) end
  return mb(b)
end

local Report = {}
Report.__index = Report

function Report.__tostring(r)
  local pruned = r.sparse_weights              -- the non-zero column only when it says something
  local head = {"Layer (class)", "Output", "Params", "Trainable", "MACs", "Activations"}
  if pruned then table.insert(head, 5, "Non-zero") end
  local lines = {head}
  for _, row in ipairs(r.layers) do
    local l = {string.rep("  ", row.depth - 1) .. row.name .. " (" .. row.class .. ")",
               shape_str(row.output_shape), thousands(row.params), thousands(row.trainable),
               thousands(row.macs), human(row.activation_bytes)}
    if pruned then table.insert(l, 5, thousands(row.nonzero)) end
    lines[#lines + 1] = l
  end
  local width = {}
  for _, l in ipairs(lines) do
    for i, c in ipairs(l) do width[i] = math.max(width[i] or 0, #c) end
  end
  local out = {}
  for j, l in ipairs(lines) do
    local cells = {("%-" .. width[1] .. "s"):format(l[1])}
    for i = 2, #l do cells[i] = ("%" .. width[i] .. "s"):format(l[i]) end
    out[#out + 1] = table.concat(cells, "  ")
    if j == 1 then out[#out + 1] = string.rep("-", #out[1]) end
  end
  local total = #out > 0 and #out[1] or 0
  out[#out + 1] = string.rep("-", total)
  out[#out + 1] = ("Params: %s (trainable %s, frozen %s)%s"):format(thousands(r.total_params),
    thousands(r.trainable_params), thousands(r.total_params - r.trainable_params),
    pruned and (", non-zero " .. thousands(r.nonzero_params)) or "")
  out[#out + 1] = ("MACs per example: %s (%.2f M)"):format(thousands(r.total_macs), r.total_macs / 1e6)
  out[#out + 1] = ("Size of params and buffers: %s (%s)"):format(human(r.size_bytes), r.dtype)
  out[#out + 1] = ("Activations per example: %s; input %s"):format(human(r.activation_bytes),
                                                                 human(r.input_bytes))
  out[#out + 1] = ("Forward + backward memory at batch %d: %s"):format(r.batch_size,
                                                                      human(r.memory_bytes))
  return table.concat(out, "\n")
end

local function report(fn, model, input, opts)
  check_model(fn, model)
  local o = options(fn, opts)
  local args, B = inputs(fn, model, input, o)
  local stats = observe(fn, model, args)
  local r, masks = setmetatable({layers = {}}, Report), masks_of(model)
  for name, m in pairs(model:named_modules()) do
    local _, dots = name:gsub("%.", "")
    if name ~= "" and dots < o.depth then
      local st, sub = stats[m], 0
      for _, s in ipairs(m:modules()) do sub = sub + stats[s].macs end
      local params, trainable, nonzero = count(m:parameters(), masks)
      r.layers[#r.layers + 1] = {name = name, class = class_of(m), depth = dots + 1,
        output_shape = st.shape, params = params, trainable = trainable, nonzero = nonzero,
        macs = per(sub, B), activation_bytes = per(st.act, B), calls = st.calls}
    end
  end
  local params = model:parameters()
  local trainable_bytes
  r.total_params, r.trainable_params, r.nonzero_params, trainable_bytes, r.sparse_weights =
    count(params, masks)
  local macs, act, size, seen = 0, 0, 0, {}
  for _, m in ipairs(model:modules()) do
    macs = macs + stats[m].macs
    local inner = false                      -- the output of the innermost modules that ran
    for _, c in ipairs(m:children()) do inner = inner or stats[c].calls > 0 end
    if not inner then act = act + stats[m].act end
  end
  for _, list in ipairs({params, model:buffers()}) do
    for _, t in ipairs(list) do
      if not seen[t] then seen[t], size = true, size + bytes(t) end
    end
  end
  local input_bytes = 0
  for _, a in ipairs(args) do if is_tensor(a) then input_bytes = input_bytes + bytes(a) end end
  r.total_macs, r.activation_bytes, r.size_bytes = per(macs, B), per(act, B), size
  r.input_bytes, r.batch_size = per(input_bytes, B), o.batch_size or B
  r.dtype = params[1] and params[1].dtype or "float32"
  -- parameters and their gradients, then per example its input, activations and their gradients
  r.memory_bytes = size + trainable_bytes
                   + r.batch_size * (r.input_bytes + 2 * r.activation_bytes)
  r._stats, r._B = stats, B
  return r, o
end

local M = {}

-- MACs of one forward of one example, and by module name the MACs each module does itself
-- (its children excluded; modules without any are left out)
function M.macs(model, input, opts)
  local r = report("tide.summary.macs", model, input, opts)
  local by = {}
  for name, m in pairs(model:named_modules()) do
    local v = r._stats[m].macs
    if v > 0 then by[name] = per(v, r._B) end
  end
  return r.total_macs, by
end

M.formulas = formulas.formulas

return setmetatable(M, {__call = function(_, model, input, opts)
  local r, o = report("tide.summary", model, input, opts)
  r._stats, r._B = nil, nil
  if o.print then
    print(r)
    local repl = package.loaded["tide.repl"]
    if repl then repl.shown = r end  -- printed: the REPL does not echo it again
  end
  return r
end})
