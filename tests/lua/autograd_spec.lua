-- tests/lua/autograd_spec.lua: the tape, backward, grad mode and autograd.grad (doc/autograd.md).
-- Per-op gradients are checked in ops_spec.lua against PyTorch and gradcheck.
local tide = require "tide"
local H = require "helpers"

local close = H.near

describe("backward", function()
  it("accumulates d(sum(w*x + b)) into the leaves", function()
    local w = tide.tensor({1, 2, 3, 4}, {requires_grad = true})
    local b = tide.tensor({0, 0, 0, 0}, {requires_grad = true})
    local x = tide.tensor({5, 6, 7, 8})
    local y = (w * x + b):sum()
    assert.equal("SumBackward", y.grad_fn)
    y:backward()
    close(w.grad, {5, 6, 7, 8})
    close(b.grad, {1, 1, 1, 1})
    assert.is_nil(x.grad)
    local y2 = (w * x):sum()              -- a second graph accumulates
    y2:backward()
    close(w.grad, {10, 12, 14, 16})
    w.grad = nil
    assert.is_nil(w.grad)
  end)

  it("reduces broadcast gradients to the input's shape", function()
    local a = tide.ones({3, 1}, {requires_grad = true})
    local b = tide.ones({4}, {requires_grad = true})
    local y = ((a + b) * 2):sum()
    y:backward()
    assert.same({3, 1}, a.grad.shape)
    close(a.grad:view(-1), {8, 8, 8})
    close(b.grad, {6, 6, 6, 6})
  end)

  it("uses the saved output of exp and input of mul", function()
    local x = tide.tensor({0, 1, 2}, {dtype = "float64", requires_grad = true})
    local y = (x:exp() * x):sum()          -- d/dx x e^x = (1 + x) e^x
    y:backward()
    close(x.grad, {1, 2 * math.exp(1), 3 * math.exp(2)}, 1e-12)
  end)

  it("takes an explicit gradient for a non-scalar output", function()
    local x = tide.tensor({1, 2}, {requires_grad = true})
    local y = x * 3
    y:backward(tide.tensor({1, 10}))
    close(x.grad, {3, 30})
  end)

  it("refuses a non-scalar output without a gradient", function()
    local x = tide.tensor({1, 2}, {requires_grad = true})
    local ok, err = pcall(function() (x * 2):backward() end)
    assert.is_false(ok)
    assert.matches("backward: a gradient can be implied only for a one%-element output, got shape 2", err)
  end)

  it("frees the graph unless retain_graph is set", function()
    local x = tide.tensor({1, 2}, {requires_grad = true})
    local y = (x * x):sum()
    y:backward({retain_graph = true})
    y:backward()
    close(x.grad, {4, 8})
    local ok, err = pcall(y.backward, y)
    assert.is_false(ok)
    assert.matches("already freed", err)
    assert.matches("retain_graph", err)
  end)

  it("refuses a tensor that does not require grad", function()
    local ok, err = pcall(function() tide.tensor({1}):sum():backward() end)
    assert.is_false(ok)
    assert.matches("does not require grad", err)
  end)

  it("detects in-place modification of a saved tensor, naming the op", function()
    local x = tide.tensor({1, 2}, {requires_grad = true})
    local y = x:exp()
    local z = y:sum()
    y:mul_(2)
    local ok, err = pcall(z.backward, z)
    assert.is_false(ok)
    assert.matches("ExpBackward", err)
  end)

  it("records in-place ops on non-leaves and refuses them on leaves", function()
    local x = tide.tensor({1, 2}, {requires_grad = true})
    local y = x * 2
    y:add_(1)
    assert.equal("AddBackward", y.grad_fn)
    y:sum():backward()
    close(x.grad, {2, 2})
    local ok, err = pcall(function() x:add_(1) end)
    assert.is_false(ok)
    assert.matches("add_: a leaf tensor that requires grad", err)
    tide.no_grad(function() x:add_(1) end)  -- how optimizers update
    close(x, {2, 3})
  end)

  -- PyTorch saves a copy of what such an op overwrites; the gradients equal the out-of-place ones
  it("differentiates in-place ops whose backward reads the value they overwrite", function()
    local cases = {
      mul_ = function(z, w) return z:mul_(w) end, div_ = function(z, w) return z:div_(w) end,
      pow_ = function(z) return z:pow_(3) end, clamp_ = function(z) return z:clamp_(-1, 1) end,
      abs_ = function(z) return z:abs_() end,
      twice = function(z, w) return z:mul_(w):mul_(z:detach() + 1) end,
    }
    local plain = {
      mul_ = function(z, w) return z * w end, div_ = function(z, w) return z / w end,
      pow_ = function(z) return z:pow(3) end, clamp_ = function(z) return z:clamp(-1, 1) end,
      abs_ = function(z) return z:abs() end,
      twice = function(z, w) return (z * w) * (z * w):detach() + z * w end,
    }
    local X, W = {-1.5, 0.2, 0.7}, {0.5, -2, 3}
    for name, f in pairs(cases) do
      local grads = {}
      for k, g in ipairs{f, plain[name]} do
        local x = tide.tensor(X, {dtype = "float64", requires_grad = true})
        local w = tide.tensor(W, {dtype = "float64", requires_grad = true})
        local z = x * 2
        g(z, w):sum():backward()
        grads[k] = {x.grad, w.grad or tide.zeros(3, {dtype = "float64"})}
      end
      for i = 1, 2 do
        local d = (grads[1][i] - grads[2][i]):abs():max():item()
        assert.is_true(d < 1e-12, ("%s: gradient %d differs by %g"):format(name, i, d))
      end
    end
  end)
end)

