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

-- f(...) must raise an error matching the Lua pattern
function H.matches(pattern, f, ...)
  local msg = H.errmsg(f, ...)
  assert(msg:find(pattern), ("error '%s' does not match '%s'"):format(msg, pattern))
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

-- a tensor against a tensor or nested table of numbers, element by element within tol (absolute,
-- default 1e-6); a tensor want must also have got's shape
function H.near(got, want, tol)
  if type(want) ~= "table" then
    local gs, ws = table.concat(got.shape, "x"), table.concat(want.shape, "x")
    assert(gs == ws, ("shape %s, expected %s"):format(gs, ws))
  end
  local x, y = got:totable(), type(want) == "table" and want or want:totable()
  if type(x) ~= "table" then x, y = {x}, {y} end
  local function walk(a, b)
    assert(#a == #b, ("%d elements, expected %d"):format(#a, #b))
    for i = 1, #a do
      if type(a[i]) == "table" then walk(a[i], b[i])
      else
        assert(math.abs(a[i] - b[i]) <= (tol or 1e-6), ("%g vs %g at %d"):format(a[i], b[i], i))
      end
    end
  end
  walk(x, y)
end

-- ---- files and processes -------------------------------------------------------------------
-- s quoted for the shell
function H.q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- a fresh path in the temporary directory (nothing there yet)
function H.tmpname()
  local n = os.tmpname()
  os.remove(n)
  return n
end

-- a fresh empty directory
function H.tmpdir()
  local n = H.tmpname()
  assert(os.execute("mkdir -p " .. H.q(n)))
  return n
end

-- the bytes of the file at path, or nil when it cannot be read
function H.slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function H.write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

-- cmd's stdout and stderr together, and its exit code
function H.run(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

return H
