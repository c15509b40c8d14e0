-- tests/lua/index_spec.lua: t[i], t[{...}], masks and index tensors as keys, assignment, and
-- index/gather/scatter/masked_select/cat/stack from Lua: values against plain Lua loops, misuse
-- errors naming the value and the valid range, and gradients. ops_spec.lua compares with PyTorch.
local tide = require "tide"
local H = require "helpers"

local range = require("helpers").range -- n x m float64 holding 1..n*m

local long = H.long
local err = H.errmsg

describe("t[key] reads", function()
  local t = range(3, 4)
  it("select along dim 1: a number for 1-D, a view otherwise", function()
    local v = tide.tensor({10, 20, 30})
    assert.equal(20, v[2])
    assert.equal(30, v[-1])
    assert.is_true(math.type(long({7, 8})[2]) == "integer")
    local row = t[2]
    assert.same({5, 6, 7, 8}, row:totable())
    row[1] = -1
    assert.equal(-1, t[2][1])
    row[1] = 5
    assert.same({9, 10, 11, 12}, t[-1]:totable())
  end)

  it("slice per dim with {}, numbers, ranges and steps", function()
    assert.same({{2, 3}, {6, 7}, {10, 11}}, t[{{}, {2, 3}}]:totable())
    assert.same({7, 11}, t[{{2, 3}, 3}]:totable())
    assert.same({{5, 6, 7, 8}}, t[{{2}}]:totable())
    assert.same({{1, 3}, {9, 11}}, t[{{1, 3, 2}, {1, -1, 2}}]:totable())
    assert.same({{11, 12}}, t[{{-1, -1}, {-2, 4}}]:totable())
    assert.same({2, 6, 10}, t[{{}, 2}]:totable())
    assert.same({0, 4}, t[{{3, 2}}].shape) -- an empty range
    assert.equal(7, t[{2, 3}])
    assert.equal(12, t[{-1, -1}])
    assert.same(t:totable(), t[{}]:totable())
  end)

  it("take bool masks and int64 positions", function()
    assert.same({9, 10, 11, 12}, t[t:gt(8)]:totable())
    assert.same({{9, 10, 11, 12}, {1, 2, 3, 4}}, t[long({3, 1})]:totable())
  end)

  local cases = {
    {"index: index 0 out of range for dim 1 of size 3 %(expected 1..3 or %-3..%-1%)",
     function() return t[0] end},
    {"index: index 4 out of range for dim 1 of size 3", function() return t[4] end},
    {"index: index %-4 out of range for dim 1 of size 3", function() return t[-4] end},
    {"index: index 5 out of range for dim 2 of size 4", function() return t[{1, 5}] end},
    {"index: range {2, 5} out of range for dim 2 of size 4", function() return t[{{}, {2, 5}}] end},
    {"index: range {0, 2} out of range for dim 1", function() return t[{{0, 2}}] end},
    {"index: range step must be positive, got 0", function() return t[{{1, 3, 0}}] end},
    {"index: 3 key entries for a 2%-D tensor", function() return t[{1, 1, 1}] end},
    {"index: key entry 1 must be a number or a range table, got string",
     function() return t[{"a"}] end},
    {"index: positions must be integers, got 1.5", function() return t[1.5] end},
    {"index: a 0%-D tensor cannot be indexed %(use item%(%)%)",
     function() return tide.tensor(3)[1] end},
    {"index: a key must be a number, a table of slices or a tensor, got boolean",
     function() return t[true] end},
    {"index: a tensor key must be a bool mask or int64 positions, got float32",
     function() return t[tide.ones(3)] end},
    {"index: index 4 out of range for dim 1 of size 3", function() return t[long({4})] end},
    {"masked_select: shapes 3x4 and 2 cannot be broadcast",
     function() return t[tide.tensor({true, false}, {dtype = "bool"})] end},
  }
  for _, c in ipairs(cases) do
    it("raises '" .. c[1] .. "'", function() assert.matches(c[1], err(c[2])) end)
  end
end)

