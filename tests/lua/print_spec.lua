-- tests/lua/print_spec.lua: tostring(t) and tide.set_printoptions (doc/tensor.md, "Printing"). The
-- bodies marked "PyTorch" are torch 1.13's repr with "tensor(" and its 7-column indent removed
-- (linewidth 87 there = 80 here); tide differs on purpose only where noted.
local tide = require "tide"
local H = require "helpers"

-- a nested Lua table of f(i) for i = 1..rows*cols, row-major
local function grid(rows, cols, f)
  local t = {}
  for r = 1, rows do
    t[r] = {}
    for c = 1, cols do t[r][c] = f((r - 1) * cols + c) end
  end
  return t
end

local raises = H.err

describe("tostring(t)", function()
  after_each(function() tide.set_printoptions{profile = "default"} end)

  it("aligns a float matrix with 4 decimals (PyTorch)", function()
    assert.equal("[[ 1.5000, -2.0000,  3.0000],\n [ 4.0000,  5.0000,  6.2500]]\n" ..
                 "[float32 tensor 2x3]", tostring(tide.tensor{{1.5, -2, 3}, {4, 5, 6.25}}))
  end)

  it("prints integers without decimals, integral floats too", function()
    assert.equal("[1, 2, 3]\n[float32 tensor 3]", tostring(tide.tensor{1, 2, 3}))
    assert.equal("[ -5,  10, 200]\n[int64 tensor 3]",
                 tostring(tide.tensor({-5, 10, 200}, {dtype = "int64"})))
    assert.equal("[  7, 255]\n[uint8 tensor 2]", tostring(tide.tensor({7, 255}, {dtype = "uint8"})))
    assert.equal("[1.0000, 2.5000]\n[float32 tensor 2]", tostring(tide.tensor{1, 2.5}))
    -- PyTorch switches integral floats to 1.0000e+00 when max/min > 1e3; tide keeps integers
    assert.equal("[   1, 5000]\n[float32 tensor 2]", tostring(tide.tensor{1, 5000}))
    assert.equal("[1.0000e+09, 1.0000e+00]\n[float32 tensor 2]", tostring(tide.tensor{1e9, 1}))
    local big = (1 << 53) + 1
    assert.equal("[9007199254740993]\n[int64 tensor 1]",
                 tostring(tide.tensor({big}, {dtype = "int64"})))
  end)

  it("prints scalars, booleans and empty tensors", function()
    assert.equal("3.5000\n[float32 tensor scalar]", tostring(tide.tensor(3.5)))
    assert.equal("-7\n[int64 tensor scalar]", tostring(tide.tensor(-7, {dtype = "int64"})))
    assert.equal("[ true, false]\n[bool tensor 2]", tostring(tide.tensor{true, false}))
    assert.equal("[[true, true]]\n[bool tensor 1x2]", tostring(tide.ones(1, 2, {dtype = "bool"})))
    assert.equal("[]\n[float32 tensor 2x0]", tostring(tide.zeros(2, 0)))
    assert.equal("[]\n[int64 tensor 0]", tostring(tide.zeros(0, {dtype = "int64"})))
    assert.equal("[[0, 0]]\n[float32 tensor 1x2]", tostring(tide.zeros(1, 2)))
  end)

  it("switches to scientific notation by PyTorch's rule", function()
    assert.equal("[1.0000e-05, 1.0000e+00, 1.0000e+02]\n[float32 tensor 3]",
                 tostring(tide.tensor{1e-5, 1, 100}))
    assert.equal("[1.0000e+00, 2.0000e+03, 5.0000e-01]\n[float64 tensor 3]",
                 tostring(tide.tensor({1, 2000, 0.5}, {dtype = "float64"})))
    assert.equal("[-1.0000e-06,  0.0000e+00]\n[float32 tensor 2]", tostring(tide.tensor{-1e-6, 0}))
  end)

  it("shows nan and inf in the common width", function()
    assert.equal("[   nan,    inf,   -inf, 1.5000]\n[float32 tensor 4]",
                 tostring(tide.tensor{0 / 0, 1 / 0, -1 / 0, 1.5}))
    assert.equal("[nan, inf,   1]\n[float32 tensor 3]", tostring(tide.tensor{0 / 0, 1 / 0, 1}))
  end)

  it("nests brackets for more dims, blank lines between 2-D slices (PyTorch)", function()
    local t = tide.tensor({{{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}},
                           {{13, 14, 15, 16}, {17, 18, 19, 20}, {21, 22, 23, 24}}})
    assert.equal([==[
[[[ 1,  2,  3,  4],
  [ 5,  6,  7,  8],
  [ 9, 10, 11, 12]],

 [[13, 14, 15, 16],
  [17, 18, 19, 20],
  [21, 22, 23, 24]]]
[float32 tensor 2x3x4]]==], tostring(t))
  end)

  it("prints a strided view in its logical order", function()
    local t = tide.tensor({{1, 2, 3}, {4, 5, 6}}, {dtype = "int64"}):transpose(1, 2)
    assert.is_false(t:is_contiguous())
    assert.equal("[[1, 4],\n [2, 5],\n [3, 6]]\n[int64 tensor 3x2]", tostring(t))
  end)

  it("wraps long rows at 80 columns (PyTorch)", function()
    local v = {}
    for i = 1, 30 do v[i] = i / 3 end
    assert.equal([==[
[ 0.3333,  0.6667,  1.0000,  1.3333,  1.6667,  2.0000,  2.3333,  2.6667,
  3.0000,  3.3333,  3.6667,  4.0000,  4.3333,  4.6667,  5.0000,  5.3333,
  5.6667,  6.0000,  6.3333,  6.6667,  7.0000,  7.3333,  7.6667,  8.0000,
  8.3333,  8.6667,  9.0000,  9.3333,  9.6667, 10.0000]
[float64 tensor 30]]==], tostring(tide.tensor(v, {dtype = "float64"})))
  end)

  it("summarises beyond 1000 elements with 3 edge items (PyTorch)", function()
    local t = tide.tensor(grid(30, 40, function(i) return i - 1 end), {dtype = "int64"})
    assert.equal([==[
[[   0,    1,    2,  ...,   37,   38,   39],
 [  40,   41,   42,  ...,   77,   78,   79],
 [  80,   81,   82,  ...,  117,  118,  119],
 ...,
 [1080, 1081, 1082,  ..., 1117, 1118, 1119],
 [1120, 1121, 1122,  ..., 1157, 1158, 1159],
 [1160, 1161, 1162,  ..., 1197, 1198, 1199]]
[int64 tensor 30x40]]==], tostring(t))
    local f = tide.tensor(grid(40, 50, function(i) return i / 7 end), {dtype = "float64"})
    assert.equal([==[
[[1.4286e-01, 2.8571e-01, 4.2857e-01,  ..., 6.8571e+00, 7.0000e+00,
  7.1429e+00],
 [7.2857e+00, 7.4286e+00, 7.5714e+00,  ..., 1.4000e+01, 1.4143e+01,
  1.4286e+01],
 [1.4429e+01, 1.4571e+01, 1.4714e+01,  ..., 2.1143e+01, 2.1286e+01,
  2.1429e+01],
 ...,
 [2.6443e+02, 2.6457e+02, 2.6471e+02,  ..., 2.7114e+02, 2.7129e+02,
  2.7143e+02],
 [2.7157e+02, 2.7171e+02, 2.7186e+02,  ..., 2.7829e+02, 2.7843e+02,
  2.7857e+02],
 [2.7871e+02, 2.7886e+02, 2.7900e+02,  ..., 2.8543e+02, 2.8557e+02,
  2.8571e+02]]
[float64 tensor 40x50]]==], tostring(f))
  end)

  it("chooses the format from the printed elements only", function()
    -- the hidden middle holds 1e-9, which alone would force scientific notation
    local v = {}
    for i = 1, 2000 do v[i] = 0.5 end
    v[1000] = 1e-9
    assert.equal("[0.5000, 0.5000, 0.5000,  ..., 0.5000, 0.5000, 0.5000]\n[float64 tensor 2000]",
                 tostring(tide.tensor(v, {dtype = "float64"})))
  end)

  it("formats a huge tensor as fast as a small one", function()
    local t = tide.zeros(2000, 2000)
    local t0 = os.clock()
    local s = tostring(t)
    assert.is_true(os.clock() - t0 < 0.05)
    assert.equal(7, select(2, s:gsub("\n", "")))
  end)

  it("notes requires_grad and grad_fn in the footer", function()
    local x = tide.ones(2, {requires_grad = true})
    assert.equal("[1, 1]\n[float32 tensor 2, requires_grad=true]", tostring(x))
    assert.equal("[2, 2]\n[float32 tensor 2, grad_fn=MulBackward]", tostring(x * 2))
  end)

  it("survives a closed tensor", function()
    local t = tide.ones(2)
    t:close()
    assert.equal("[closed tensor]", tostring(t))
  end)
end)

