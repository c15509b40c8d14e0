-- tests/lua/loss_spec.lua: the losses beyond the one-line checks of ops_spec.lua: sizes that take
-- the threaded paths against compositions of primitive ops (float32 and float64), options the
-- check lines cannot express (pos_weight), PyTorch numbers for K-dim targets with ignore_index
-- and label smoothing, numerical edges, and the error messages. PyTorch numbers: torch 1.13 on
-- the deterministic inputs built here (the same formulas in Python).
local tide = require "tide"

local H = require "helpers"
local close, T, long, err = H.close, H.T, H.long, H.err
local function leaf(t)
  t = t:detach()
  t.requires_grad = true
  return t
end
local TOL = {float32 = 2e-5, float64 = 1e-12}

describe("cross_entropy", function()
  for _, dt in ipairs({"float32", "float64"}) do
    it("equals nll_loss(log_softmax) with its gradient on 4096 x 37 (" .. dt .. ")", function()
      tide.manual_seed(11)
      local x = leaf(tide.randn(4096, 37, {dtype = dt}) * 3)
      local t = tide.randint(1, 37, {4096})
      local l = tide.cross_entropy(x, t)
      l:backward()
      local g = x.grad
      x.grad = nil
      local ref = tide.nll_loss(x:log_softmax(2), t)
      close(l, ref, TOL[dt], "loss")
      ref:backward()
      close(g, x.grad, TOL[dt], "grad")
      local comp = -(x:log_softmax(2):gather(2, t:view(-1, 1))):mean()
      close(l, comp, TOL[dt], "composite")
    end)

    it("label smoothing and probability targets follow PyTorch's formula (" .. dt .. ")", function()
      tide.manual_seed(12)
      local x = leaf(tide.randn(512, 10, {dtype = dt}))
      local t = tide.randint(1, 10, {512})
      local eps = 0.15
      local l = tide.cross_entropy(x, t, {label_smoothing = eps, reduction = "sum"})
      local lp = x:log_softmax(2)
      local ref = -((1 - eps) * lp:gather(2, t:view(-1, 1)):sum() + eps / 10 * lp:sum())
      close(l, ref, TOL[dt] * 1000, "smoothed sum")
      local p = tide.rand(512, 10, {dtype = dt})
      p = p / p:sum(2, true)
      close(tide.cross_entropy(x, p), -(p * lp):sum(2):mean(), TOL[dt], "soft targets")
      local onehot = tide.zeros(512, 10, {dtype = dt}):scatter(2, t:view(-1, 1), 1)
      close(tide.cross_entropy(x, onehot, {label_smoothing = eps}),
            tide.cross_entropy(x, t, {label_smoothing = eps}), TOL[dt], "one-hot = classes")
    end)
  end

  it("K-dim targets with ignore_index and label smoothing match PyTorch", function()
    local v = {}
    for i = 0, 1 do
      v[i + 1] = {}
      for c = 0, 2 do
        v[i + 1][c + 1] = {}
        for s = 0, 3 do v[i + 1][c + 1][s + 1] = math.sin(i + 2 * c + 3 * s) end
      end
    end
    local x = leaf(T(v))
    local l = tide.cross_entropy(x, long{{1, 3, 2, 2}, {3, 1, 2, 1}},
                                 {ignore_index = 2, label_smoothing = 0.3})
    assert.near(1.5629682434835335, l:item(), 1e-12)
    l:backward()
    close(x.grad:view(-1), T{-0.109389407416, 0.04649055903, 0.0, 0.0, 0.10564472995,
      0.002131804362, 0.0, 0.0, 0.003744677466, -0.048622363391, 0.0, 0.0, 0.100362680947,
      -0.136031854822, 0.0, -0.129911588704, 0.039749364165, 0.018633225157, 0.0, 0.010313352248,
      -0.140112045112, 0.117398629665, 0.0, 0.119598236456}, 1e-11, "grad")
  end)

  it("is stable for large logits and keeps reduction none's shape", function()
    local x = T({{1000, 0, -1000}, {-1000, 1000, 0}}, "float32")
    local l = tide.cross_entropy(x, long{1, 3}, {reduction = "none"})
    assert.same({2}, l.shape)
    close(l, T{0, 1000}, 1e-3, "large logits")
    assert.same({}, tide.cross_entropy(T{1, 2, 3}, long(2), {reduction = "none"}).shape)
    assert.same({2, 4}, tide.cross_entropy(tide.randn(2, 3, 4), long{{1, 2, 3, 1}, {1, 1, 1, 1}},
                                           {reduction = "none"}).shape)
  end)

  it("all targets ignored gives nan for mean, 0 for sum (as PyTorch)", function()
    local x = tide.randn(3, 4)
    local t = long{2, 2, 2}
    assert.is_true(tide.cross_entropy(x, t, {ignore_index = 2}):isnan():item())
    assert.equal(0, tide.cross_entropy(x, t, {ignore_index = 2, reduction = "sum"}):item())
  end)

  it("reports misuse", function()
    local x = tide.randn(64, 10)
    err("cross_entropy: expected int64 class targets or float probabilities, got bool",
        tide.cross_entropy, x, tide.ones(64):gt(0))
    err("cross_entropy: target class 11 out of range 1..10 (target 64)", tide.cross_entropy, x,
        tide.cat({tide.ones(63, {dtype = "int64"}), long{11}}))
    err("cross_entropy: target class 0 out of range 1..10 (target 1)", tide.cross_entropy, x,
        tide.zeros(64, {dtype = "int64"}))
    err("cross_entropy: target shape 32 does not match input 64x10 (expected class indices of "
        .. "shape 64)", tide.cross_entropy, x, tide.ones(32, {dtype = "int64"}))
    err("cross_entropy: target shape 64x9 does not match input 64x10 (expected probabilities of "
        .. "shape 64x10)", tide.cross_entropy, x, tide.rand(64, 9))
    err("cross_entropy: label_smoothing must be in [0, 1], got 1.5", tide.cross_entropy, x,
        tide.ones(64, {dtype = "int64"}), {label_smoothing = 1.5})
    err("cross_entropy: ignore_index is not supported for probability targets", tide.cross_entropy,
        x, tide.rand(64, 10), {ignore_index = 1})
    err("cross_entropy: unknown option 'smoothing'", tide.cross_entropy, x,
        tide.ones(64, {dtype = "int64"}), {smoothing = 0.1})
    err("cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'batchmean'",
        tide.cross_entropy, x, tide.ones(64, {dtype = "int64"}), {reduction = "batchmean"})
    err("cross_entropy: expected float logits, got int64", tide.cross_entropy,
        tide.ones(2, 3, {dtype = "int64"}), long{1, 2})
    err("cross_entropy: expected a target tensor, got number", tide.cross_entropy, x, 3)
    err("nll_loss: expected int64 class targets, got float32", tide.nll_loss, x, tide.rand(64, 10))
  end)
end)

