-- tests/lua/conv_spec.lua: the Lua face of conv2d, conv_transpose2d and the pooling ops: the
-- argument forms (ints or {h, w} pairs, bias nil or left out, options), the error messages,
-- autograd plumbing, and identities between the ops. Values against PyTorch are the check lines
-- of ops_spec.lua; the C suite (tests/c/test_conv.c) compares with the definitions.
local tide = require "tide"
local H = require "helpers"

local function maxdiff(a, b)
  return (a - b):abs():max():item()
end

local err = H.errmsg

describe("conv2d", function()
  tide.manual_seed(1)
  local x, w, b = tide.randn(2, 3, 7, 6), tide.randn(4, 3, 3, 3), tide.randn(4)

  it("takes ints or {h, w} pairs, a nil or missing bias, and the method form", function()
    local y = tide.conv2d(x, w, b, {stride = 2, padding = 1})
    assert.same({2, 4, 4, 3}, y.shape)
    assert.equal(0, maxdiff(y, tide.conv2d(x, w, b, {stride = {2, 2}, padding = {1, 1}})))
    assert.equal(0, maxdiff(y, x:conv2d(w, b, {stride = 2, padding = 1})))
    local nb = tide.conv2d(x, w, nil, {stride = 2, padding = 1})
    assert.equal(0, maxdiff(nb, tide.conv2d(x, w, {stride = 2, padding = 1})))
    assert.is_true(maxdiff(y - b:view(1, 4, 1, 1), nb) < 1e-5)
    assert.same({2, 4, 5, 4}, tide.conv2d(x, w).shape)
    assert.same({4, 5, 4}, tide.conv2d(x[1], w, b).shape) -- unbatched C x H x W
  end)

  it("computes output sizes like PyTorch (stride, padding, dilation, non-square)", function()
    assert.same({2, 4, 3, 2}, tide.conv2d(x, w, b, {dilation = 2}).shape)
    assert.same({2, 4, 9, 2}, tide.conv2d(x, w, b, {padding = {2, 0}, stride = {1, 2}}).shape)
    local wg = tide.randn(6, 1, 1, 1)
    assert.same({2, 6, 7, 6}, tide.conv2d(x, wg, nil, {groups = 3}).shape)
  end)

  it("a 1x1 convolution is a matmul over channels", function()
    local w1 = tide.randn(5, 3, 1, 1)
    local y = tide.conv2d(x, w1)
    local m = tide.matmul(w1:view(5, 3), x:permute(2, 1, 3, 4):reshape(3, -1))
    assert.is_true(maxdiff(y:permute(2, 1, 3, 4):reshape(5, -1), m) < 1e-5)
  end)

  it("is linear in x and w and follows float64", function()
    local x64, w64 = x:double(), w:double()
    local y = tide.conv2d(x64, w64)
    assert.equal("float64", y.dtype)
    assert.is_true(maxdiff(tide.conv2d(x64 * 2, w64), y * 2) < 1e-12)
    assert.is_true(maxdiff(tide.conv2d(x64, w64 + w64), y * 2) < 1e-12)
  end)

  it("names the op, the shapes and the expectation in its errors", function()
    assert.matches("conv2d: unknown option 'pading'",
                   err(tide.conv2d, x, w, b, {pading = 1}), 1, true)
    assert.matches("conv2d: input has 3 channels, weight expects 1 (input 8x3x28x28, weight 32x1x3x3)",
                   err(tide.conv2d, tide.zeros(8, 3, 28, 28), tide.zeros(32, 1, 3, 3)), 1, true)
    assert.matches("conv2d: expected a 4-D input (N,C,H,W) or 3-D (C,H,W), got 28x28",
                   err(tide.conv2d, tide.zeros(28, 28), w), 1, true)
    assert.matches("conv2d: kernel 5x5 is larger than the padded input 3x3",
                   err(tide.conv2d, tide.zeros(1, 1, 3, 3), tide.zeros(1, 1, 5, 5)), 1, true)
    assert.matches("conv2d: groups 2 must divide the input channels 3",
                   err(tide.conv2d, x, tide.zeros(4, 1, 3, 3), nil, {groups = 2}), 1, true)
    assert.matches("conv2d: bias must be 1-D with 4 elements (the output channels), got 3",
                   err(tide.conv2d, x, w, tide.zeros(3)), 1, true)
    assert.matches("conv2d: stride must be an integer or a pair {h, w}, got string",
                   err(tide.conv2d, x, w, b, {stride = "2"}), 1, true)
    assert.matches("conv2d: padding must be an integer or a pair {h, w}",
                   err(tide.conv2d, x, w, b, {padding = {1, 2, 3}}), 1, true)
    assert.matches("conv2d: stride must be positive, got 0x1",
                   err(tide.conv2d, x, w, b, {stride = {0, 1}}), 1, true)
    assert.matches("conv2d: bias must be a tensor or nil, got number",
                   err(tide.conv2d, x, w, 3), 1, true)
    assert.matches("conv2d: unknown option 'output_padding'",
                   err(tide.conv2d, x, w, b, {output_padding = 1}), 1, true)
    assert.matches("conv2d: input, weight and bias must have one dtype, got float64, float32",
                   err(tide.conv2d, x:double(), w), 1, true)
  end)

  it("records Conv2dBackward and fills every gradient", function()
    local xl, wl, bl = x:clone(), w:clone(), b:clone()
    xl.requires_grad, wl.requires_grad, bl.requires_grad = true, true, true
    local y = tide.conv2d(xl, wl, bl, {padding = 1})
    assert.equal("Conv2dBackward", y.grad_fn)
    y:sum():backward()
    assert.same(x.shape, xl.grad.shape)
    assert.same(w.shape, wl.grad.shape)
    -- d sum / d b = the number of output positions per channel
    assert.is_true(maxdiff(bl.grad, tide.full({4}, 2 * 7 * 6)) < 1e-3)
    assert.is_nil(tide.no_grad(function() return tide.conv2d(xl, wl, bl) end).grad_fn)
  end)
end)