describe("t[key] = v", function()
  it("writes numbers and broadcast tensors in place", function()
    local t = tide.zeros(3, 4)
    t[2] = 1
    t[{{}, 4}] = tide.tensor({7, 8, 9})
    t[{3, {1, 2}}] = tide.tensor({5, 6})
    t[{1, 1}] = -1
    assert.same({{-1, 0, 0, 7}, {1, 1, 1, 8}, {5, 6, 0, 9}}, t:totable())
    local v = tide.zeros(4, {dtype = "int64"})
    v[2] = (1 << 53) + 1 -- integers stay exact
    v[{{3, 4}}] = 2
    assert.same({0, (1 << 53) + 1, 2, 2}, v:totable())
    local row = t[1] -- through a view
    row[{{}}] = tide.tensor({{1, 2, 3, 4}})[1]
    assert.same({1, 2, 3, 4}, t[1]:totable())
  end)

  it("writes through bool masks", function()
    local t = range(2, 3)
    t[t:gt(4)] = 0
    assert.same({{1, 2, 3}, {4, 0, 0}}, t:totable())
    t[t:eq(0)] = tide.tensor({-5, -6}, {dtype = "float64"})
    assert.same({{1, 2, 3}, {4, -5, -6}}, t:totable())
  end)

  it("copies an overlapping source first", function()
    local t = tide.tensor({1, 2, 3, 4, 5})
    t[{{2, 5}}] = t[{{1, 4}}]
    assert.same({1, 1, 2, 3, 4}, t:totable())
  end)

  local t = tide.zeros(2, 3)
  local cases = {
    {"index assignment: value of shape 2 cannot be broadcast to the indexed shape 3",
     function() t[1] = tide.ones(2) end},
    {"index assignment: index 3 out of range for dim 1 of size 2", function() t[3] = 1 end},
    {"index assignment: the value must be a number or a tensor, got string",
     function() t[1] = "x" end},
    {"index assignment: a tensor key must be a bool mask, got int64",
     function() t[long({1})] = 1 end},
    {"index assignment: 4 positions are masked but the value has shape 3 %(expected one value, or " ..
     "4%)",
     function() t[tide.tensor({true, false, true}, {dtype = "bool"})] = tide.ones(3) end},
    {"index assignment: mask of shape 2 does not broadcast to the tensor's shape 2x3",
     function() t[tide.tensor({true, false}, {dtype = "bool"})] = 1 end},
    {"a leaf tensor that requires grad cannot be modified in place", function()
      local x = tide.ones(2, {requires_grad = true})
      x[1] = 5
    end},
  }
  for _, c in ipairs(cases) do
    it("raises '" .. c[1] .. "'", function() assert.matches(c[1], err(c[2])) end)
  end
end)

