-- tests/lua/nn_modules_spec.lua: the convolution, pooling, normalisation, embedding and loss
-- modules (stdlib/tide/nn/conv.lua, norm.lua, loss.lua) and nn.F: each module equals its
-- functional op with its own parameters, parameter and buffer names and shapes follow PyTorch,
-- BatchNorm's running statistics, option and input errors, and a small CNN that learns.
local tide = require "tide"
local nn = require "tide.nn"

local function fails(fn, pattern)
  local ok, err = pcall(fn)
  assert.is_false(ok)
  assert.matches(pattern, err, 1, true)
end

local function close(a, b, tol)
  local x, y = a:flatten():totable(), type(b) == "table" and b or b:flatten():totable()
  if type(b) ~= "table" then assert.same(b.shape, a.shape) end
  assert.equal(#y, #x)
  for i = 1, #x do
    assert.is_true(math.abs(x[i] - y[i]) <= (tol or 1e-6), ("%g vs %g at %d"):format(x[i], y[i], i))
  end
end

local function shapes(m)
  local out = {}
  for name, t in pairs(m:state_dict()) do out[#out + 1] = name .. ":" .. table.concat(t.shape, "x") end
  return out
end

describe("nn.F", function()
  it("maps the functional names to the tide ops", function()
    for _, n in ipairs({"conv2d", "max_pool2d", "avg_pool2d", "relu", "gelu", "softmax",
                        "log_softmax", "dropout", "embedding", "layer_norm", "batch_norm",
                        "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "binary_cross_entropy",
                        "binary_cross_entropy_with_logits", "kl_div", "smooth_l1_loss"}) do
      assert.equal(tide[n], nn.F[n], n)
    end
  end)

  it("linear computes x W^T + b on 1-, 2- and 3-D input", function()
    local w = tide.tensor({{1, 2}, {3, 4}, {-1, 0}}, {dtype = "float64"})
    local b = tide.tensor({0.5, -0.5, 1}, {dtype = "float64"})
    local x = tide.tensor({{1, 1}, {2, -1}}, {dtype = "float64"})
    close(nn.F.linear(x, w, b), {3.5, 6.5, 0, 0.5, 1.5, -1})
    close(nn.F.linear(x, w), {3, 7, -1, 0, 2, -2})
    close(nn.F.linear(x[1], w, b), {3.5, 6.5, 0})
    close(nn.F.linear(tide.stack({x, x}), w, b), {3.5, 6.5, 0, 0.5, 1.5, -1, 3.5, 6.5, 0, 0.5, 1.5, -1})
    fails(function() nn.F.linear(x, 3) end, "nn.F.linear: expected tensors")
  end)
end)

describe("nn.F.scaled_dot_product_attention", function()
  local q = tide.tensor({{1, 0}, {0, 1}, {1, 1}}, {dtype = "float64"})
  local k = tide.tensor({{1, 0}, {0, 2}, {-1, 1}}, {dtype = "float64"})
  local v = tide.tensor({{1, 2}, {3, 4}, {5, 6}}, {dtype = "float64"})

  -- the same formula written out row by row in plain Lua
  local function reference(allowed)
    local qt, kt, vt, out = q:totable(), k:totable(), v:totable(), {}
    for i = 1, 3 do
      local w, z = {}, 0
      for j = 1, 3 do
        if allowed(i, j) then
          w[j] = math.exp((qt[i][1] * kt[j][1] + qt[i][2] * kt[j][2]) / math.sqrt(2))
          z = z + w[j]
        else w[j] = 0 end
      end
      for c = 1, 2 do
        local s = 0
        for j = 1, 3 do s = s + w[j] / z * vt[j][c] end
        out[#out + 1] = s
      end
    end
    return out
  end

  it("computes softmax(q k^T / sqrt(d) + mask) v, causal and masked", function()
    local F = nn.F
    close(F.scaled_dot_product_attention(q, k, v), reference(function() return true end), 1e-12)
    close(F.scaled_dot_product_attention(q, k, v, {causal = true}),
          reference(function(i, j) return j <= i end), 1e-12)
    local keep = tide.tensor({{true, false, true}, {true, true, false}, {false, true, true}})
    local kt = keep:totable()
    close(F.scaled_dot_product_attention(q, k, v, {mask = keep}),
          reference(function(i, j) return kt[i][j] end), 1e-12)
    local add = tide.zeros(3, 3, {dtype = "float64"}):masked_fill(keep:logical_not(), -math.huge)
    close(F.scaled_dot_product_attention(q, k, v, {mask = add}),
          reference(function(i, j) return kt[i][j] end), 1e-12)
    local qb = tide.stack({q, q})               -- batched: 2 x 3 x 2
    assert.same({2, 3, 2}, F.scaled_dot_product_attention(qb, tide.stack({k, k}), tide.stack({v, v}),
                                                          {causal = true}).shape)
    fails(function() F.scaled_dot_product_attention(q, k, v, {casual = true}) end, "unknown option 'casual'")
  end)
end)

describe("nn.Conv2d", function()
  it("has PyTorch's parameter names and shapes and equals tide.conv2d", function()
    tide.manual_seed(1)
    local c = nn.Conv2d(4, 6, {3, 2}, {stride = 2, padding = 1, groups = 2})
    assert.same({"weight:6x2x3x2", "bias:6"}, shapes(c))
    assert.same({"weight", "bias"}, (select(2, c:named_parameters())))
    local x = tide.randn(2, 4, 7, 6)
    local y = c(x)
    close(y, tide.conv2d(x, c.weight, c.bias, {stride = 2, padding = 1, groups = 2}))
    assert.same({2, 6, 4, 4}, y.shape)
    assert.same({"weight:6x2x3x2"}, shapes(nn.Conv2d(4, 6, {3, 2}, {groups = 2, bias = false})))
  end)

  it("computes real values (ones kernel, bias)", function()
    local c = nn.Conv2d(1, 1, 2)
    c:load_state_dict({weight = tide.ones(1, 1, 2, 2), bias = tide.tensor({100})})
    close(c(tide.arange(1, 16):view(1, 1, 4, 4):to("float32")),
          {114, 118, 122, 130, 134, 138, 146, 150, 154})
  end)

  it("initialises like PyTorch: weight and bias in U(-1/sqrt(fan_in), 1/sqrt(fan_in))", function()
    tide.manual_seed(0)
    local c = nn.Conv2d(16, 32, 3)            -- fan_in 144
    local bound = 1 / math.sqrt(144)
    assert.is_true(c.weight:abs():max():item() <= bound)
    assert.is_true(c.weight:abs():max():item() > 0.9 * bound)
    assert.is_true(c.bias:abs():max():item() <= bound)
    assert.near(bound / math.sqrt(3), c.weight:std():item(), 0.003)
  end)

  it("backward reaches the weight, the bias and the input", function()
    local c = nn.Conv2d(2, 3, 3, {padding = 1})
    local x = tide.randn(2, 2, 5, 5, {requires_grad = true})
    c(x):sum():backward()
    assert.same({3, 2, 3, 3}, c.weight.grad.shape)
    close(c.bias.grad, {50, 50, 50}, 1e-4)    -- every output counts once per bias
    assert.same(x.shape, x.grad.shape)
  end)

  it("names its config in errors and tostring", function()
    fails(function() nn.Conv2d(1, 32, 3, {pading = 1}) end, "Conv2d(1, 32, 3): unknown option 'pading'")
    fails(function() nn.Conv2d(1, 32, 3)(tide.zeros(8, 3, 28, 28)) end,
          "Conv2d(1, 32, 3): expected 1 input channel, got 3 (input 8x3x28x28)")
    fails(function() nn.Conv2d(1, 32, 3)(tide.zeros(28, 28)) end,
          "Conv2d(1, 32, 3): expected an N x C x H x W (or C x H x W) input, got 28x28")
    fails(function() nn.Conv2d(3, 4, 3, {groups = 2}) end, "groups (2) must divide")
    fails(function() nn.Conv2d(0, 4, 3) end, "in_channels must be a positive integer")
    assert.equal("Conv2d(1, 32, 3, 320 params)", tostring(nn.Conv2d(1, 32, 3)))
    assert.equal("Conv2d(3, 8, {3, 5}, {stride = 2, bias = false})",
                 nn.Conv2d(3, 8, {3, 5}, {stride = 2, bias = false}):config())
  end)
end)

describe("nn.ConvTranspose2d", function()
  it("has weight in x out/groups x kh x kw and equals tide.conv_transpose2d", function()
    local c = nn.ConvTranspose2d(4, 6, 3, {stride = 2, padding = 1, output_padding = 1, groups = 2})
    assert.same({"weight:4x3x3x3", "bias:6"}, shapes(c))
    local x = tide.randn(1, 4, 5, 5)
    local y = c(x)
    assert.same({1, 6, 10, 10}, y.shape)
    close(y, tide.conv_transpose2d(x, c.weight, c.bias,
                                   {stride = 2, padding = 1, output_padding = 1, groups = 2}))
    c:load_state_dict({weight = tide.ones(4, 3, 3, 3), bias = tide.zeros(6)})
    fails(function() c(tide.zeros(1, 3, 5, 5)) end, "expected 4 input channels, got 3")
  end)
end)

describe("pooling modules", function()
  local x = tide.arange(1, 16):view(1, 1, 4, 4):to("float32")
  it("MaxPool2d, AvgPool2d and AdaptiveAvgPool2d compute real values", function()
    close(nn.MaxPool2d(2)(x), {6, 8, 14, 16})
    close(nn.AvgPool2d(2)(x), {3.5, 5.5, 11.5, 13.5})
    close(nn.AdaptiveAvgPool2d(1)(x), {8.5})
    close(nn.MaxPool2d(3, {stride = 1, padding = 1})(x), tide.max_pool2d(x, 3, {stride = 1, padding = 1}))
    close(nn.AvgPool2d({2, 1}, {stride = {2, 1}})(x), tide.avg_pool2d(x, {2, 1}, {stride = {2, 1}}))
    assert.same({1, 1, 2, 1}, nn.AdaptiveAvgPool2d({2, 1})(x).shape)
    assert.same({}, nn.MaxPool2d(2):parameters())
  end)

  it("validates options and input", function()
    fails(function() nn.MaxPool2d(2, {strid = 1}) end, "MaxPool2d(2): unknown option 'strid'")
    fails(function() nn.AvgPool2d(0) end, "AvgPool2d(0): kernel_size must be a positive integer")
    fails(function() nn.MaxPool2d(2)(tide.zeros(4)) end, "MaxPool2d(2): expected an N x C x H x W")
    assert.equal("AvgPool2d(3, {stride = 1, padding = 1})",
                 tostring(nn.AvgPool2d(3, {stride = 1, padding = 1})))
  end)
end)

describe("nn.BatchNorm1d / nn.BatchNorm2d", function()
  it("has PyTorch's parameters, buffers and state_dict keys", function()
    local bn = nn.BatchNorm2d(3)
    assert.same({"weight:3", "bias:3", "running_mean:3", "running_var:3", "num_batches_tracked:"},
                shapes(bn))
    close(bn.weight, {1, 1, 1}); close(bn.bias, {0, 0, 0})
    close(bn.running_mean, {0, 0, 0}); close(bn.running_var, {1, 1, 1})
    assert.equal("int64", bn.num_batches_tracked.dtype)
    assert.equal(2, #bn:parameters())
    assert.equal(3, #bn:buffers())
    assert.same({"running_mean:3", "running_var:3", "num_batches_tracked:"},
                shapes(nn.BatchNorm1d(3, {affine = false})))
    assert.same({"weight:3", "bias:3"}, shapes(nn.BatchNorm1d(3, {track_running_stats = false})))
  end)

  it("updates running statistics in train mode only (PyTorch's values)", function()
    local bn = nn.BatchNorm1d(2)
    local x = tide.tensor({{1, 10}, {3, 30}})
    close(bn(x), {-1, -1, 1, 1}, 1e-3)
    close(bn.running_mean, {0.2, 2}, 1e-6)
    close(bn.running_var, {1.1, 20.9}, 1e-5)
    assert.equal(1, bn.num_batches_tracked:item())
    bn:eval()
    local y = bn(x)
    close(bn.running_mean, {0.2, 2}, 1e-6)
    assert.equal(1, bn.num_batches_tracked:item())
    close(y, {(1 - 0.2) / math.sqrt(1.1 + 1e-5), (10 - 2) / math.sqrt(20.9 + 1e-5),
              (3 - 0.2) / math.sqrt(1.1 + 1e-5), (30 - 2) / math.sqrt(20.9 + 1e-5)}, 1e-4)
  end)

  it("equals tide.batch_norm with its own parameters, and backpropagates", function()
    local bn = nn.BatchNorm2d(3, {momentum = 0.3, eps = 1e-3})
    tide.no_grad(function()
      bn.weight:copy_(tide.tensor({1, 2, 3}))
      bn.bias:copy_(tide.tensor({0, 1, -1}))
    end)
    local x = tide.randn(4, 3, 2, 2)
    local rm, rv = tide.zeros(3), tide.ones(3)
    local ref = tide.batch_norm(x, rm, rv, bn.weight, bn.bias, {training = true, momentum = 0.3, eps = 1e-3})
    close(bn(x), ref, 1e-5)
    close(bn.running_mean, rm, 1e-6)
    close(bn.running_var, rv, 1e-6)
    bn(x):pow(2):sum():backward()
    assert.same({3}, bn.weight.grad.shape)
    assert.same({3}, bn.bias.grad.shape)
    bn:eval()
    close(bn(x), tide.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, {eps = 1e-3}), 1e-5)
    assert.equal(2, bn.num_batches_tracked:item())
  end)

  it("validates options and input", function()
    fails(function() nn.BatchNorm2d(3, {momentun = 0.1}) end, "BatchNorm2d(3): unknown option 'momentun'")
    fails(function() nn.BatchNorm2d(4)(tide.zeros(2, 3, 4, 4)) end,
          "BatchNorm2d(4): expected 4 channels in dim 2, got 3 (input 2x3x4x4)")
    fails(function() nn.BatchNorm2d(4)(tide.zeros(2, 4)) end,
          "BatchNorm2d(4): expected an N x C x H x W input, got 2x4")
    fails(function() nn.BatchNorm1d(4)(tide.zeros(2, 4, 3, 3)) end,
          "BatchNorm1d(4): expected an N x C or N x C x L input")
    assert.equal("BatchNorm2d(8, {momentum = 0.01})", tostring(nn.BatchNorm2d(8, {momentum = 0.01})))
  end)
end)

describe("nn.LayerNorm", function()
  it("has weight ones, bias zeros, and equals tide.layer_norm", function()
    local ln = nn.LayerNorm(3)
    assert.same({"weight:3", "bias:3"}, shapes(ln))
    close(ln.weight, {1, 1, 1}); close(ln.bias, {0, 0, 0})
    close(ln(tide.tensor({{1, 2, 3}, {2, 4, 6}})), {-1.2247, 0, 1.2247, -1.2247, 0, 1.2247}, 1e-4)
    local ln2 = nn.LayerNorm({2, 3}, {eps = 1e-3})
    assert.same({"weight:2x3", "bias:2x3"}, shapes(ln2))
    tide.no_grad(function() ln2.weight:uniform_(); ln2.bias:uniform_() end)
    local x = tide.randn(4, 2, 3)
    close(ln2(x), tide.layer_norm(x, {2, 3}, ln2.weight, ln2.bias, {eps = 1e-3}), 1e-5)
    assert.same({}, shapes(nn.LayerNorm(3, {elementwise_affine = false})))
    assert.same({"weight:3"}, shapes(nn.LayerNorm(3, {bias = false})))
  end)

  it("validates options and input", function()
    fails(function() nn.LayerNorm(3, {esp = 1}) end, "LayerNorm(3): unknown option 'esp'")
    fails(function() nn.LayerNorm(5)(tide.zeros(2, 4)) end,
          "LayerNorm(5): expected input ending in 5, got 2x4")
  end)
end)

describe("nn.Embedding", function()
  it("has weight num x dim from N(0, 1) and equals tide.embedding", function()
    tide.manual_seed(0)
    local e = nn.Embedding(1000, 20)
    assert.same({"weight:1000x20"}, shapes(e))
    assert.near(0, e.weight:mean():item(), 0.03)
    assert.near(1, e.weight:std():item(), 0.03)
    local idx = tide.tensor({{3, 1}, {2, 2}}, {dtype = "int64"})
    local y = e(idx)
    assert.same({2, 2, 20}, y.shape)
    close(y, tide.embedding(idx, e.weight))
    close(y[1][1], e.weight[3])
  end)

  it("validates input", function()
    fails(function() nn.Embedding(3, 2)(tide.tensor({1.0})) end,
          "Embedding(3, 2): expected int64 indices, got float32")
    fails(function() nn.Embedding(3, 2, {padding = 1}) end, "Embedding(3, 2): unknown option 'padding'")
  end)
end)

describe("loss modules", function()
  local logits = tide.tensor({{2, 0, 0}, {0, 0, 3}})
  local cls = tide.tensor({1, 3}, {dtype = "int64"})
  local a, b = tide.tensor({1, 2, 3}), tide.tensor({1, 0, 0})

  it("equal their tide ops with their options (real values)", function()
    assert.near(0.1672, nn.CrossEntropyLoss()(logits, cls):item(), 1e-4)
    close(nn.CrossEntropyLoss({reduction = "none"})(logits, cls), {0.2395, 0.0949}, 1e-4)
    close(nn.CrossEntropyLoss({label_smoothing = 0.1})(logits, cls),
          tide.cross_entropy(logits, cls, {label_smoothing = 0.1}))
    close(nn.CrossEntropyLoss({ignore_index = 3})(logits, cls), {0.2395}, 1e-4)
    close(nn.NLLLoss()(logits:log_softmax(2), cls), tide.cross_entropy(logits, cls), 1e-6)
    assert.near(13 / 3, nn.MSELoss()(a, b):item(), 1e-6)
    assert.near(5, nn.L1Loss({reduction = "sum"})(a, b):item(), 1e-6)
    close(nn.SmoothL1Loss({reduction = "none"})(tide.tensor({0.5, 3}), tide.zeros(2)), {0.125, 2.5})
    close(nn.SmoothL1Loss({beta = 2})(a, b), tide.smooth_l1_loss(a, b, {beta = 2}))
    assert.near(0.1643, nn.BCELoss()(tide.tensor({0.9, 0.2}), tide.tensor({1, 0})):item(), 1e-4)
    local x, y = tide.tensor({{2, -1}, {0, 40}}), tide.tensor({{1, 0}, {1, 1}})
    close(nn.BCEWithLogitsLoss()(x, y), tide.binary_cross_entropy_with_logits(x, y))
    local pw = tide.tensor({2, 1})
    close(nn.BCEWithLogitsLoss({pos_weight = pw})(x, y),
          tide.binary_cross_entropy_with_logits(x, y, {pos_weight = pw}))
    local logq, p = tide.tensor({{0.25, 0.75}}):log(), tide.tensor({{0.5, 0.5}})
    assert.near(0.1438, nn.KLDivLoss({reduction = "batchmean"})(logq, p):item(), 1e-4)
    close(nn.KLDivLoss({log_target = true})(logq, p:log()), tide.kl_div(logq, p:log(), {log_target = true}))
  end)

  it("validate options and arguments", function()
    fails(function() nn.CrossEntropyLoss({reductio = "sum"}) end,
          "CrossEntropyLoss: unknown option 'reductio'")
    fails(function() nn.MSELoss({reduction = "avg"}) end, "MSELoss: reduction must be")
    fails(function() nn.MSELoss({reduction = "batchmean"}) end, "MSELoss: reduction must be")
    fails(function() nn.MSELoss()(a, 3) end, "MSELoss(): expected input and target tensors")
    assert.equal("CrossEntropyLoss({label_smoothing = 0.1})",
                 tostring(nn.CrossEntropyLoss({label_smoothing = 0.1})))
    assert.equal("MSELoss()", tostring(nn.MSELoss()))
  end)
end)

describe("a small CNN", function()
  it("runs forward/backward and its CrossEntropyLoss decreases under SGD", function()
    tide.manual_seed(3)
    local net = nn.Sequential{nn.Conv2d(1, 4, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(4 * 4 * 4, 3)}
    local x = tide.randn(12, 1, 8, 8)
    local y = tide.tensor({1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3}, {dtype = "int64"})
    local crit = nn.CrossEntropyLoss()
    local names = select(2, net:named_parameters())
    assert.same({"1.weight", "1.bias", "5.weight", "5.bias"}, names)
    local losses = {}
    for step = 1, 20 do
      net:zero_grad()
      local loss = crit(net(x), y)
      loss:backward()
      losses[step] = loss:item()
      tide.no_grad(function()
        for _, p in ipairs(net:parameters()) do p:sub_(p.grad * 0.1) end
      end)
    end
    assert.is_true(losses[20] < losses[1] * 0.8, losses[1] .. " -> " .. losses[20])
    for i = 2, 20 do assert.is_true(losses[i] == losses[i]) end
  end)
end)