describe("nll_loss", function()
  it("averages over the kept targets and gives -1/kept at the targets", function()
    local x = leaf(T{{-1, -2, -3}, {-4, -5, -6}, {-7, -8, -9}})
    local l = tide.nll_loss(x, long{1, 2, 3}, {ignore_index = 2})
    assert.near((1 + 9) / 2, l:item(), 1e-12)
    l:backward()
    close(x.grad, T{{-0.5, 0, 0}, {0, 0, 0}, {0, 0, -0.5}}, 0, "grad")
  end)
end)

describe("pointwise losses", function()
  local cases = {
    {"mse_loss", function(x, y) return (x - y) ^ 2 end},
    {"l1_loss", function(x, y) return (x - y):abs() end},
    {"smooth_l1_loss", function(x, y)
      local d = (x - y):abs()
      return tide.where(d:lt(1), d * d * 0.5, d - 0.5)
    end},
    {"binary_cross_entropy", function(x, y) return -(y * x:log() + (1 - y) * (1 - x):log()) end,
     function(x) return x:sigmoid() end},
    {"binary_cross_entropy_with_logits", function(x, y)
      return -(y * x:sigmoid():log() + (1 - y) * (1 - x:sigmoid()):log())
    end},
    {"kl_div", function(x, y) return y * (y:log() - x) end, nil, function(y) return y:abs() + 0.01 end},
  }
  for _, dt in ipairs({"float32", "float64"}) do
    for _, case in ipairs(cases) do
      local name, ref, fx, fy = case[1], case[2], case[3], case[4]
      it(name .. " matches its formula on 300 x 500 with gradients (" .. dt .. ")", function()
        tide.manual_seed(13)
        local x0 = tide.randn(300, 500, {dtype = dt})
        local y0 = tide.rand(300, 500, {dtype = dt})
        x0 = fx and fx(x0) or x0
        y0 = fy and fy(y0) or y0
        local tol = dt == "float64" and 1e-10 or 1e-4
        for _, red in ipairs({"mean", "sum", "none"}) do
          local x, y = leaf(x0), leaf(y0)
          local l = tide[name](x, y, {reduction = red})
          local w = red == "none" and tide.randn(300, 500, {dtype = dt}) or nil
          l:backward(w)
          local gx, gy = x.grad, y.grad
          x.grad, y.grad = nil, nil
          local r = ref(x, y)
          r = red == "mean" and r:mean() or red == "sum" and r:sum() or r
          local scale = red == "sum" and 150000 or 1
          close(l, r, tol * scale, name .. " " .. red)
          r:backward(w)
          close(gx, x.grad, tol, name .. " " .. red .. " grad input")
          close(gy, y.grad, tol, name .. " " .. red .. " grad target")
        end
      end)
    end
  end

  it("binary_cross_entropy_with_logits with pos_weight matches PyTorch", function()
    local x = leaf(T{{0.5, -1.5, 2.0}, {-0.25, 3.0, -4.0}})
    local y = leaf(T{{1.0, 0.0, 0.5}, {0.0, 1.0, 1.0}})
    local pw = T{2.0, 0.5, 3.0}
    local l = tide.binary_cross_entropy_with_logits(x, y, {pos_weight = pw})
    assert.near(2.5096843579746753, l:item(), 1e-12)
    l:backward()
    close(x.grad:view(-1), T{-0.125846889599, 0.030404253968, 0.043599025993, 0.072970583186,
                             -0.003952156098, -0.491006895019}, 1e-11, "grad x")
    close(y.grad:view(-1), T{-0.004320502637, 0.108215560168, -0.291023996319, 0.179323236646,
                             -0.504048945964, 2.006049975973}, 1e-11, "grad y")
    close(tide.binary_cross_entropy_with_logits(x, y, {pos_weight = pw, reduction = "none"}):view(-1),
          T{0.94815396836, 0.201413277983, 1.253856022086, 0.575939419879, 0.024293675787,
            12.054449783753}, 1e-11, "none")
  end)

  it("stays finite at the edges", function()
    local big = tide.binary_cross_entropy_with_logits(T({100, -100}, "float32"), T({0, 1}, "float32"),
                                                      {reduction = "none"})
    close(big, T{100, 100}, 1e-3, "logits +-100")
    local clamped = tide.binary_cross_entropy(T{0, 1}, T{1, 0}, {reduction = "none"})
    close(clamped, T{100, 100}, 0, "log clamped at -100")
    assert.equal(0, tide.kl_div(T{-1}, T{0}):item())     -- 0 log 0 = 0
    assert.equal(0, tide.smooth_l1_loss(T{1}, T{1}, {beta = 0}):item())
  end)

  it("kl_div: batchmean divides by the batch, log_target takes log-probabilities", function()
    tide.manual_seed(14)
    local x = tide.randn(6, 5, {dtype = "float64"}):log_softmax(2)
    local p = tide.rand(6, 5, {dtype = "float64"})
    p = p / p:sum(2, true)
    local sum = tide.kl_div(x, p, {reduction = "sum"})
    close(tide.kl_div(x, p, {reduction = "batchmean"}), sum / 6, 1e-12, "batchmean")
    close(tide.kl_div(x, p), sum / 30, 1e-12, "mean over elements")
    close(tide.kl_div(x, p:log(), {log_target = true, reduction = "sum"}), sum, 1e-12, "log_target")
  end)

  it("reports misuse", function()
    local x = tide.ones(4, 3)
    err("mse_loss: input shape 4x3 and target shape 4 differ", tide.mse_loss, x, tide.ones(4))
    err("mse_loss: expected a float input, got int64", tide.mse_loss, long{1}, long{1})
    err("l1_loss: unknown option 'beta'", tide.l1_loss, x, x, {beta = 1})
    err("smooth_l1_loss: beta must be >= 0, got -1", tide.smooth_l1_loss, x, x, {beta = -1})
    err("mse_loss: reduction must be 'mean', 'sum' or 'none', got 'batchmean'", tide.mse_loss, x,
        x, {reduction = "batchmean"})
    err("kl_div: reduction must be 'mean', 'sum', 'none' or 'batchmean', got 'avg'", tide.kl_div,
        x, x, {reduction = "avg"})
    err("binary_cross_entropy: input values must be in [0, 1], got 1.5 (element 2)",
        tide.binary_cross_entropy, T{0.5, 1.5}, T{0, 1})
    err("binary_cross_entropy_with_logits: pos_weight of shape 4 does not broadcast to input 4x3",
        tide.binary_cross_entropy_with_logits, x, x, {pos_weight = tide.ones(4)})
    err("binary_cross_entropy_with_logits: pos_weight must be a tensor, got number",
        tide.binary_cross_entropy_with_logits, x, x, {pos_weight = 2})
  end)
end)
