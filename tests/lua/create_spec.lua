-- tests/lua/create_spec.lua: the constructors (doc/tensor.md, "Creation") and the random
-- generator seen from Lua. Reference numbers come from PyTorch 1.13 (linspace) and from
-- Random123's Philox4x32-10 known answer (counter 0, key 0).
local tide = require "tide"
local H = require "helpers"

local raises = H.err

local function near(expected, got, tol)
  assert.equal(#expected, #got)
  for i = 1, #expected do
    assert.is_true(math.abs(expected[i] - got[i]) <= tol,
      ("element %d: expected %.9g, got %.9g"):format(i, expected[i], got[i]))
  end
end

describe("tide.tensor", function()
  it("makes float32 from numbers and a 0-dim tensor from one number", function()
    local t = tide.tensor{{{1, 2}, {3, 4}}, {{5, 6}, {7, 8}}}
    assert.same({2, 2, 2}, t.shape)
    assert.equal("float32", t.dtype)
    assert.same({{{1, 2}, {3, 4}}, {{5, 6}, {7, 8}}}, t:totable())
    local s = tide.tensor(2.5)
    assert.equal(0, s.ndim)
    assert.same({}, s.shape)
    assert.equal(2.5, s:item())
    assert.same({0}, tide.tensor{}.shape)
  end)

  it("makes bool tensors from booleans", function()
    local b = tide.tensor{true, false, true}
    assert.equal("bool", b.dtype)
    assert.same({true, false, true}, b:totable())
    assert.equal("bool", tide.tensor(true).dtype)
    assert.same({1, 0}, tide.tensor({true, false}, {dtype = "int64"}):totable())
    assert.same({true, false}, tide.tensor({3, 0}, {dtype = "bool"}):totable())
  end)

  it("honours dtype and requires_grad", function()
    local t = tide.tensor({1.5, 2.5}, {dtype = "float64", requires_grad = true})
    assert.equal("float64", t.dtype)
    assert.is_true(t.requires_grad)
    assert.same({1, -2}, tide.tensor({1.9, -2.9}, {dtype = "int64"}):totable()) -- truncates
    assert.same({255, 255}, tide.tensor({255, -1}, {dtype = "uint8"}):totable()) -- PyTorch's
    raises("tensor: value 257 does not fit dtype uint8", tide.tensor, {255, 257}, {dtype = "uint8"})
    local big = (1 << 62) + 1
    assert.equal(big, tide.tensor({big}, {dtype = "int64"}):totable()[1])
  end)

  it("rejects bad input with the function and the value named", function()
    raises("tensor: ragged nested table", tide.tensor, {{1, 2}, {3}})
    raises("tensor: booleans and numbers mixed", tide.tensor, {1, true})
    raises("tensor: value nan does not fit dtype int64", tide.tensor, {0 / 0}, {dtype = "int64"})
    raises("tensor: value inf does not fit dtype uint8", tide.tensor, {1 / 0}, {dtype = "uint8"})
    raises("at this position, got string", tide.tensor, {"a"})
    raises("got a tensor (use tide.stack)", tide.tensor, {tide.zeros(2)})
    raises("tensor: got a tensor (use t:clone())", tide.tensor, tide.zeros(2))
    raises("got nil", tide.tensor, nil)
    raises("tensor: unknown option 'dtpye'", tide.tensor, {1}, {dtpye = "int64"})
    raises("tensor: unknown dtype 'float16'", tide.tensor, {1}, {dtype = "float16"})
    raises("only float tensors can require grad, got int64", tide.tensor, {1},
           {dtype = "int64", requires_grad = true})
  end)
end)

describe("zeros, ones, empty, full, eye", function()
  it("take sizes as numbers or one table, options last", function()
    assert.same({{0, 0, 0}, {0, 0, 0}}, tide.zeros(2, 3):totable())
    assert.same({{1, 1, 1}, {1, 1, 1}}, tide.ones({2, 3}):totable())
    local t = tide.ones(2, {dtype = "int64"})
    assert.equal("int64", t.dtype)
    assert.same({1, 1}, t:totable())
    assert.same({3, 1, 2}, tide.empty({3, 1, 2}, {dtype = "float64"}).shape)
    assert.equal(0, tide.zeros().ndim)
    assert.equal("int64", tide.zeros{dtype = "int64"}.dtype) -- a lone options table: 0-dim
    assert.same({2, 0}, tide.zeros(2, 0).shape)
    assert.is_true(tide.zeros(2, {requires_grad = true}).requires_grad)
  end)

  it("full fills with a number or a boolean", function()
    assert.same({{7, 7, 7}, {7, 7, 7}}, tide.full({2, 3}, 7):totable())
    assert.equal("float32", tide.full({2}, 7).dtype)
    local b = tide.full({2}, true)
    assert.equal("bool", b.dtype)
    assert.same({true, true}, b:totable())
    local big = (1 << 60) + 3
    assert.same({big, big}, tide.full({2}, big, {dtype = "int64"}):totable())
    assert.same({-1.5}, tide.full(1, -1.5, {dtype = "float64"}):totable())
  end)

  it("eye makes identities, square or not", function()
    assert.same({{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}, tide.eye(3):totable())
    assert.same({{1, 0, 0, 0}, {0, 1, 0, 0}}, tide.eye(2, 4, {dtype = "int64"}):totable())
    assert.same({{1, 0}, {0, 1}, {0, 0}}, tide.eye(3, 2):totable())
  end)

  it("reject bad shapes naming the function and the value", function()
    raises("zeros: negative size -3 in shape 2x-3", tide.zeros, 2, -3)
    raises("ones: sizes must be integers, got 2.5", tide.ones, 2.5)
    raises("zeros: sizes must be integers, got string", tide.zeros, 2, "x")
    raises("empty: shape 1048576x1048576x1048576 is too large", tide.empty,
           1 << 20, 1 << 20, 1 << 20)
    raises("zeros: at most 8 dims, got 9", tide.zeros, 1, 1, 1, 1, 1, 1, 1, 1, 1)
    raises("zeros: a shape table holds sizes only, got key dtype", tide.zeros, {2, dtype = "int64"})
    raises("zeros: unknown option 'pading'", tide.zeros, 2, {pading = 1})
    raises("full: value inf does not fit dtype int64", tide.full, {2}, 1 / 0, {dtype = "int64"})
    raises("full: the fill value must be a number, got string", tide.full, {2}, "x")
    raises("eye: negative size -1", tide.eye, -1)
  end)
end)

describe("arange and linspace", function()
  it("arange includes b when it lands on it, like a numeric for", function()
    assert.same({1, 2, 3, 4, 5}, tide.arange(5):totable())
    assert.same({2, 3, 4, 5}, tide.arange(2, 5):totable())
    assert.same({1, 4, 7, 10}, tide.arange(1, 10, 3):totable())
    assert.same({1, 4, 7}, tide.arange(1, 9, 3):totable())
    assert.same({10, 7, 4, 1}, tide.arange(10, 1, -3):totable())
    assert.same({0}, tide.arange(1, 0).shape) -- like `for i = 1, 0`: nothing
    assert.equal("float32", tide.arange(3).dtype)
    local l = tide.arange(1, 3, {dtype = "int64"})
    assert.equal("int64", l.dtype)
    assert.same({1, 2, 3}, l:totable())
    local big = (1 << 60)
    assert.same({big, big + 1}, tide.arange(big, big + 1, {dtype = "int64"}):totable())
  end)

  it("arange with a float step has no drift and ends on b", function()
    -- torch.arange(0, 1.0001, 0.1, dtype=float64)
    local want = {0.0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5, 0.6000000000000001,
                  0.7000000000000001, 0.8, 0.9, 1.0}
    assert.same(want, tide.arange(0, 1, 0.1, {dtype = "float64"}):totable())
    assert.same({0, 0.1, 0.2, 0.3}, tide.arange(0, 0.3, 0.1, {dtype = "float64"}):totable())
    near({0.5, 0.25, 0}, tide.arange(0.5, 0, -0.25):totable(), 0)
  end)

  it("linspace matches PyTorch bit for bit", function()
    assert.same({0.0, 0.16666666666666666, 0.3333333333333333, 0.5, 0.6666666666666667,
                 0.8333333333333334, 1.0}, tide.linspace(0, 1, 7, {dtype = "float64"}):totable())
    assert.same({0.0, 0.1666666716337204, 0.3333333432674408, 0.5, 0.6666666269302368,
                 0.8333333134651184, 1.0}, tide.linspace(0, 1, 7):totable())
    assert.same({-3.5, -0.75, 2.0, 4.75, 7.5, 10.25}, tide.linspace(-3.5, 10.25, 6):totable())
    assert.same({0, 3, 6, 10}, tide.linspace(0, 10, 4, {dtype = "int64"}):totable())
    assert.same({4}, tide.linspace(4, 9, 1):totable())
    assert.same({0}, tide.linspace(4, 9, 0).shape)
  end)

  it("reject bad arguments", function()
    raises("arange: expected finite start and end and a nonzero step", tide.arange, 0, 1, 0)
    raises("arange: end must be a number, got string", tide.arange, "a")
    raises("arange: expected (n), (a, b) or (a, b, step), got 4 arguments", tide.arange, 1, 2, 3, 4)
    raises("elements is too many", tide.arange, 0, 1e15)
    raises("arange: dtype bool is not supported", tide.arange, 3, {dtype = "bool"})
    raises("linspace: expected n >= 0 points, got -1", tide.linspace, 0, 1, -1)
    raises("linspace: the number of points must be an integer, got 2.5", tide.linspace, 0, 1, 2.5)
  end)
end)

-- Philox4x32-10 at counter 0, key 0 gives 6627e8d5 e169c58d bc57ac4c 9b00dbd8 (Random123);
-- a float32 uniform keeps the top 24 bits of a word.
local kat = {0x6627e8 / 2 ^ 24, 0xe169c5 / 2 ^ 24, 0xbc57ac / 2 ^ 24, 0x9b00db / 2 ^ 24}

describe("random constructors", function()
  it("rand draws the Philox known answer after manual_seed(0)", function()
    tide.manual_seed(0)
    near(kat, tide.rand(4):totable(), 0)
  end)

  it("randn is Box-Muller on the same words", function()
    tide.manual_seed(0)
    -- r = sqrt(-2 log(u1)), (r cos 2 pi u2, r sin 2 pi u2), u1 = (top24 + 1) / 2^24
    near({0.9911374751458971, -0.9246627803544332, -0.6176090549848544, -0.4820683472644963},
         tide.randn(4):totable(), 2e-6)
  end)

  it("repeats with the seed and continues without it", function()
    tide.manual_seed(123)
    local a, b = tide.randn(2, 3):totable(), tide.randn(2, 3):totable()
    tide.manual_seed(123)
    assert.same(a, tide.randn({2, 3}):totable())
    assert.same(b, tide.randn(2, 3):totable())
    assert.are_not.same(a, b)
  end)

  it("does not depend on the thread count", function()
    local n0 = tide.get_num_threads()
    local draws = {}
    for k, threads in ipairs{1, 2} do
      tide.set_num_threads(threads)
      tide.manual_seed(9)
      draws[k] = {tide.rand(100003):totable(), tide.randn(70001, {dtype = "float64"}):totable(),
                  tide.randint(-5, 5, 50000):totable()}
    end
    tide.set_num_threads(n0)
    for i = 1, 3 do
      assert.is_true(#draws[1][i] > 0)
      local same = true
      for j = 1, #draws[1][i] do same = same and draws[1][i][j] == draws[2][i][j] end
      assert.is_true(same, "draw " .. i .. " differs between 1 and 2 threads")
    end
  end)

  it("has the right moments", function()
    tide.manual_seed(5)
    local n = 200000
    local u, z = tide.rand(n, {dtype = "float64"}):totable(), tide.randn(n):totable()
    local su, su2, sz, sz2, lo, hi = 0, 0, 0, 0, 1, 0
    for i = 1, n do
      su, su2 = su + u[i], su2 + u[i] * u[i]
      sz, sz2 = sz + z[i], sz2 + z[i] * z[i]
      lo, hi = math.min(lo, u[i]), math.max(hi, u[i])
    end
    assert.is_true(lo >= 0 and hi < 1)
    assert.is_true(math.abs(su / n - 0.5) < 5 * math.sqrt(1 / 12 / n))
    assert.is_true(math.abs(su2 / n - (su / n) ^ 2 - 1 / 12) < 1e-3)
    assert.is_true(math.abs(sz / n) < 5 / math.sqrt(n))
    assert.is_true(math.abs(sz2 / n - 1) < 5 * math.sqrt(2 / n))
  end)

  it("randint is inclusive of both ends and int64", function()
    tide.manual_seed(6)
    local t = tide.randint(1, 6, {6000})
    assert.equal("int64", t.dtype)
    local count = {}
    for _, v in ipairs(t:totable()) do
      assert.is_true(math.type(v) == "integer" and v >= 1 and v <= 6)
      count[v] = (count[v] or 0) + 1
    end
    for v = 1, 6 do assert.is_true(math.abs(count[v] - 1000) < 150, v .. ": " .. count[v]) end
    assert.same({2, 3}, tide.randint(0, 1, 2, 3).shape)
    assert.equal("float32", tide.randint(0, 9, {2}, {dtype = "float32"}).dtype)
    assert.same({7, 7}, tide.randint(7, 7, 2):totable())
  end)

  it("randperm is a permutation of 1..n", function()
    tide.manual_seed(7)
    local p = tide.randperm(50)
    assert.equal("int64", p.dtype)
    local seen = {}
    for _, v in ipairs(p:totable()) do
      assert.is_nil(seen[v])
      seen[v] = true
    end
    for v = 1, 50 do assert.is_true(seen[v]) end
    assert.same({0}, tide.randperm(0).shape)
    tide.manual_seed(7)
    assert.same(p:totable(), tide.randperm(50):totable())
  end)

  it("reject bad arguments", function()
    raises("rand: dtype must be float32 or float64, got int64", tide.rand, 2, {dtype = "int64"})
    raises("randn: negative size -2", tide.randn, -2)
    raises("randint: empty range [5, 1]", tide.randint, 5, 1, 3)
    raises("randint: lo must be an integer, got 1.5", tide.randint, 1.5, 3, 2)
    raises("randint: range [0, 300] does not fit a uint8 tensor", tide.randint, 0, 300, 2,
           {dtype = "uint8"})
    raises("randperm: expected n >= 0, got -1", tide.randperm, -1)
    raises("randperm: n must be an integer, got 2.5", tide.randperm, 2.5)
  end)
end)

describe("the _like forms", function()
  it("keep shape and dtype unless told", function()
    local src = tide.zeros(2, 3, {dtype = "float64"})
    for _, name in ipairs{"zeros_like", "ones_like", "empty_like", "rand_like", "randn_like"} do
      local t = tide[name](src)
      assert.same({2, 3}, t.shape, name)
      assert.equal("float64", t.dtype, name)
    end
    assert.same({{1, 1, 1}, {1, 1, 1}}, tide.ones_like(src):totable())
    assert.same({{0, 0, 0}, {0, 0, 0}}, tide.zeros_like(tide.ones(2, 3)):totable())
    local f = tide.full_like(src, 4, {dtype = "int64"})
    assert.equal("int64", f.dtype)
    assert.same({{4, 4, 4}, {4, 4, 4}}, f:totable())
    assert.equal("bool", tide.zeros_like(src, {dtype = "bool"}).dtype)
    assert.is_true(tide.zeros_like(src, {requires_grad = true}).requires_grad)
    assert.is_false(tide.zeros_like(tide.ones(2, {requires_grad = true})).requires_grad)
  end)

  it("reject bad arguments", function()
    raises("rand_like: dtype must be float32 or float64, got int64", tide.rand_like,
           tide.zeros(2, {dtype = "int64"}))
    raises("tide.Tensor expected, got number", tide.zeros_like, 3)
    raises("full_like: value nan does not fit dtype int64", tide.full_like,
           tide.zeros(2, {dtype = "int64"}), 0 / 0)
  end)
end)

describe("in-place random fills and the generator state", function()
  it("uniform_, normal_ and bernoulli_ fill in place and return self", function()
    local t = tide.zeros(1000)
    assert.equal(t, t:uniform_(-2, -1))
    for _, v in ipairs(t:totable()) do assert.is_true(v >= -2 and v < -1) end
    tide.manual_seed(0)
    near({kat[1] * 4 - 2, kat[2] * 4 - 2}, tide.zeros(2):uniform_(-2, 2):totable(), 1e-6)
    local m = tide.zeros(20000):bernoulli_(0.25):totable()
    local ones = 0
    for _, v in ipairs(m) do
      assert.is_true(v == 0 or v == 1)
      ones = ones + v
    end
    assert.is_true(math.abs(ones / 20000 - 0.25) < 5 * math.sqrt(0.25 * 0.75 / 20000))
    local z = tide.zeros(10000, {dtype = "float64"}):normal_(3, 0.5):totable()
    local s = 0
    for _, v in ipairs(z) do s = s + v end
    assert.is_true(math.abs(s / 10000 - 3) < 5 * 0.5 / 100)
    local small = tide.zeros(2)
    raises("uniform: expected finite lo <= hi, got [1, 0)", small.uniform_, small, 1, 0)
    raises("normal: expected a finite mean and std >= 0", small.normal_, small, 0, -1)
    raises("bernoulli: expected p in [0, 1], got 2", function() tide.zeros(2):bernoulli_(2) end)
    raises("uniform: expected a float32 or float64 tensor, got int64",
           function() tide.zeros(2, {dtype = "int64"}):uniform_() end)
  end)

  it("get_rng_state / set_rng_state replay the stream", function()
    tide.manual_seed(42)
    tide.rand(5)
    local st = tide.get_rng_state()
    assert.equal(42, st.seed)
    local a = tide.randn(10):totable()
    tide.set_rng_state(st)
    assert.same(a, tide.randn(10):totable())
    raises("set_rng_state: offset must be an integer, got nil", tide.set_rng_state, {seed = 1})
  end)
end)
