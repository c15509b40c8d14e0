-- tests/lua/views_spec.lua: views and shape ops from Lua (doc/tensor.md, "Views and shape"): shared
-- storage, strides, values against plain Lua loops, misuse errors, split/chunk, and gradients
-- through views. ops_spec.lua compares the same ops with PyTorch.
local tide = require "tide"
local H = require "helpers"

local range = require("helpers").range -- n x m float64 holding 1..n*m

local err = H.errmsg

describe("views", function()
  it("share storage with their base, both ways", function()
    local t = range(3, 4)
    local views = {t:view(12), t:view(2, -1), t:reshape(4, 3), t:t(), t:transpose(1, 2),
                   t:permute(2, 1), t:narrow(2, 2, 2), t:select(1, 2), t:unsqueeze(1),
                   t:flatten(), t:contiguous(), t:to("float64"), t[2], t[{{}, {2, 3}}]}
    for k, v in ipairs(views) do
      v:fill_(-k)
      local hit = false
      for _, row in ipairs(t:totable()) do
        for _, x in ipairs(row) do hit = hit or x == -k end
      end
      assert.is_true(hit, "view " .. k .. " did not write through to its base")
    end
    t:fill_(7)
    assert.equal(7, views[1][12])
    assert.equal(7, views[4][4][3])
  end)

  it("have the strides PyTorch gives", function()
    local t = range(2, 3)
    assert.same({1, 3}, t:t():stride())
    assert.same({3, 3, 1}, t:unsqueeze(2):stride())
    assert.same({1, 3}, t:permute(2, 1):stride())
    assert.same({0, 3, 1}, t:expand(5, 2, 3):stride())
    assert.same({3, 1}, t:narrow(2, 2, 2):stride())
    assert.is_false(t:t():is_contiguous())
  end)

  it("move values like index arithmetic says", function()
    local t = range(3, 4)
    local p = t:view(3, 2, 2):permute(3, 1, 2) -- p[k][i][j] = t[i][(j-1)*2+k]
    for i = 1, 3 do
      for j = 1, 2 do
        for k = 1, 2 do assert.equal(t[i][(j - 1) * 2 + k], p[k][i][j]) end
      end
    end
    local n = t:narrow(2, -2, 2)
    assert.same({{3, 4}, {7, 8}, {11, 12}}, n:totable())
    assert.same({2, 6, 10}, t:select(2, 2):totable())
    assert.same({4, 8, 12}, t:select(-1, -1):totable())
    local r = t:t():reshape(-1) -- a copy: column by column
    assert.same({1, 5, 9, 2, 6, 10, 3, 7, 11, 4, 8, 12}, r:totable())
    r[1] = 100
    assert.equal(1, t[1][1])
    assert.same({3, 4}, t:view(1, 3, 1, 4):squeeze().shape)
    assert.same({1, 3, 4}, t:view(1, 3, 1, 4):squeeze(3).shape)
    assert.same({3, 4, 1}, t:unsqueeze(3).shape)
    assert.same({3, 4, 1}, t:unsqueeze(-1).shape)
    assert.same({12}, t:flatten().shape)
    assert.same({2, 12}, tide.zeros(2, 3, 4):flatten(2).shape)
    assert.same({6, 4}, tide.zeros(2, 3, 4):flatten(1, 2).shape)
    local e = tide.tensor({{1}, {2}}):expand(2, 2, 3)
    assert.same({{{1, 1, 1}, {2, 2, 2}}, {{1, 1, 1}, {2, 2, 2}}}, e:totable())
    assert.same({2, 3}, tide.tensor({{1}, {2}}):expand(-1, 3).shape)
  end)

  it("t() and .T transpose 2-D tensors", function()
    local t = range(2, 3)
    assert.same({{1, 4}, {2, 5}, {3, 6}}, t.T:totable())
    assert.same(t:t():totable(), tide.t(t):totable())
    assert.same({1, 2}, tide.tensor({1, 2}):t():totable())
    assert.matches("t: expected a tensor of at most 2 dims, got shape 2x3x4",
                   err(function() return tide.zeros(2, 3, 4):t() end))
  end)

  it("contiguous, clone and to copy only when they must", function()
    local t = range(2, 2)
    local c = t:contiguous()
    c[1][1] = 50
    assert.equal(50, t[1][1]) -- already contiguous: a view
    local ct = t:t():contiguous()
    assert.is_true(ct:is_contiguous())
    ct[1][2] = -1
    assert.equal(3, t[2][1]) -- a copy
    local k = t:clone()
    k:zero_()
    assert.equal(50, t[1][1])
    local i = tide.tensor({2.9, -2.9, 0.5}):to("int64")
    assert.equal("int64", i.dtype)
    assert.same({2, -2, 0}, i:totable())
    assert.is_true(math.type(i[1]) == "integer")
    assert.same({true, false}, tide.tensor({3, 0}):to("bool"):totable())
    assert.equal("float64", t:float():double().dtype)
    assert.matches("to: unknown dtype", err(function() return t:to("float16") end))
  end)
end)

