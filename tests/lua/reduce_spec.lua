-- tests/lua/reduce_spec.lua: the Lua face of reductions, softmax and linear algebra (argument
-- forms, 1-based positions, two results, option tables, error messages); the numerics are
-- checked in C against naive kernels (tests/c/test_reduce.c, test_matmul.c) and in ops_spec.
local tide = require "tide"
local H = require "helpers"

local function close(t, want, tol)
  local got = type(t) == "number" and t or t:totable()
  if type(got) == "number" then got = {got} end
  if type(want) == "number" then want = {want} end
  local function walk(g, w, path)
    if type(w) == "table" then
      assert.equal(#w, #g, "length at " .. path)
      for i = 1, #w do walk(g[i], w[i], path .. "[" .. i .. "]") end
    else
      assert(math.abs(g - w) <= (tol or 1e-5), string.format("%s: got %.9g, want %.9g", path, g, w))
    end
  end
  walk(got, want, "t")
end

local fails = H.matches

describe("reductions from Lua", function()
  local t = tide.tensor({{1, 9, 3}, {7, 2, 7}})

  it("take a dim, keepdim, or an options table", function()
    close(t:sum(), 29)
    close(t:sum(1), {8, 11, 10})
    close(t:sum(-1), {13, 16})
    assert.same({2, 1}, t:sum(2, true).shape)
    assert.same({2, 1}, t:sum({dim = 2, keepdim = true}).shape)
    close(t:sum({dim = 1}), {8, 11, 10})
    assert.same({1, 1}, t:sum(nil, true).shape)
    assert.equal(0, t:sum().ndim)
  end)

  it("max and min with a dim return values and 1-based int64 positions", function()
    local v, i = t:max(2)
    close(v, {9, 7})
    assert.same({2, 1}, i:totable())
    assert.equal("int64", i.dtype)
    local mv, mi = tide.min(t, 1)
    close(mv, {1, 2, 3})
    assert.same({1, 2, 1}, mi:totable())
    assert.equal(2, t:argmax():item())
    assert.same({{2}, {1}}, t:argmax(2, true):totable())
    assert.equal(1, select("#", t:max()))
  end)

  it("var and std are unbiased unless told otherwise", function()
    local x = tide.tensor({1, 2, 3, 4}, {dtype = "float64"})
    close(x:var(), 5 / 3, 1e-12)
    close(x:var({unbiased = false}), 1.25, 1e-12)
    close(x:std(1, false, {unbiased = false}), math.sqrt(1.25), 1e-12)
  end)

  it("integer sums stay exact and mean of integers names the dtype", function()
    local big = tide.tensor({(1 << 60), 1}, {dtype = "int64"})
    assert.equal((1 << 60) + 1, big:sum():item())
    assert.equal("int64", tide.tensor({true, false, true}, {dtype = "bool"}):sum().dtype)
    fails("mean: expected a float tensor, got int64", tide.mean, big)
  end)

  it("reject bad dims and unknown options", function()
    fails("sum: dim 3 out of range for a 2%-D tensor", t.sum, t, 3)
    fails("var: unknown option 'unbiassed'", t.var, t, 1, {unbiassed = true})
    fails("max: cannot reduce an empty tensor of shape 0", t.max, tide.zeros(0))
  end)

  it("have gradients through autograd", function()
    local x = tide.tensor({{1, 5}, {4, 2}}, {requires_grad = true})
    local v = x:max(2)
    local y = v:sum() + x:logsumexp() * 0
    y:backward()
    close(x.grad, {{0, 1}, {1, 0}})
  end)
end)

describe("softmax", function()
  it("normalises along a dim, stably", function()
    local p = tide.tensor({{1, 2}, {1000, 1000}}):softmax(-1)
    close(p, {{1 / (1 + math.exp(1)), 1 / (1 + math.exp(-1))}, {0.5, 0.5}})
    close(tide.tensor({0, 100}, {dtype = "float64"}):log_softmax(1), {-100, 0}, 1e-12)
  end)
end)

describe("linear algebra", function()
  local a = tide.tensor({{1, 2}, {3, 4}})

  it("follows torch.matmul for 1-D, 2-D and batched operands", function()
    close(a:matmul(a), {{7, 10}, {15, 22}})
    close(a:matmul(a.T), {{5, 11}, {11, 25}})
    close(tide.matmul(tide.tensor({1, 1}), a), {4, 6})
    close(tide.matmul(a, tide.tensor({1, 1})), {3, 7})
    close(tide.matmul(tide.tensor({1, 2}), tide.tensor({3, 4})), 11)
    assert.same({3, 2, 5}, tide.matmul(tide.ones(3, 2, 4), tide.ones(4, 5)).shape)
    assert.same({2, 3, 2, 5}, tide.matmul(tide.ones(2, 1, 2, 4), tide.ones(3, 4, 5)).shape)
  end)

  it("names the shapes that do not fit", function()
    fails("matmul: shapes 2x3 and 2x3 cannot be multiplied", tide.matmul, tide.ones(2, 3),
          tide.ones(2, 3))
    fails("mm: expected two 2%-D matrices, got shapes 3 and 3x3", tide.mm, tide.ones(3),
          tide.ones(3, 3))
    fails("matmul: expected tensors with at least 1 dim, got shapes 2x3 and scalar", tide.matmul,
          tide.ones(2, 3), 2)
  end)

  it("addmm reads alpha and beta from an options table", function()
    local c = tide.tensor({10, 20})
    close(tide.addmm(c, a, a), {{17, 30}, {25, 42}})
    close(c:addmm(a, a, {alpha = 2, beta = 0}), {{14, 20}, {30, 44}})
    fails("addmm: unknown option 'alfa' %(expected alpha, beta%)", tide.addmm, c, a, a, {alfa = 2})
    fails("addmm: alpha must be a number, got string", tide.addmm, c, a, a, {alpha = "x"})
  end)

  it("gives gradients of both operands, reducing broadcast batches", function()
    local x = tide.ones(3, 2, 4, {requires_grad = true})
    local w = tide.tensor({{1}, {2}, {3}, {4}}, {requires_grad = true})
    tide.matmul(x, w):sum():backward()
    close(w.grad, {{6}, {6}, {6}, {6}})
    close(x.grad[1], {{1, 2, 3, 4}, {1, 2, 3, 4}})
  end)
end)
