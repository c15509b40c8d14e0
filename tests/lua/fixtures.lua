-- tests/lua/fixtures.lua: the machinery behind ops_spec.lua's check lines. check(op, inputs,
-- args, opts) records a case; suite() turns the cases of each op into one busted test comparing
-- tide with tests/fixtures/ops.lua (PyTorch values from scripts/gen_fixtures.py, which parses
-- the same check lines), one for gradients and one for tide.autograd.gradcheck.
local tide = require "tide"

local M = {}

M.path = os.getenv("TIDE_FIXTURES") or "tests/fixtures/ops.lua"

-- The canonical text of a check argument; gen_fixtures.py's ser() writes the same.
local function numstr(v)
  if math.type(v) == "integer" then return string.format("%d", v) end
  if v ~= v then return "nan" end
  if v == math.huge then return "inf" end
  if v == -math.huge then return "-inf" end
  return string.format("%.17g", v)
end

function M.ser(v)
  local tv = type(v)
  if v == nil then return "nil" end
  if tv == "boolean" then return tostring(v) end
  if tv == "number" then return numstr(v) end
  if tv == "string" then return '"' .. v .. '"' end
  assert(tv == "table", "check arguments must be Lua literals")
  local parts, named = {}, {}
  for i = 1, #v do parts[i] = M.ser(v[i]) end
  for k in pairs(v) do
    if type(k) == "string" then named[#named + 1] = k end
  end
  table.sort(named)
  for i, k in ipairs(named) do named[i] = k .. "=" .. M.ser(v[k]) end
  return "{" .. table.concat(parts, ",") .. (#named > 0 and ";" .. table.concat(named, ",") or "")
    .. "}"
end

local fixtures, load_err
function M.load()
  if fixtures then return fixtures end
  if load_err then error(load_err, 0) end
  local chunk, err = loadfile(M.path, "t", {})
  if not chunk then
    load_err = "cannot load " .. M.path .. " (run `make fixtures`): " .. err
    error(load_err, 0)
  end
  fixtures = chunk()
  return fixtures
end

-- ---- tensors from fixtures and back ------------------------------------------------------------
function M.nest(flat, shape)
  if #shape == 0 then return flat[1] end
  local pos = 0
  local function build(d)
    local t = {}
    for i = 1, shape[d] do
      if d == #shape then
        pos = pos + 1
        t[i] = flat[pos]
      else
        t[i] = build(d + 1)
      end
    end
    return t
  end
  return build(1)
end

function M.flatten(v, out)
  out = out or {}
  if type(v) ~= "table" then
    out[#out + 1] = v
  else
    for i = 1, #v do M.flatten(v[i], out) end
  end
  return out
end

local TENSOR_MT = getmetatable(tide.zeros(1))
function M.is_tensor(v)
  return type(v) == "userdata" and getmetatable(v) == TENSOR_MT
end

function M.make(flat, shape, dtype, requires_grad)
  return tide.tensor(M.nest(flat, shape), {dtype = dtype, requires_grad = requires_grad or nil})
end

-- The operand a spec describes, made from the leaf (gen_fixtures.py's apply_view).
function M.view(t, spec)
  local v = spec.view
  if v == "T" then return t:transpose(-2, -1) end
  if v == "narrow" then return t:narrow(1, 2, t:size(1) - 2) end
  if v == "permute" then
    local dims = {}
    for d = t:dim(), 1, -1 do dims[#dims + 1] = d end
    return t:permute(table.unpack(dims))
  end
  if v == "expand" then return t:expand(table.unpack(spec)) end
  assert(v == nil, "unknown view " .. tostring(v))
  return t
end

local function spec_dtype(spec, fdtype)
  if spec.index then return "int64" end
  local dt = spec.dtype or "float"
  return dt == "float" and fdtype or dt
end

-- Leaves (float inputs, requires_grad when grad) and the operands the op sees.
function M.inputs(specs, fx, fdtype, grad)
  local leaves, xs = {}, {}
  for i, spec in ipairs(specs) do
    local inp = fx.inputs[i]
    if type(spec) == "number" then
      xs[i] = inp.scalar
    else
      local dt = spec_dtype(spec, fdtype)
      local isfloat = (spec.dtype or "float") == "float" and not spec.index
      local t = M.make(inp.data, inp.shape, dt, grad and isfloat)
      leaves[i] = isfloat and t or false
      xs[i] = M.view(t, spec)
    end
  end
  return leaves, xs
end

-- ---- comparison -----------------------------------------------------------------------------------
local TOL = {float32 = 1e-5, float64 = 1e-10}
local GTOL = {float32 = 1e-4, float64 = 1e-9}

local function fmtv(v)
  return type(v) == "number" and string.format("%.9g", v) or tostring(v)
end

local function close(got, want, rtol, scale)
  if type(want) ~= "number" or type(got) ~= "number" then return got == want end
  if want ~= want then return got ~= got end
  if want == math.huge or want == -math.huge then return got == want end
  return math.abs(got - want) <= rtol * (math.abs(want) + scale)
end

-- nil when the flat lists agree, else a message naming the first difference
function M.compare_flat(got, want, rtol)
  if #got ~= #want then return string.format("got %d values, expected %d", #got, #want) end
  local scale = 1
  for _, w in ipairs(want) do
    if type(w) == "number" and w == w and math.abs(w) ~= math.huge then
      scale = math.max(scale, math.abs(w))
    end
  end
  for i = 1, #want do
    if not close(got[i], want[i], rtol or 0, scale) then
      return string.format("element %d: got %s, expected %s", i, fmtv(got[i]), fmtv(want[i]))
    end
  end
end

local function shape_str(s)
  return #s == 0 and "scalar" or table.concat(s, "x")
end

function M.compare_tensor(got, want, rtol)
  if not M.is_tensor(got) then
    return string.format("expected a tensor, got %s %s", type(got), fmtv(got))
  end
  local gs = got.shape
  if shape_str(gs) ~= shape_str(want.shape) then
    return string.format("shape %s, expected %s", shape_str(gs), shape_str(want.shape))
  end
  if got.dtype ~= want.dtype then
    return string.format("dtype %s, expected %s", got.dtype, want.dtype)
  end
  if want.data then
    local tol = rtol or TOL[want.dtype] or 0
    local msg = M.compare_flat(M.flatten(got:totable()), want.data, tol)
    if msg then return msg end
  end
end

local function compare_value(got, want, rtol)
  if type(want) == "table" then
    if type(got) ~= "table" then return "expected a table, got " .. fmtv(got) end
    return M.compare_flat(M.flatten(got), M.flatten(want), rtol or TOL.float32)
  end
  if not close(got, want, rtol or TOL.float32, 1) then
    return string.format("got %s, expected %s", fmtv(got), fmtv(want))
  end
end

function M.compare_output(got, want, rtol)
  if want.list then
    if type(got) ~= "table" or M.is_tensor(got) then
      return "expected a Lua list of tensors, got " .. type(got)
    end
    if #got ~= #want.list then
      return string.format("list of %d tensors, expected %d", #got, #want.list)
    end
    for i, w in ipairs(want.list) do
      local msg = M.compare_tensor(got[i], w, rtol)
      if msg then return string.format("list item %d: %s", i, msg) end
    end
  elseif want.value ~= nil then
    return compare_value(got, want.value, rtol)
  else
    return M.compare_tensor(got, want, rtol)
  end
end

-- ---- calling an op the way a user does ------------------------------------------------------------
local OPERATORS = {
  ["+"] = function(x) return x[1] + x[2] end,
  ["-"] = function(x) return x[1] - x[2] end,
  ["*"] = function(x) return x[1] * x[2] end,
  ["/"] = function(x) return x[1] / x[2] end,
  ["%"] = function(x) return x[1] % x[2] end,
  ["^"] = function(x) return x[1] ^ x[2] end,
  ["//"] = function(x) return x[1] // x[2] end,
  unm = function(x) return -x[1] end,
  ["#"] = function(x) return #x[1] end,
  ["[]"] = function(x, a) return x[1][a[1]] end,
  ["[]="] = function(x, a)
    local y = x[1]:clone()
    y[a[1]] = x[2]
    return y
  end,
}
M.PROPS = {shape = true, ndim = true, dtype = true, T = true}
local LIST = {cat = true, stack = true}               -- tide.cat({a, b}, dim)
local DIMFIRST = {index = true, gather = true, scatter = true, -- t:gather(dim, idx[, src])
                  layer_norm = true}                          -- layer_norm(x, shape, w, b)
M.FUNC = {                                             -- documented as tide.name(...)
  mm = true, bmm = true, mv = true, dot = true, outer = true, addmm = true, where = true,
  zeros_like = true, ones_like = true, full_like = true, empty_like = true, rand_like = true,
  randn_like = true,
}

local function argv(name, x, nx, a)
  local v, n = {}, 0
  local function push(val) n = n + 1; v[n] = val end
  if DIMFIRST[name] or DIMFIRST[name:gsub("_$", "")] then
    push(x[1]); push(a[1])
    for i = 2, nx do push(x[i]) end
    for i = 2, #a do push(a[i]) end
  else
    for i = 1, nx do push(x[i]) end
    for i = 1, #a do push(a[i]) end
  end
  return v, n
end

-- How the primary form of `name` is called: "operator", "property", "list", "function" or
-- "method".
function M.form(name, x)
  if OPERATORS[name] or name == "@write" then return "operator" end
  if M.PROPS[name] then return "property" end
  if LIST[name] then return "list" end
  if x[1] == nil or M.FUNC[name] or not M.is_tensor(x[1]) then return "function" end
  return "method"
end

local function missing(name, what)
  error(string.format("op '%s' is not implemented (%s is nil)", name, what), 0)
end

-- Calls op `name` on operands x (nx of them, Lua numbers allowed) with extra arguments a;
-- returns table.pack of the results. form overrides the primary form.
function M.call(name, x, nx, a, form)
  form = form or M.form(name, x)
  if name == "@write" then
    local y = x[1]:clone()
    local r = M.call(a[1], {y}, 1, {table.unpack(a, 2)})
    r[1]:fill_(7)
    return table.pack(y)
  end
  if form == "operator" then return table.pack(OPERATORS[name](x, a)) end
  if form == "property" then return table.pack(x[1][name]) end
  if form == "list" then
    local f = tide[name] or missing(name, "tide." .. name)
    local list = {}
    for i = 1, nx do list[i] = x[i] end
    return table.pack(f(list, table.unpack(a)))
  end
  local v, n = argv(name, x, nx, a)
  if form == "function" then
    local f = tide[name] or missing(name, "tide." .. name)
    return table.pack(f(table.unpack(v, 1, n)))
  end
  local f = x[1][name] or missing(name, "t:" .. name)
  return table.pack(f(table.unpack(v, 1, n)))
end

-- The other documented spelling, when it exists: tide.exp(t) for t:exp(), a:mm(b) for tide.mm.
function M.other_form(name, x, form)
  if not M.is_tensor(x[1]) then return nil end
  if form == "method" and type(tide[name]) == "function" then return "function" end
  if form == "function" and M.FUNC[name] and x[1][name] then return "method" end
end

-- Tensor outputs of a call, lists flattened: what the fixture's w weights, in order.
function M.tensor_outputs(r)
  local outs = {}
  for i = 1, r.n do
    local v = r[i]
    if M.is_tensor(v) then
      outs[#outs + 1] = v
    elseif type(v) == "table" then
      for _, t in ipairs(v) do
        if M.is_tensor(t) then outs[#outs + 1] = t end
      end
    end
  end
  return outs
end

-- ---- the checker ------------------------------------------------------------------------------------
local cases, order, by_op = {}, {}, {}

function M.check(name, specs, args, opts)
  local info = debug.getinfo(2, "Sl")
  local c = {name = name, specs = specs or {}, args = args or {}, opts = opts or {},
             where = (info.short_src:match("[^/]*$")) .. ":" .. info.currentline}
  c.key = M.ser(name) .. M.ser(c.specs) .. M.ser(c.args)
  cases[#cases + 1] = c
  if not by_op[name] then
    by_op[name] = {}
    order[#order + 1] = name
  end
  table.insert(by_op[name], c)
end

function M.covered()
  local s = {}
  for _, name in ipairs(order) do s[name] = true end
  return s
end

local function variants(fx)
  local v = {}
  if fx.f64 then v[#v + 1] = {"float64", fx.f64} end
  if fx.f32 then v[#v + 1] = {"float32", fx.f32} end
  return v
end

local function fixture(c)
  local fx = M.load()[c.key]
  if not fx then
    error(string.format("%s: no fixture for %s (run `make fixtures`)", c.where, c.key), 0)
  end
  return fx
end

local function compare_all(r, out, rtol)
  for k, want in ipairs(out) do
    local msg = M.compare_output(r[k], want, rtol)
    if msg then return string.format("result %d: %s", k, msg) end
  end
end

-- Forward of one case in one dtype: the primary form, the other spelling, the in-place twin.
local function forward(c, fdtype, fv, fx)
  local rtol = c.opts.rtol and c.opts.rtol[fdtype]
  local _, x = M.inputs(c.specs, fx, fdtype, false)
  local nx = #c.specs
  local form = M.form(c.name, x)
  local r = M.call(c.name, x, nx, c.args, form)
  if c.name:sub(-1) == "_" and not rawequal(r[1], x[1]) then
    return c.name .. " must return self"
  end
  local msg = compare_all(r, fv.out, rtol)
  if msg then return msg end
  local other = M.other_form(c.name, x, form)
  if other then
    _, x = M.inputs(c.specs, fx, fdtype, false)
    msg = compare_all(M.call(c.name, x, nx, c.args, other), fv.out, rtol)
    if msg then return other .. " form: " .. msg end
  end
  local twin = c.name .. "_"
  local ops = rawget(tide, "_ops") or {}
  if ops[twin] and form == "method" and M.is_tensor(r[1]) and fv.out[1].shape
      and r[1].dtype == x[1].dtype and shape_str(r[1].shape) == shape_str(x[1].shape) then
    _, x = M.inputs(c.specs, fx, fdtype, false)
    local y = x[1]:clone()
    local xs = {y, table.unpack(x, 2, nx)}
    local r2 = M.call(twin, xs, nx, c.args, "method")
    if not rawequal(r2[1], y) then return twin .. " must return self" end
    msg = M.compare_output(y, fv.out[1], rtol)
    if msg then return twin .. ": " .. msg end
  end
end

-- An in-place op (name_) writes into a clone of its first operand, never into a leaf.
local function call_fresh(c, x)
  if c.name:sub(-1) == "_" and M.is_tensor(x[1]) then
    x = {x[1]:clone(), table.unpack(x, 2, #c.specs)}
  end
  return M.call(c.name, x, #c.specs, c.args)
end

-- Gradients of sum(out * w) for every float input, by y:backward(w).
local function backward(c, fdtype, fv, fx)
  local leaves, x = M.inputs(c.specs, fx, fdtype, true)
  local r = call_fresh(c, x)
  local outs, live = M.tensor_outputs(r), {}
  for k, o in ipairs(outs) do
    if o.requires_grad then live[#live + 1] = {o, fx.w[k]} end
  end
  if #live == 0 then return "no output requires grad (the op was not recorded)" end
  for i, ow in ipairs(live) do
    local o, w = ow[1], ow[2]
    o:backward(M.make(w, o.shape, o.dtype), {retain_graph = i < #live})
  end
  for i, want in ipairs(fv.grads) do
    local leaf = leaves[i]
    if want and leaf then
      local g = leaf.grad
      if not g then return string.format("input %d: .grad is nil", i) end
      local msg = M.compare_tensor(g, {shape = leaf.shape, dtype = leaf.dtype, data = want},
                                   c.opts.grad_rtol or GTOL[fdtype])
      if msg then return string.format("grad of input %d: %s", i, msg) end
    elseif leaf and leaf.grad then
      for _, v in ipairs(M.flatten(leaf.grad:totable())) do
        if v ~= 0 then return string.format("input %d: expected a zero or nil .grad", i) end
      end
    end
  end
end

-- tide.autograd.gradcheck on the float64 case: finite differences against backward.
local function gradcheck(c, fx)
  local leaves, x = M.inputs(c.specs, fx, "float64", true)
  local idx, ins = {}, {}
  for i, leaf in pairs(leaves) do
    if leaf then idx[#idx + 1], ins[#ins + 1] = i, leaf end
  end
  local function fn(...)
    local xs = {table.unpack(x, 1, #c.specs)}
    for k = 1, select("#", ...) do xs[idx[k]] = M.view(select(k, ...), c.specs[idx[k]]) end
    return M.tensor_outputs(call_fresh(c, xs))[1]
  end
  local y = fn(table.unpack(ins))
  if not (M.is_tensor(y) and y.dtype == "float64") then return end -- finite differences need f64
  local ok, report = tide.autograd.gradcheck(fn, ins)
  if not ok then return "gradcheck failed: " .. tostring(report) end
end

local function run(c, step)
  local ok, fx = pcall(fixture, c)
  if not ok then return fx end
  local fails = {}
  for _, v in ipairs(variants(fx)) do
    local fdtype, fv = v[1], v[2]
    if step ~= backward or fv.grads then
      local okc, msg = pcall(step, c, fdtype, fv, fx)
      if not okc or msg then
        fails[#fails + 1] = string.format("%s: %s %s [%s]: %s", c.where, c.name,
                                          M.ser(c.specs) .. M.ser(c.args), fdtype, tostring(msg))
      end
    end
  end
  return #fails > 0 and table.concat(fails, "\n") or nil
end

local function exists(name)
  if OPERATORS[name] or M.PROPS[name] or name == "@write" then return true end
  return tide[name] ~= nil or tide.Tensor[name] ~= nil
end

local function differentiable(c)
  local ok, fx = pcall(fixture, c)
  return ok and (fx.f64 and fx.f64.grads or fx.f32 and fx.f32.grads) ~= nil
end

-- Defines the busted tests: per op, forward, backward and gradcheck. An op or gradient that is
-- missing fails its test (a check line is a claim that the op exists).
function M.suite(it)
  for _, name in ipairs(order) do
    local list = by_op[name]
    it(name .. " forward", function()
      local fails = {}
      for _, c in ipairs(list) do fails[#fails + 1] = run(c, forward) end
      if #fails > 0 then error(table.concat(fails, "\n"), 0) end
    end)
    local diff = {}
    for _, c in ipairs(list) do
      if not c.opts.nograd and differentiable(c) then diff[#diff + 1] = c end
    end
    if #diff > 0 then
      it(name .. " backward", function()
        assert(exists(name), name .. ": no such op")
        local fails = {}
        for _, c in ipairs(diff) do fails[#fails + 1] = run(c, backward) end
        if #fails > 0 then error(table.concat(fails, "\n"), 0) end
      end)
      it(name .. " gradcheck", function()
        assert(exists(name), name .. ": no such op")
        local fails = {}
        for _, c in ipairs(diff) do
          local ok, fx = pcall(fixture, c)
          if ok and fx.f64 and not c.opts.nogradcheck then
            local okc, msg = pcall(gradcheck, c, fx)
            if not okc or msg then
              fails[#fails + 1] = string.format("%s: %s: %s", c.where, c.key, tostring(msg))
            end
          end
        end
        if #fails > 0 then error(table.concat(fails, "\n"), 0) end
      end)
    end
  end
end

return M
