-- tests/lua/tensor_spec.lua: creation and properties (doc/tensor.md, "Creation" and "Properties").
local tide = require "tide"

describe("tide.tensor", function()
  it("takes its shape from nested tables", function()
    local t = tide.tensor({{1, 2, 3}, {4, 5, 6}})
    assert.same({2, 3}, t.shape)
    assert.equal("float32", t.dtype)
    assert.equal(2, t.ndim)
    assert.same({{1, 2, 3}, {4, 5, 6}}, t:totable())
  end)

  it("rejects ragged tables naming the depth", function()
    assert.has_error(function() tide.tensor({{1, 2}, {3}}) end)
    local ok, err = pcall(tide.tensor, {{1, 2}, {3}})
    assert.is_false(ok)
    assert.matches("tensor: ragged nested table", err)
  end)

  it("keeps int64 values exact", function()
    local big = (1 << 53) + 1
    local t = tide.tensor({big}, {dtype = "int64"})
    assert.equal(big, t:totable()[1])
    assert.is_true(math.type(t:totable()[1]) == "integer")
  end)
end)