describe("grad mode", function()
  it("no_grad returns fn's results and restores the mode, also on error", function()
    local x = tide.tensor({1}, {requires_grad = true})
    local y, n = tide.no_grad(function(a) return a * 2, 7 end, x)
    assert.is_false(y.requires_grad)
    assert.is_nil(y.grad_fn)
    assert.equal(7, n)
    assert.is_true(tide.is_grad_enabled())
    assert.has_error(function() tide.no_grad(function() error("boom") end) end)
    assert.is_true(tide.is_grad_enabled())
    assert.is_true(tide.set_grad_enabled(false))
    assert.is_false((x * 2).requires_grad)
    tide.set_grad_enabled(true)
  end)

  it("detach shares storage and drops history", function()
    local x = tide.tensor({1, 2}, {requires_grad = true})
    local d = (x * 1):detach()
    assert.is_false(d.requires_grad)
    assert.is_true(d.is_leaf)
  end)
end)

describe("autograd.grad", function()
  it("returns gradients without touching .grad", function()
    local x = tide.tensor({1, 2, 3}, {requires_grad = true})
    local h = x * x
    local g = tide.autograd.grad((h * 2):sum(), {x, h})
    close(g[1], {4, 8, 12})
    close(g[2], {2, 2, 2})
    assert.is_nil(x.grad)
  end)

  it("refuses inputs that do not influence the outputs unless allowed", function()
    local x = tide.tensor({1}, {requires_grad = true})
    local z = tide.tensor({1}, {requires_grad = true})
    assert.has_error(function() tide.autograd.grad((x * 2):sum(), {z}) end)
    local g = tide.autograd.grad((x * 2):sum(), {z, x}, {allow_unused = true})
    assert.is_nil(g[1])
    close(g[2], {2})
  end)

  it("gives a repeated input the same gradient, as PyTorch does", function()
    local x = tide.tensor({1, 2}, {requires_grad = true})
    local w = tide.tensor({3}, {requires_grad = true})
    local g = tide.autograd.grad((x * x * w):sum(), {x, w, x})
    close(g[1], {6, 12})
    close(g[2], {5})
    close(g[3], {6, 12})
    g[1]:zero_() -- one gradient tensor for both entries (PyTorch returns the same object too)
    close(g[3], {0, 0})
    assert.is_nil(x.grad)
  end)
end)

describe("gradcheck", function()
  it("passes for correct gradients and reports a wrong one", function()
    local x = tide.tensor({{0.5, -1.2}, {2.0, 0.3}}, {dtype = "float64", requires_grad = true})
    assert.is_true(tide.autograd.gradcheck(function(a) return (a:tanh() * a):exp() end, {x}))
    -- detach hides x's influence: the analytic gradient (0) disagrees with the numeric one
    local ok, report = tide.autograd.gradcheck(function(a) return a * a:detach() end, {x})
    assert.is_false(ok)
    assert.matches("input 1 element 1: analytic", report)
  end)

  it("insists on float64 inputs", function()
    local x = tide.tensor({1, 2}, {requires_grad = true})
    local ok, err = pcall(tide.autograd.gradcheck, function(a) return a * 2 end, {x})
    assert.is_false(ok)
    assert.matches("gradcheck: input 1 is float32, expected float64", err)
  end)
end)
