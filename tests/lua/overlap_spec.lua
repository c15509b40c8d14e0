-- tests/lua/overlap_spec.lua: in-place writes through views that share memory (doc/tensor.md,
-- "Views and shape"). Each case gave a silently wrong answer before tensor/overlap.c; the C
-- suite's test_overlap.c checks the rule on random views for every in-place row.
local tide = require "tide"

local err = require("helpers").errmsg

describe("in-place writes", function()
  it("refuse a tensor whose elements share memory, and change nothing", function()
    local b = tide.ones(1)
    assert.matches("add_: the tensor written to %(shape 3, strides 0%) has elements that share memory",
                   err(function() return tide.ones(1):expand(3):add_(1) end))
    assert.matches("mul_: .*share memory", err(function() return b:expand(3):mul_(2) end))
    assert.same({1}, b:totable())
    local e = tide.zeros(2, 1):expand(2, 3)
    for name, f in pairs({
      copy_ = function() e:copy_(tide.ones(2, 3)) end,
      fill_ = function() e:fill_(5) end,
      exp_ = function() e:exp_() end,
      clamp_ = function() e:clamp_(1, 2) end,
      masked_fill_ = function() e:masked_fill_(tide.ones(2, 3):gt(0), 1) end,
      uniform_ = function() e:uniform_() end,
      assign = function() e[{{}, 2}] = 3 end,
    }) do
      assert.matches("share memory", err(f), nil, false, name)
    end
    assert.same({{0}, {0}}, e:contiguous():narrow(2, 1, 1):totable())
  end)

  it("read an overlapping source as it was before the write", function()
    local a = tide.arange(1, 4)
    a:narrow(1, 2, 3):copy_(a:narrow(1, 1, 3))
    assert.same({1, 1, 2, 3}, a:totable())
    a = tide.arange(1, 4)
    a[{{2, 4}}] = a[{{1, 3}}]
    assert.same({1, 1, 2, 3}, a:totable())
    a = tide.arange(1, 4):view(2, 2)
    a:copy_(a:t())
    assert.same({{1, 3}, {2, 4}}, a:totable())
    a = tide.arange(1, 4):view(2, 2)
    a:add_(a:t())
    assert.same({{2, 5}, {5, 8}}, a:totable())
    a = tide.arange(1, 5)
    a:narrow(1, 1, 4):mul_(a:narrow(1, 2, 4))
    assert.same({2, 6, 12, 20, 5}, a:totable())
    a = tide.arange(1, 4):view(2, 2)
    a:add_(a)                                                  -- the same elements: fine
    assert.same({{2, 4}, {6, 8}}, a:totable())
  end)

  it("keep gradients right through the copy", function()
    local x = tide.tensor({{1, 2}, {3, 4}}, {dtype = "float64", requires_grad = true})
    local b = x * 1
    b:mul_(b:t())                                              -- b[i][j] = x[i][j] * x[j][i]
    assert.same({{1, 6}, {6, 16}}, b:totable())
    b:sum():backward()
    assert.same({{2, 6}, {4, 8}}, x.grad:totable())            -- 2*x[j][i]
  end)
end)
