-- tests/lua/small_spec.lua: small tensors (vm/small.c). Elementwise results of at most 64 bytes
-- that need no gradient live inside their box until something other than an elementwise op
-- reads them; then they become regular tensors. Nothing of this may be visible but speed:
-- every test here does to a small result what users do to any tensor.
local tide = require "tide"

-- small boxes carry a metatable of their own (getmetatable hides it; debug.getmetatable not)
local function is_small(t) return debug.getmetatable(t) ~= debug.getmetatable(tide.zeros(100)) end

local function same(t, want)
  local got = t:totable()
  assert.are.same(want, got)
end

describe("small tensors", function()
  it("are what elementwise ops on small operands give, and only those", function()
    local a, b = tide.tensor({1, 2, 3, 4}), tide.tensor({10, 20, 30, 40})
    assert.is_true(is_small(a + b))
    assert.is_true(is_small(-a))
    assert.is_true(is_small(tide.ones(16) * tide.ones(16)))           -- 64 bytes
    assert.is_false(is_small(tide.ones(17) * tide.ones(17)))          -- 68
    local d8, d9 = tide.ones(8, {dtype = "float64"}), tide.ones(9, {dtype = "float64"})
    assert.is_true(is_small(d8 + d8))
    assert.is_false(is_small(d9 + d9))
    assert.is_true(is_small(a + 1))                                    -- a number operand
    assert.is_true(is_small(2 * a))
    assert.is_false(is_small(a + tide.ones(1)))                        -- broadcasting
    local w = tide.ones(4, {requires_grad = true})
    assert.is_false(is_small(w + a))                                   -- needs a gradient
    assert.is_false(is_small(tide.ones(2, 3):t() + tide.ones(3, 2)))   -- not contiguous
  end)

  it("hold the right values, dtype and shape through chains of ops", function()
    local a, b = tide.tensor({{1, 2}, {3, 4}}), tide.tensor({{4, 8}, {16, 32}})
    local c = (a + b) * (a - b) / b
    assert.is_true(is_small(c))
    same(c, {{-3.75, -7.5}, {-15.4375, -31.5}})
    assert.are.equal("float32", c.dtype)
    assert.are.same({2, 2}, c.shape)
    local i = tide.tensor({7, -3}, {dtype = "int64"})
    local j = i * i + i
    same(j, {56, 6})
    assert.are.equal("int64", j.dtype)
  end)

  it("take Lua numbers as PyTorch takes Python scalars", function()
    local a = tide.tensor({1, 2, 3, 4})
    same(a * 2 + 1, {3, 5, 7, 9})
    same(1 - a, {0, -1, -2, -3})
    same(2 ^ a, {2, 4, 8, 16})
    same(a / 0, {math.huge, math.huge, math.huge, math.huge})
    local d = tide.tensor({0.5, 1.5}, {dtype = "float64"})
    assert.are.equal("float64", (d * 3).dtype)
    same(d * 3, {1.5, 4.5})
    local i = tide.tensor({7, -3}, {dtype = "int64"})
    assert.is_true(is_small(i * 2))
    same(i * 2, {14, -6})
    assert.are.equal("int64", (i * 2).dtype)
    same(i // 2, {3, -2})
    local f = i * 2.5                                  -- an int tensor times a fraction: float32
    assert.is_false(is_small(f))
    assert.are.equal("float32", f.dtype)
    same(f, {17.5, -7.5})
    same(i * 2.0, {14, -6})                            -- an integral float keeps int64
    assert.are.equal("int64", (i * 2.0).dtype)
    local u = tide.tensor({1, 2}, {dtype = "uint8"})
    assert.is_false(is_small(u + 1))
    same(u + 1, {2, 3})
  end)

  it("read like any tensor: item, indexing, tostring, len, size, is_tensor", function()
    local c = tide.tensor({1.5}) + tide.tensor({2})
    assert.are.equal(3.5, c:item())
    local d = tide.tensor({1, 2, 3}) + tide.tensor({1, 1, 1})
    assert.are.equal(3, d[2])
    assert.are.equal(3, #d)
    assert.are.same({3}, d:size())
    assert.is_true(tide.is_tensor(d))
    assert.are.equal(getmetatable(tide.zeros(1)), getmetatable(d))
    assert.truthy(tostring(tide.tensor({1, 2}) + tide.tensor({1, 2})):find("[float32 tensor 2]", 1, true))
  end)

  it("become regular tensors when a view of them is taken, sharing memory from then on", function()
    local c = tide.tensor({1, 2, 3, 4}) + tide.tensor({0, 0, 0, 0})
    assert.is_true(is_small(c))
    local v = c:view(2, 2)
    assert.is_false(is_small(c))
    v[1][2] = 100
    assert.are.equal(100, c[2])
    c:mul_(2)
    same(v, {{2, 200}, {6, 8}})
  end)

  it("can be written in place and by index", function()
    local c = tide.tensor({1, 2, 3}) * tide.tensor({2, 2, 2})
    c:add_(1)
    same(c, {3, 5, 7})
    local d = tide.tensor({1, 2}) - tide.tensor({1, 1})
    d[1] = 42
    same(d, {42, 1})
  end)

  it("join autograd once they ask for a gradient", function()
    local c = tide.tensor({1, 2, 3}) + tide.tensor({1, 1, 1})
    c:requires_grad_()
    local y = (c * c):sum()
    y:backward()
    same(c.grad, {4, 6, 8})
  end)

  it("are saved, loaded and converted like others", function()
    local path = os.tmpname()
    local c = tide.tensor({1, 2}) + tide.tensor({3, 4})
    tide.save(path, {c = c})
    same(tide.load(path).c, {4, 6})
    os.remove(path)
    same(c:double(), {4, 6})
  end)

  it("close: later use is an error naming the closed tensor", function()
    local c = tide.tensor({1, 2}) + tide.tensor({3, 4})
    c:close()
    c:close() -- idempotent
    for _, f in ipairs({function() return c + c end, function() return c + tide.ones(2) end,
                        function() return tide.ones(2) + c end, function() return c:exp() end}) do
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("closed"), err)
    end
    assert.are.equal("[closed tensor]", tostring(c))
    do
      local d <close> = tide.tensor({1}) + tide.tensor({1})
      assert.are.equal(2, d:item())
    end
  end)

  it("mismatched operands still fail with the op's own message", function()
    local ok, err = pcall(function() return tide.ones(3) + tide.ones(4) end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("add"), err)
    ok, err = pcall(function() return tide.tensor({1}) + "x" end)
    assert.is_false(ok)
  end)

  it("are collected like strings: a million of them leave no growth", function()
    local a, b = tide.rand(4), tide.rand(4)
    collectgarbage()
    local before = collectgarbage("count")
    local c
    for _ = 1, 1000000 do c = a + b end
    collectgarbage()
    assert.is_true(collectgarbage("count") - before < 256, "Lua heap grew")
    same(c, (a + b):totable())
  end)
end)
