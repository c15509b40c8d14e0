-- tests/lua/nn_hooks_spec.lua: forward, forward-pre and full backward hooks on nn.Module
-- (PyTorch's semantics), their handles, and tide._hook underneath: gradients seen and replaced
-- against hand-computed values, misuse errors.
local tide = require "tide"
local nn = require "tide.nn"

local lin = require("helpers").linear -- a Linear with known weights

describe("forward hooks", function()
  it("see input and output, may replace the output, and stop on remove()", function()
    local m = lin({{1, 2}, {3, 4}}, {0, 1})
    local seen
    local h = m:register_forward_hook(function(mod, input, output)
      seen = {mod, input[1]:totable(), output:totable()}
    end)
    local y = m(tide.tensor({{1, 1}}))
    assert.equal(m, seen[1])
    assert.same({{1, 1}}, seen[2])
    assert.same({{3, 8}}, seen[3])
    assert.same({{3, 8}}, y:totable())
    local h2 = m:register_forward_hook(function(_, _, output) return output * 2 end)
    assert.same({{6, 16}}, m(tide.tensor({{1, 1}})):totable())
    h2:remove()
    h:remove()
    seen = nil
    assert.same({{3, 8}}, m(tide.tensor({{1, 1}})):totable())
    assert.is_nil(seen)
    assert.is_false(rawget(m, "_hooks")) -- back on the hook-free path
  end)

  it("pre-hooks may replace the input; hooks on children run inside Sequential", function()
    local m = lin({{1, 0}, {0, 1}}, {0, 0})
    m:register_forward_pre_hook(function(_, input) return input[1] + 1 end)
    local net = nn.Sequential(m, nn.ReLU())
    local act
    net[2]:register_forward_hook(function(_, _, out) act = out end)
    assert.same({{2, 3}}, net(tide.tensor({{1, 2}})):totable())
    assert.same({{2, 3}}, act:totable())
  end)

  it("reject a non-function", function()
    local m = nn.ReLU()
    assert.has_error(function() m:register_forward_hook(42) end,
                     "ReLU():register_forward_hook: expected a function, got number")
  end)
end)

describe("full backward hooks", function()
  it("get grad_input and grad_output, and may replace grad_input", function()
    local m = lin({{1, 2}, {3, 4}}, {0, 0})
    local gin, gout
    local h = m:register_full_backward_hook(function(_, grad_input, grad_output)
      gin, gout = grad_input[1]:totable(), grad_output[1]:totable()
    end)
    local x = tide.tensor({{1, -1}}, {requires_grad = true})
    ;(m(x) * tide.tensor({{1, 10}})):sum():backward()
    assert.same({{1, 10}}, gout)
    assert.same({{31, 42}}, gin)     -- g @ W
    assert.same({{31, 42}}, x.grad:totable())
    h:remove()
    m:register_full_backward_hook(function(_, grad_input) return {grad_input[1] * 0.5} end)
    x.grad = nil
    ;(m(x) * tide.tensor({{1, 10}})):sum():backward()
    assert.same({{15.5, 21}}, x.grad:totable())
  end)

  it("fire with no grad_input when the input is not tracked (the first layer)", function()
    local m = lin({{1, 2}, {3, 4}}, {0, 0})
    local n, gout = 0, nil
    m:register_full_backward_hook(function(_, grad_input, grad_output)
      n, gout = n + 1, grad_output[1]:totable()
      assert.is_nil(grad_input[1])
    end)
    m(tide.tensor({{1, 1}})):sum():backward()
    assert.equal(1, n)
    assert.same({{1, 1}}, gout)
    assert.same({{1, 1}, {1, 1}}, m.weight.grad:totable())
  end)

  it("report hook errors and bad replacements as backward errors", function()
    local x = tide.tensor({1, 2}, {requires_grad = true})
    local y = tide._hook(x * 1, function() error("boom") end)
    local ok, err = pcall(function() y:sum():backward() end)
    assert.is_false(ok)
    assert.matches("boom", err)
    y = tide._hook(x * 1, function() return tide.zeros(3) end)
    ok, err = pcall(function() y:sum():backward() end)
    assert.is_false(ok)
    assert.matches("backward hook: expected nil or a float32 tensor of shape 2, got 3", err, 1, true)
    y = tide._hook(x * 1, function(g) g:sum():backward() end)
    ok, err = pcall(function() y:sum():backward() end)
    assert.is_false(ok)
    assert.matches("backward: cannot run inside a backward hook", err, 1, true)
    assert.has_error(function() tide._hook(tide.zeros(2), print) end)
  end)
end)