describe("indexing ops", function()
  local t = range(3, 4)
  it("index picks positions along a dim", function()
    local idx = long({4, 1, 4, -2})
    local out = t:index(2, idx)
    for i = 1, 3 do
      assert.same({t[i][4], t[i][1], t[i][4], t[i][3]}, out[i]:totable())
    end
    assert.same(t:t():index(1, idx):totable(), out:t():totable())
    assert.same({{9, 10, 11, 12}}, tide.index(t, 1, long({3})):totable())
  end)

  it("gather and scatter match loops", function()
    local idx = long({{2, 2}, {4, 1}, {3, 3}})
    local g = t:gather(2, idx)
    for i = 1, 3 do
      for j = 1, 2 do assert.equal(t[i][idx[i][j]], g[i][j]) end
    end
    local rows = long({{3, 1, 2, 1}})
    assert.same({{9, 2, 7, 4}}, t:gather(1, rows):totable())
    local z = tide.zeros(3, 4, {dtype = "float64"})
    local s = z:scatter(2, idx, g)
    assert.same({{0, 2, 0, 0}, {5, 0, 0, 8}, {0, 0, 11, 0}}, s:totable())
    assert.same({{0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}}, z:totable())
    z:scatter_(1, long({{3, 1}}), 9)
    assert.same({{0, 9, 0, 0}, {0, 0, 0, 0}, {9, 0, 0, 0}}, z:totable())
  end)

  it("masked_select broadcasts the mask", function()
    local mask = tide.tensor({{true}, {false}, {true}}, {dtype = "bool"})
    assert.same({1, 2, 3, 4, 9, 10, 11, 12}, t:masked_select(mask):totable())
  end)

  it("cat and stack join along a dim, promoting dtypes", function()
    local a, b = range(2, 2), long({{5}, {6}})
    local c = tide.cat({a, b}, 2)
    assert.equal("float64", c.dtype)
    assert.same({{1, 2, 5}, {3, 4, 6}}, c:totable())
    assert.same({{1, 2}, {3, 4}, {1, 3}, {2, 4}}, tide.cat({a, a:t()}):totable())
    assert.same({{1, 2}, {3, 4}, {1, 2}}, tide.cat({a, a[{{1}}]}, -2):totable())
    local s = tide.stack({a, a:t()}, 3)
    assert.same({2, 2, 2}, s.shape)
    assert.same({{1, 1}, {2, 3}}, s[1]:totable())
    assert.same({{1, 2}, {3, 4}}, tide.stack({a[1], a[2]}):totable())
  end)

  local cases = {
    {"index: index 5 out of range for dim 2 of size 4 %(expected 1..4 or %-4..%-1%)",
     function() return t:index(2, long({1, 5})) end},
    {"index: index 0 out of range", function() return t:index(1, long({0})) end},
    {"index: indices must be an int64 tensor, got float32",
     function() return t:index(1, tide.ones(1)) end},
    {"index: indices must be 1%-D, got shape 1x1", function() return t:index(1, long({{1}})) end},
    {"index: dim 3 out of range for a 2%-D tensor", function() return t:index(3, long({1})) end},
    {"gather: index %-5 out of range for dim 2 of size 4",
     function() return t:gather(2, long({{-5}})) end},
    {"gather: index of shape 2 needs as many dims as the tensor's shape 3x4",
     function() return t:gather(2, long({1, 1})) end},
    {"scatter: index 4 out of range for dim 1 of size 3",
     function() return t:scatter(1, long({{4}}), 0) end},
    {"scatter: source of shape 1x1 is smaller than the index's shape 1x2",
     function() return t:scatter(2, long({{1, 2}}), tide.ones(1, 1)) end},
    {"masked_select: mask must be a bool tensor, got float32",
     function() return t:masked_select(tide.ones(3, 4)) end},
    {"cat: tensor 2 has shape 2x3 but tensor 1 has shape 3x4 %(all dims except dim 1 must match%)",
     function() return tide.cat({t, tide.zeros(2, 3)}) end},
    {"cat: tensor 2 has shape 4 but tensor 1 has shape 3x4",
     function() return tide.cat({t, tide.zeros(4)}) end},
    {"cat: 0%-D tensors cannot be concatenated", function() return tide.cat({tide.tensor(1)}) end},
    {"cat: expected a non%-empty list of tensors", function() return tide.cat({}) end},
    {"cat: element 2 of the list is a number, expected a tensor",
     function() return tide.cat({t, 1}) end},
    {"stack: tensor 2 has shape 4x3 but tensor 1 has shape 3x4 %(all shapes must be equal%)",
     function() return tide.stack({t, t:t()}) end},
    {"stack: dim 4 out of range", function() return tide.stack({t, t}, 4) end},
  }
  for _, c in ipairs(cases) do
    it("raises '" .. c[1] .. "'", function() assert.matches(c[1], err(c[2])) end)
  end
end)