describe("view misuse", function()
  local t = range(3, 4)
  local cases = {
    {"cannot be viewed as 12 without a copy", function() return t:t():view(12) end},
    {"view: only one size can be %-1", function() return t:view(-1, -1) end},
    {"view: shape 5x%-1 is invalid for a tensor of 12 elements %(shape 3x4%)",
     function() return t:view(5, -1) end},
    {"reshape: shape 5 is invalid for a tensor of 12 elements", function() return t:reshape(5) end},
    {"transpose: dim 3 out of range for a 2%-D tensor", function() return t:transpose(1, 3) end},
    {"permute: dim 2 appears twice", function() return t:permute(2, 2) end},
    {"permute: got 1 dims for a tensor of shape 3x4", function() return t:permute(1) end},
    {"permute: dim 0 out of range", function() return t:permute(0, 1) end},
    {"narrow: start 0 out of range for dim 2 of size 4", function() return t:narrow(2, 0, 1) end},
    {"narrow: start 6 out of range for dim 2 of size 4", function() return t:narrow(2, 6, 1) end},
    {"narrow: length 3 from start 3 %(step 1%) goes past the end of dim 2 of shape 3x4",
     function() return t:narrow(2, 3, 3) end},
    {"select: index 4 out of range %(expected 1..3 or %-3..%-1%)",
     function() return t:select(1, 4) end},
    {"select: index 0 out of range", function() return t:select(1, 0) end},
    {"select: index %-4 out of range", function() return t:select(1, -4) end},
    {"unsqueeze: dim 4 out of range for a 2%-D tensor %(expected 1..3 or %-3..%-1%)",
     function() return t:unsqueeze(4) end},
    {"squeeze: dim 3 out of range", function() return t:squeeze(3) end},
    {"expand: cannot expand shape 3x4 to 3x5 %(dim 2 has size 4, only size%-1 dims can grow%)",
     function() return t:expand(3, 5) end},
    {"expand: shape 4 has fewer dims than the tensor's shape 3x4",
     function() return t:expand(4) end},
    {"flatten: start dim 2 comes after end dim 1", function() return t:flatten(2, 1) end},
    {"view: sizes must be integers", function() return t:view(2.5, 2) end},
  }
  for _, c in ipairs(cases) do
    it("raises '" .. c[1] .. "'", function() assert.matches(c[1], err(c[2])) end)
  end
end)