describe("conv_transpose2d", function()
  tide.manual_seed(2)
  local x, w, b = tide.randn(2, 4, 5, 5), tide.randn(4, 3, 3, 3), tide.randn(3)

  it("inverts conv2d's shape rule (stride 2, output_padding 1 doubles H and W)", function()
    local y = tide.conv_transpose2d(x, w, b, {stride = 2, padding = 1, output_padding = 1})
    assert.same({2, 3, 10, 10}, y.shape)
    assert.same({2, 3, 7, 7}, tide.conv_transpose2d(x, w).shape)
    assert.same({2, 6, 7, 7}, tide.conv_transpose2d(x, tide.randn(4, 3, 3, 3), nil, {groups = 2}).shape)
  end)

  it("is the adjoint of conv2d: <conv(u, w), v> = <u, convT(v, w)>", function()
    local u, v = tide.randn(2, 3, 9, 9):double(), tide.randn(2, 4, 5, 5):double()
    local wd = w:double()
    local o = {stride = 2, padding = 1}
    local lhs = (tide.conv2d(u, wd, nil, o) * v):sum():item()
    local rhs = (u * tide.conv_transpose2d(v, wd, nil, o)):sum():item()
    assert.is_true(math.abs(lhs - rhs) < 1e-9 * (1 + math.abs(lhs)))
  end)

  it("names its options and errors", function()
    assert.matches("conv_transpose2d: unknown option 'outputpadding'",
                   err(tide.conv_transpose2d, x, w, b, {outputpadding = 1}), 1, true)
    assert.matches("conv_transpose2d: output_padding 2x2 must be smaller than the stride or the dilation",
                   err(tide.conv_transpose2d, x, w, b, {stride = 2, output_padding = 2}), 1, true)
    assert.matches("conv_transpose2d: input has 3 channels, weight expects 4",
                   err(tide.conv_transpose2d, tide.zeros(1, 3, 4, 4), w), 1, true)
  end)
end)