describe("gradients through indexing", function()
  it("flow to the value of an assignment and around the overwritten part", function()
    local h = tide.tensor({1, 2}, {requires_grad = true})
    local x = tide.tensor({{1, 1}, {1, 1}, {1, 1}}, {requires_grad = true})
    local out = x * 1
    out[2] = h * 3
    assert.equal("AssignBackward", out.grad_fn)
    local w = range(3, 2)
    ;(out * w):sum():backward()
    assert.same({9, 12}, h.grad:totable()) -- 3 * w[2]
    assert.same({{1, 2}, {0, 0}, {5, 6}}, x.grad:totable())
  end)

  it("flow through masks, index, gather, scatter, cat and stack", function()
    local x = tide.tensor({1, -2, 3, -4}, {requires_grad = true})
    x[x:gt(0)]:sum():backward()
    assert.same({1, 0, 1, 0}, x.grad:totable())
    x.grad = nil
    x:index(1, long({2, 2, 4})):sum():backward()
    assert.same({0, 2, 0, 1}, x.grad:totable())
    x.grad = nil
    x:gather(1, long({1, 1, 1})):sum():backward()
    assert.same({3, 0, 0, 0}, x.grad:totable())
    local a = tide.tensor({1, 2}, {requires_grad = true})
    local b = tide.tensor({3}, {requires_grad = true})
    ;(tide.cat({a, b}) * tide.tensor({1, 2, 3})):sum():backward()
    assert.same({1, 2}, a.grad:totable())
    assert.same({3}, b.grad:totable())
    a.grad = nil
    ;(tide.stack({a, a}) * tide.tensor({{1, 2}, {3, 4}})):sum():backward()
    assert.same({4, 6}, a.grad:totable())
    local src = tide.tensor({{5, 6}}, {requires_grad = true})
    local base = tide.zeros(2, 2, {requires_grad = true})
    ;(base:scatter(1, long({{2, 1}}), src) * tide.tensor({{1, 2}, {3, 4}})):sum():backward()
    assert.same({{3, 2}}, src.grad:totable())
    assert.same({{1, 0}, {0, 4}}, base.grad:totable())
  end)

  it("give a 0-dim tensor in the graph when every dim is selected on a tracked tensor", function()
    local x = tide.tensor({{1, 2}, {3, 4}}, {requires_grad = true})
    local out = x * x
    local e = out[{2, 1}]                          -- PyTorch's saliency idiom
    assert.is_true(tide.is_tensor(e))
    assert.same({}, e.shape)
    assert.equal(9, e:item())
    e:backward()
    assert.same({{0, 0}, {6, 0}}, x.grad:totable())
    local v = tide.tensor({5, 6}, {requires_grad = true})
    assert.is_true(tide.is_tensor(v[2]))
    -- numbers where no gradient is involved: untracked tensors, detach(), no_grad, .grad
    assert.equal(9, out:detach()[{2, 1}])
    assert.equal(9, tide.no_grad(function() return out[{2, 1}] end))
    assert.equal(6, x.grad[{2, 1}])
    assert.equal("number", type(range(2, 2)[{2, 2}]))
  end)

  it("pass gradcheck", function()
    local function r(...) return tide.randn({...}, {dtype = "float64", requires_grad = true}) end
    local fns = {
      function(a) return a:index(2, long({3, 1, 3})) end,
      function(a) return a:gather(1, long({{2, 1, 1, 3}})) end,
      function(a) return a:scatter(2, long({{4}, {1}, {2}}), 0.5) end,
      function(a) return a:masked_select(a:gt(0)) end,
      function(a, b) return tide.cat({a, b}, 2) end,
      function(a, b) return tide.stack({a, b:narrow(2, 1, 4)}, 2) end,
      function(a) return a[{{2, 3}, {1, 4, 3}}] end,
      function(a, b)
        local c = a * 1
        c[{{}, 2}] = b[{{}, 5}]
        return c
      end,
    }
    for k, fn in ipairs(fns) do
      local ok, report = tide.autograd.gradcheck(fn, {r(3, 4), r(3, 5)})
      assert.is_true(ok, "function " .. k .. ": " .. tostring(report))
    end
  end)
end)