describe("split and chunk", function()
  local t = range(5, 2)
  it("return lists of narrow views", function()
    local parts = t:split(2)
    assert.equal(3, #parts)
    assert.same({{1, 2}, {3, 4}}, parts[1]:totable())
    assert.same({{9, 10}}, parts[3]:totable())
    parts[2][1][1] = -5
    assert.equal(-5, t[3][1])
    local cols = tide.split(t, 1, 2)
    assert.equal(2, #cols)
    assert.same({2, 4, 6, 8, 10}, cols[2]:view(-1):totable())
    local sized = t:split({1, 4})
    assert.same({1, 2}, sized[1].shape)
    assert.same({4, 2}, sized[2].shape)
    local halves = t:chunk(2)
    assert.same({{3, 2}, {2, 2}}, {halves[1].shape, halves[2].shape})
    local ch = tide.chunk(t, 3, 1)
    assert.equal(3, #ch)
    assert.same({2, 2, 1}, {ch[1]:size(1), ch[2]:size(1), ch[3]:size(1)})
    assert.equal(2, #tide.ones(4):chunk(3)) -- ceil(4/3) = 2 per chunk: only 2 chunks
    assert.equal(1, #tide.zeros(0):split(3))
  end)
  it("reject bad sizes and dims", function()
    assert.matches("split: size must be a positive integer", err(t.split, t, 0))
    assert.matches("split: sizes add up to 4 but dim 1 has size 5", err(t.split, t, {1, 3}))
    assert.matches("split: dim 3 out of range for a 2%-D tensor", err(t.split, t, 1, 3))
    assert.matches("chunk: the number of chunks must be a positive integer", err(t.chunk, t, 0))
    assert.matches("chunk: dim %-3 out of range", err(t.chunk, t, 2, -3))
  end)
end)

describe("gradients through views", function()
  it("reach the base through chains of views", function()
    local x = range(2, 3)
    x.requires_grad = true
    local w = tide.tensor({{1, 2}, {3, 4}, {5, 6}}, {dtype = "float64"})
    local y = x:t():contiguous():reshape(3, 2) -- y[i][j] = x[j][i]
    ;(y * w):sum():backward()
    assert.same({{1, 3, 5}, {2, 4, 6}}, x.grad:totable())
  end)

  it("put zeros outside narrow, select and index reads", function()
    local x = range(3, 3)
    x.requires_grad = true
    local y = x:narrow(1, 2, 2):select(2, 3) -- x[2][3] and x[3][3]
    y:sum():backward()
    assert.same({{0, 0, 0}, {0, 0, 1}, {0, 0, 1}}, x.grad:totable())
    x.grad = nil
    x[{{1, 2}, 1}]:sum():backward()
    assert.same({{1, 0, 0}, {1, 0, 0}, {0, 0, 0}}, x.grad:totable())
  end)

  it("sum over expanded dims and come back in the input's dtype", function()
    local x = tide.tensor({{1}, {2}}, {requires_grad = true})
    x:expand(4, 2, 3):sum():backward()
    assert.same({{12}, {12}}, x.grad:totable())
    local f = tide.tensor({1, 2}, {requires_grad = true})
    local d = f:to("float64")
    assert.equal("ToBackward", d.grad_fn)
    ;(d * d):sum():backward()
    assert.equal("float32", f.grad.dtype)
    assert.same({2, 4}, f.grad:totable())
  end)

  it("pass gradcheck for each view op", function()
    local function r(...) return tide.randn({...}, {dtype = "float64", requires_grad = true}) end
    local fns = {
      function(a) return a:view(4, 3) end, function(a) return a:reshape(-1) end,
      function(a) return a:t() end, function(a) return a:permute(2, 1) end,
      function(a) return a:narrow(2, 2, 2) end, function(a) return a:select(1, -1) end,
      function(a) return a:unsqueeze(2):squeeze(2) end, function(a) return a:flatten() end,
      function(a) return a:unsqueeze(1):expand(2, 3, 4) end, function(a) return a:clone() end,
      function(a) return a:split(2, 2)[2] end, function(a) return a:chunk(3)[3] end,
    }
    for k, fn in ipairs(fns) do
      local ok, report = tide.autograd.gradcheck(fn, {r(3, 4)})
      assert.is_true(ok, "function " .. k .. ": " .. tostring(report))
    end
  end)
end)