describe("pooling", function()
  tide.manual_seed(3)
  local x = tide.randn(2, 3, 6, 7)

  it("max_pool2d: stride defaults to the kernel; windows match a reshape", function()
    local y = tide.max_pool2d(x, 2)
    assert.same({2, 3, 3, 3}, y.shape)
    local x6 = x:narrow(4, 1, 6):contiguous()
    local m = x6:view(2, 3, 3, 2, 3, 2):max(6):max(4)
    assert.equal(0, maxdiff(tide.max_pool2d(x6, 2), m))
    assert.same({2, 3, 5, 6}, x:max_pool2d(2, {stride = 1}).shape)
    assert.same({2, 3, 3, 4}, x:max_pool2d({3, 3}, {stride = 2, padding = 1}).shape)
  end)

  it("max_pool2d's gradient goes to the maximum of each window", function()
    local t = tide.tensor({{{{1, 5}, {3, 2}}}}, {requires_grad = true})
    local y = tide.max_pool2d(t, 2)
    assert.equal("MaxPool2dBackward", y.grad_fn)
    y:backward(tide.tensor({{{{7}}}}), {retain_graph = true})
    assert.same({{{{0, 7}, {0, 0}}}}, t.grad:totable())
    y:backward(tide.tensor({{{{1}}}}))  -- the saved positions survive retain_graph
    assert.same({{{{0, 8}, {0, 0}}}}, t.grad:totable())
  end)

  it("avg_pool2d counts padding as zeros; adaptive_avg_pool2d(x, 1) is the mean", function()
    local ones = tide.ones(1, 1, 2, 2)
    assert.same({{{{0.25, 0.25}, {0.25, 0.25}}}}, tide.avg_pool2d(ones, 2, {padding = 1}):totable())
    local m = x:mean(4):mean(3)
    assert.is_true(maxdiff(tide.adaptive_avg_pool2d(x, 1):view(2, 3), m) < 1e-6)
    assert.same({2, 3, 2, 4}, x:adaptive_avg_pool2d({2, 4}).shape)
    local a = tide.adaptive_avg_pool2d(x, {3, 7})   -- 6 -> 3 rows: pairs; 7 -> 7 columns: identity
    assert.is_true(maxdiff(a, tide.avg_pool2d(x, {2, 1})) < 1e-6)
  end)

  it("names the op and the problem in its errors", function()
    assert.matches("max_pool2d: kernel size must be an integer or a pair {h, w}, got no value",
                   err(tide.max_pool2d, x), 1, true)
    assert.matches("avg_pool2d: unknown option 'strides'",
                   err(tide.avg_pool2d, x, 2, {strides = 1}), 1, true)
    assert.matches("max_pool2d: padding 2x2 must be between 0 and half the kernel 2x2",
                   err(tide.max_pool2d, x, 2, {padding = 2}), 1, true)
    assert.matches("max_pool2d: kernel 8x8 is larger than the padded input 6x7",
                   err(tide.max_pool2d, x, 8), 1, true)
    assert.matches("adaptive_avg_pool2d: output size must be positive, got 0x0",
                   err(tide.adaptive_avg_pool2d, x, 0), 1, true)
    assert.matches("max_pool2d: expected a float32 or float64 input, got int64",
                   err(tide.max_pool2d, tide.zeros(1, 1, 2, 2, {dtype = "int64"}), 2), 1, true)
  end)
end)

describe("a CNN step at the benchmark's shapes", function()
  it("runs conv, relu, pool twice, forward and backward, with finite gradients", function()
    tide.manual_seed(4)
    local x = tide.randn(8, 1, 28, 28)
    local w1, b1 = (tide.randn(32, 1, 3, 3) * 0.3), tide.zeros(32)
    local w2, b2 = (tide.randn(64, 32, 3, 3) * 0.05), tide.zeros(64)
    for _, p in ipairs({w1, b1, w2, b2}) do p.requires_grad = true end
    local h = tide.max_pool2d(tide.conv2d(x, w1, b1, {padding = 1}):relu(), 2)
    h = tide.max_pool2d(tide.conv2d(h, w2, b2, {padding = 1}):relu(), 2)
    assert.same({8, 64, 7, 7}, h.shape)
    h:sum():backward()
    for _, p in ipairs({w1, b1, w2, b2}) do
      assert.same(p.shape, p.grad.shape)
      assert.is_true(p.grad:isfinite():all():item())
    end
  end)
end)
