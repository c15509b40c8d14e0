-- stdlib/tide/nn/hooks.lua: forward, forward-pre and full backward hooks on nn.Module, with
-- PyTorch's semantics. A module without hooks has _hooks == false and Module.__call goes straight
-- to forward (one field read); the first hook gives it a table of lists and calls go through
-- `call` below. Backward hooks wrap the tracked tensor inputs and outputs of each forward in
-- tide._hook views (an identity whose backward calls Lua), as PyTorch's BackwardHookFunction does.
local tide = require "tide"

local is_tensor = tide.is_tensor

local Handle = {}
Handle.__index = Handle

-- handle:remove(): the hook stops running; the module goes back to the hook-free path when its
-- last hook is removed
function Handle:remove()
  local h = rawget(self.module, "_hooks")
  if not h then return end
  local list = h[self.kind]
  for i = #list, 1, -1 do if list[i] == self.fn then table.remove(list, i) end end
  if #h.pre + #h.forward + #h.backward == 0 then rawset(self.module, "_hooks", false) end
end

local function add(m, kind, fn, name)
  if type(fn) ~= "function" then
    error(m:config() .. ":" .. name .. ": expected a function, got " .. type(fn), 3)
  end
  local h = rawget(m, "_hooks")
  if not h then
    h = {pre = {}, forward = {}, backward = {}}
    rawset(m, "_hooks", h)
  end
  table.insert(h[kind], fn)
  return setmetatable({module = m, kind = kind, fn = fn}, Handle)
end

local function tracked(v) return is_tensor(v) and v.requires_grad end

-- runs the backward hooks once both sides' gradients are in; returns the replacement list or nil
local function fire(m, h, st)
  local gin, gout = st.gin, st.gout
  st.gin, st.gout, st.got = {}, {}, 0
  local repl
  for _, fn in ipairs(table.move(h.backward, 1, #h.backward, 1, {})) do
    local r = fn(m, gin, gout)
    if r ~= nil then
      if type(r) ~= "table" or is_tensor(r) then
        error(m:config() .. ": a full backward hook must return nil or a list of grad_input "
              .. "tensors, got " .. (is_tensor(r) and "a tensor" or type(r)), 0)
      end
      repl, gin = r, r
    end
  end
  return repl
end

-- wraps the tracked tensors of list t (positions 1..t.n) in tide._hook views calling on(i, g)
local function wrap(t, on)
  local n = 0
  for i = 1, t.n do
    if tracked(t[i]) then
      n = n + 1
      t[i] = tide._hook(t[i], function(g) return on(i, g) end)
    end
  end
  return n
end

local function call(m, ...)
  local h = rawget(m, "_hooks")
  local args = table.pack(...)
  for _, fn in ipairs(table.move(h.pre, 1, #h.pre, 1, {})) do
    local r = fn(m, args)
    if r ~= nil then args = is_tensor(r) and {r, n = 1} or table.pack(table.unpack(r)) end
  end
  local st
  if #h.backward > 0 and tide.is_grad_enabled() then
    st = {gin = {}, gout = {}, got = 0}
    st.nin = wrap(args, function(i, g)
      st.gin[i], st.got = g, st.got + 1
      if st.got < st.nin then return nil end
      local r = fire(m, h, st)
      if r == nil then return nil end
      if st.nin > 1 then
        error(m:config() .. ": a full backward hook can replace grad_input only for a module "
              .. "with one tracked tensor input", 0)
      end
      return r[i]
    end)
  end
  local outs = table.pack(m:forward(table.unpack(args, 1, args.n)))
  for _, fn in ipairs(table.move(h.forward, 1, #h.forward, 1, {})) do
    local r = fn(m, args, outs.n == 1 and outs[1] or outs)
    if r ~= nil then outs = outs.n == 1 and {r, n = 1} or table.pack(table.unpack(r)) end
  end
  if st then
    local nout = 0
    nout = wrap(outs, function(j, g)
      st.gout[j] = g
      if st.nin == 0 then -- no tracked input: PyTorch fires with grad_input all nil
        st.seen = (st.seen or 0) + 1
        if st.seen == nout then
          st.seen = 0
          fire(m, h, st)
        end
      end
      return nil
    end)
  end
  return table.unpack(outs, 1, outs.n)
end

return function(Module)
  -- m:register_forward_pre_hook(fn(module, input)): before forward; input is the list of its
  -- arguments; fn may return a replacement (a tensor, or a list of arguments)
  function Module:register_forward_pre_hook(fn)
    return add(self, "pre", fn, "register_forward_pre_hook")
  end
  -- m:register_forward_hook(fn(module, input, output)): after forward; may return a new output
  function Module:register_forward_hook(fn)
    return add(self, "forward", fn, "register_forward_hook")
  end
  -- m:register_full_backward_hook(fn(module, grad_input, grad_output)): when the gradients of
  -- the module's inputs are computed; may return a replacement list of grad_input
  function Module:register_full_backward_hook(fn)
    return add(self, "backward", fn, "register_full_backward_hook")
  end
  return call
end