describe("tide.set_printoptions", function()
  after_each(function() tide.set_printoptions{profile = "default"} end)

  it("sets precision and returns the previous options", function()
    local old = tide.set_printoptions{precision = 2}
    assert.same({precision = 4, threshold = 1000, edgeitems = 3, linewidth = 80,
                 sci_mode = "auto"}, old)
    assert.equal("[  0.33,   0.67, -10.50]\n[float32 tensor 3]",
                 tostring(tide.tensor{1 / 3, 2 / 3, -10.5}))
    tide.set_printoptions(old)
    assert.equal("[0.3333]\n[float32 tensor 1]", tostring(tide.tensor{1 / 3}))
  end)

  it("sets threshold and edgeitems (PyTorch)", function()
    tide.set_printoptions{threshold = 10, edgeitems = 1}
    local t = {}
    for i = 1, 3 do
      t[i] = {}
      for j = 1, 3 do
        local first = (i - 1) * 9 + (j - 1) * 3 + 1
        t[i][j] = {first, 0, first + 2} -- the hidden middle
      end
    end
    assert.equal([==[
[[[ 1,  ...,  3],
  ...,
  [ 7,  ...,  9]],

 ...,

 [[19,  ..., 21],
  ...,
  [25,  ..., 27]]]
[int64 tensor 3x3x3]]==], tostring(tide.tensor(t, {dtype = "int64"})))
    tide.set_printoptions{threshold = math.huge}
    local body = tostring(tide.zeros(2000)):match("^(.*)\n")
    assert.equal(2000, select(2, body:gsub("0", "")))
  end)

  it("sets linewidth and sci_mode", function()
    tide.set_printoptions{linewidth = 20}
    assert.equal("[ 1,  2,  3,  4,  5,\n  6,  7,  8,  9, 10]\n[int64 tensor 10]",
                 tostring(tide.tensor({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {dtype = "int64"})))
    tide.set_printoptions{linewidth = 80, sci_mode = true}
    assert.equal("[3.3333e-01, 6.6667e-01]\n[float32 tensor 2]",
                 tostring(tide.tensor{1 / 3, 2 / 3}))
    tide.set_printoptions{sci_mode = false} -- PyTorch pads to the scientific width here
    assert.equal("[0.0000, 1.0000]\n[float32 tensor 2]", tostring(tide.tensor{1e-8, 1}))
    tide.set_printoptions{sci_mode = "auto", profile = "short"}
    assert.equal("[0.33]\n[float32 tensor 1]", tostring(tide.tensor{1 / 3}))
  end)

  it("rejects bad options and keeps the old ones", function()
    raises("set_printoptions: precision must be an integer in 0..30, got -1",
           tide.set_printoptions, {precision = -1})
    raises("set_printoptions: unknown option 'foo'", tide.set_printoptions, {foo = 1})
    raises("set_printoptions: sci_mode must be true, false or \"auto\", got x",
           tide.set_printoptions, {sci_mode = "x"})
    raises("set_printoptions: unknown profile huge", tide.set_printoptions, {profile = "huge"})
    raises("set_printoptions: edgeitems must be an integer >= 1, got 0",
           tide.set_printoptions, {profile = "short", edgeitems = 0})
    assert.equal(4, tide.set_printoptions{}.precision)
  end)
end)
