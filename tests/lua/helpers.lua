-- tests/lua/helpers.lua: small helpers several specs share (require "helpers").
local tide = require "tide"
local H = {}

function H.maxdiff(a, b) return (a:double() - b:double()):abs():max():item() end

function H.close(a, b, tol, what)
  local d = H.maxdiff(a, b)
  assert(d <= tol, string.format("%s: off by %g (tolerance %g)", what or "values", d, tol))
end

function H.T(vals, dtype) return tide.tensor(vals, {dtype = dtype or "float64"}) end
function H.long(vals) return tide.tensor(vals, {dtype = "int64"}) end

-- f(...) must raise an error containing pattern (plain text)
function H.err(pattern, f, ...)
  local ok, msg = pcall(f, ...)
  assert(not ok, "expected an error matching " .. pattern)
  assert(tostring(msg):find(pattern, 1, true), "error was: " .. tostring(msg))
end

-- f(...) must raise an error; its message, for patterns (assert.matches)
function H.errmsg(f, ...)
  local ok, msg = pcall(f, ...)
  assert(not ok, "expected an error")
  return tostring(msg)
end

-- an nn.Linear with the given weight rows (out x in) and bias, in dtype (default float32)
function H.linear(w, b, dtype)
  local m = require("tide.nn").Linear(#w[1], #w)
  if dtype then m:to(dtype) end
  tide.no_grad(function()
    m.weight:copy_(tide.tensor(w, {dtype = m.weight.dtype}))
    m.bias:copy_(tide.tensor(b, {dtype = m.bias.dtype}))
  end)
  return m
end

-- an n x m float64 tensor holding 1..n*m row by row
function H.range(n, m)
  local rows = {}
  for i = 1, n do
    rows[i] = {}
    for j = 1, m do rows[i][j] = (i - 1) * m + j end
  end
  return tide.tensor(rows, {dtype = "float64"})
end

return H
