-- tests/lua/explain_spec.lua: tide.explain against PyTorch references for the same weights
-- (scripts/gen_explain_fixtures.py: gradients, gradient x input, Riemann-trapezoid and
-- Gauss-Legendre integrated gradients with Captum's formulas, occlusion maps, Grad-CAM), against
-- answers known by construction (Grad-CAM on channel detectors, exact Shapley values and LIME's
-- coefficients of a linear model, feature ablation), completeness, and misuse errors.
local tide = require "tide"
local nn = require "tide.nn"
local H = require "helpers"

local E = tide.explain
local FIX = "tests/fixtures/explain_cnn.safetensors"

local function cnn()
  local m = nn.Sequential(nn.Conv2d(1, 4, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 6, 3, {padding = 1}), nn.ReLU(), nn.Flatten(),
                          nn.Linear(96, 5)):to("float64"):eval()
  local f = tide.load(FIX, {flat = true})
  local sd = {}
  for k, v in pairs(f) do
    local name = k:match("^model%.(.+)$")
    if name then sd[name] = v end
  end
  m:load_state_dict(sd, {from = "pytorch"})
  return m, f
end

-- a linear model y = x W' + b on float64 with known weights (classes x features)
local function linear(w, b) return H.linear(w, b, "float64") end

describe("gradient attributions match PyTorch", function()
  local m, f = cnn()
  it("saliency and gradient x input", function()
    H.close(E.saliency(m, f.x, f.target), f.grad, 1e-12, "saliency")
    H.close(E.saliency(m, f.x, f.target, {times_input = true}), f.grad_x_input, 1e-12, "g*x")
    H.close(E.saliency(m, f.x, f.target, {abs = true, batch_size = 2}), f.grad:abs(), 1e-12,
            "abs, in chunks")
  end)

  it("equal PyTorch's idiom out = model(x); out[{1, c}]:backward()", function()
    local x = f.x:narrow(1, 2, 1):clone()
    x.requires_grad = true
    local out = m(x)
    out[{1, 3}]:backward()
    H.close(x.grad, f.grad:narrow(1, 2, 1), 1e-12, "x.grad of example 2, class 3")
  end)

  it("integrated gradients, both rules, with the completeness delta", function()
    local a, d = E.integrated_gradients(m, f.x, f.target, {steps = 20})
    H.close(a, f.ig_trap, 1e-12, "riemann_trapezoid")
    H.close(d, f.ig_trap_delta, 1e-12, "trapezoid delta")
    a, d = E.integrated_gradients(m, f.x, f.target, {steps = 20, baseline = 0.25, batch_size = 7})
    H.close(a, f.ig_trap_base, 1e-12, "trapezoid, baseline 0.25, in chunks")
    H.close(d, f.ig_trap_base_delta, 1e-12, "baseline delta")
    a, d = E.integrated_gradients(m, f.x, f.target, {steps = 16, method = "gausslegendre"})
    H.close(a, f.ig_gl, 1e-12, "gausslegendre")
    H.close(d, f.ig_gl_delta, 1e-12, "gausslegendre delta")
  end)

  it("occlusion maps and Grad-CAM", function()
    H.close(E.occlusion(m, f.x, f.target, {window = 2, stride = 2}), f.occ_2s2, 1e-12, "2x2/2")
    H.close(E.occlusion(m, f.x, f.target, {window = {3, 3}, stride = {1, 1}, batch_size = 10}),
            f.occ_3s1, 1e-12, "3x3/1")
    H.close(E.gradcam(m, f.x, f.target, {layer = m[5]}), f.cam, 1e-12, "gradcam")
  end)
end)

describe("completeness", function()
  it("holds for integrated gradients of a smooth model as the steps grow", function()
    tide.manual_seed(3)
    local m = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)):to("float64")
    local x = tide.randn(4, 6, {dtype = "float64"})
    local base = tide.randn(6, {dtype = "float64"})
    local a, d = E.integrated_gradients(m, x, 2, {steps = 24, method = "gausslegendre",
                                                  baseline = base})
    local want = m(x):select(2, 2) - m(x * 0 + base):select(2, 2)
    H.close(a:sum(2) - d, want, 1e-12, "delta is sum - (f(x) - f(x'))")
    assert(d:abs():max():item() < 1e-9, "gausslegendre delta " .. d:abs():max():item())
    -- Captum's trapezoid weights sum to 1 - 1/n: its delta shrinks like 1/n
    local _, d20 = E.integrated_gradients(m, x, 2, {steps = 20, baseline = base})
    local _, d200 = E.integrated_gradients(m, x, 2, {steps = 200, baseline = base})
    local r = d200:abs():max():item() / d20:abs():max():item()
    assert(r < 0.15, "trapezoid delta ratio 200 / 20 steps: " .. r)
  end)
end)

describe("answers known by construction", function()
  it("Grad-CAM finds the channel the class reads", function()
    -- two detector channels (identity 1x1 conv): class 1 sums channel 1, class 2 channel 2;
    -- channel 1 lights the top-left corner, channel 2 the bottom-right
    local conv = nn.Conv2d(2, 2, 1):to("float64")
    tide.no_grad(function()
      conv.weight:copy_(H.T({{{{1}}, {{0}}}, {{{0}}, {{1}}}}))
      conv.bias:zero_()
    end)
    local pool = nn.MaxPool2d(2)
    local m = nn.Sequential(conv, nn.ReLU(), pool, nn.Flatten(), linear(
      (function()
        local w = {{}, {}}
        for i = 1, 32 do w[1][i], w[2][i] = i <= 16 and 1 or 0, i > 16 and 1 or 0 end
        return w
      end)(), {0, 0}))
    local x = tide.zeros(1, 2, 8, 8, {dtype = "float64"})
    x[{1, 1, {1, 3}, {1, 3}}] = 1
    x[{1, 2, {6, 8}, {6, 8}}] = 2
    local c1 = E.gradcam(m, x, 1, {layer = m[2]})            -- a multiple of channel 1
    H.close(c1 / c1:max(), x[{{}, {1}}], 1e-12, "class 1 map is channel 1")
    local c2 = E.gradcam(m, x, 2, {layer = m[3]})            -- 4x4 maps, upsampled
    local total, corner = c2:sum():item(), c2[{1, 1, {5, 8}, {5, 8}}]:sum():item()
    assert(corner > 0.85 * total, ("class 2 mass in the corner: %g of %g"):format(corner, total))
    assert.equal(0, c2[{1, 1, {1, 3}, {1, 3}}]:sum():item())  -- nothing where channel 1 is
    assert.same({1, 1, 8, 8}, c2.shape)
  end)

  local w = {{0.5, -2, 1, 3, -0.25}, {1, 1, 1, 1, 1}}
  local lm = linear(w, {0.1, -0.3})
  local x = H.T({{1, 2, -1, 0.5, 4}, {-2, 0, 1, 1, 1}})
  tide.manual_seed(5)
  local bg = tide.randn(10, 5, {dtype = "float64"})

  it("KernelSHAP gives the exact Shapley values of a linear model", function()
    local a, base = E.kernel_shap(lm, x, 1, {background = bg})
    local wt = H.T(w[1])
    H.close(a, wt * (x - bg:mean(1)), 1e-9, "w_i (x_i - E[x_i])")
    H.close(base, (bg:matmul(wt) + 0.1):mean() * tide.ones(2, {dtype = "float64"}), 1e-12,
            "E[f(background)]")
    H.close(a:sum(2), lm(x):select(2, 1) - base, 1e-9, "efficiency")
    -- sampled coalitions (12 features: 4094 > 512 samples) still fit a linear model exactly
    local w12, x12 = {}, {}
    for i = 1, 12 do w12[i], x12[i] = (i % 5) - 2, i / 4 end
    local l12 = linear({w12}, {0})
    local a12 = E.kernel_shap(l12, H.T({x12}), 1, {samples = 512, seed = 1})
    H.close(a12, H.T(w12) * H.T(x12), 1e-8, "sampled")
    -- grouped features: each element carries its group's value, the groups sum to f(x) - base
    local groups = H.long({1, 1, 2, 2, 3})
    local ag, bg2 = E.kernel_shap(lm, x, tide.tensor({1, 2}, {dtype = "int64"}),
                                  {background = bg, features = groups})
    local sums = ag:select(2, 1) + ag:select(2, 3) + ag:select(2, 5)
    H.close(sums, lm(x):gather(2, H.long({{1}, {2}})):view(2) - bg2, 1e-9, "groups' efficiency")
    H.close(ag:select(2, 1), ag:select(2, 2), 0, "one value per group")
  end)

  it("LIME recovers the signs and order of a linear model's effects", function()
    local l = E.lime(lm, x, 1, {samples = 2000, seed = 3})
    local want = H.T(w[1]) * x
    for b = 1, 2 do
      local got, exp = l[b]:totable(), want[b]:totable()
      local order = function(v)
        local idx = {1, 2, 3, 4, 5}
        table.sort(idx, function(i, j) return v[i] < v[j] end)
        return idx
      end
      assert.same(order(exp), order(got))
      for i = 1, 5 do
        if math.abs(exp[i]) > 0.05 then assert.equal(exp[i] > 0, got[i] > 0) end
      end
    end
  end)

  it("feature ablation and smoothgrad of a linear model", function()
    H.close(E.feature_ablation(lm, x, 1), H.T(w[1]) * x, 1e-12, "w_i x_i")
    H.close(E.feature_ablation(lm, x, 1, {baseline = 1}), H.T(w[1]) * (x - 1), 1e-12, "baseline")
    local sg = E.smoothgrad(lm, x, 2, {samples = 8, seed = 4})
    H.close(sg, tide.ones(2, 5, {dtype = "float64"}), 1e-12, "constant gradient")
  end)
end)

describe("misuse", function()
  local lm = linear({{1, 2}, {3, 4}}, {0, 0})
  local x = H.T({{1, 2}})
  local cases = {
    {"explain.saliency: target 3 out of range for a model with 2 outputs (expected 1..2)",
     function() E.saliency(lm, x, 3) end},
    {"explain.integrated_gradients: target must be an integer class index or an int64 tensor of 1",
     function() E.integrated_gradients(lm, x, 1.5) end},
    {"explain.occlusion: target must be an integer class index or an int64 tensor of 1 (one per "
     .. "example), got int64 of shape 2", function() E.occlusion(lm, x, H.long({1, 2}), {window = 1}) end},
    {"explain.saliency: expected x to be a float batch (N x ...), got float64 of shape 2",
     function() E.saliency(lm, H.T({1, 2}), 1) end},
    {"explain.saliency: the model's output does not require grad",
     function() E.saliency(function(z) return lm(z):detach() end, x, 1) end},
    {"explain.saliency: the model must return an N x C tensor of scores for a batch of 1, got 2",
     function() E.saliency(function(z) return lm(z):view(2) end, x, 1) end},
    {"explain.smoothgrad: unknown option 'sample'", function() E.smoothgrad(lm, x, 1, {sample = 3}) end},
    {"explain.integrated_gradients: method must be \"riemann_trapezoid\" or \"gausslegendre\"",
     function() E.integrated_gradients(lm, x, 1, {method = "left"}) end},
    {"explain.occlusion: the window option is required", function() E.occlusion(lm, x, 1) end},
    {"explain.gradcam: the layer did not run in the model's forward",
     function() E.gradcam(lm, x, 1, {layer = nn.ReLU()}) end},
    {"explain.gradcam: the layer's output must be N x K x h x w maps, got 1x2",
     function() E.gradcam(lm, x, 1, {layer = lm}) end},
    {"explain.kernel_shap: background must be a tensor of examples shaped like x's (2), got 3",
     function() E.kernel_shap(lm, x, 1, {background = H.T({1, 2, 3})}) end},
    {"explain.lime: features must be an int64 tensor of group ids shaped like one example (2)",
     function() E.lime(lm, x, 1, {features = H.long({1, 2, 3})}) end},
    {"explain.integrated_gradients: baseline must be a number or a tensor broadcasting to x's "
     .. "shape 1x2, got 3", function() E.integrated_gradients(lm, x, 1, {baseline = H.T({1, 2, 3})}) end},
  }
  for _, c in ipairs(cases) do
    it("raises '" .. c[1] .. "'", function() H.err(c[1], c[2]) end)
  end
end)

describe("plot.attribution", function()
  local A = require "tide.plot.attribution"
  local plot = require "tide.plot"
  local x = tide.zeros(2, 1, 4, 4)
  x[{1, 1, 1, 1}] = 1
  local a = tide.zeros(2, 1, 4, 4)
  a[{1, 1, 1, 1}], a[{1, 1, 1, 2}], a[{2, 1, 4, 4}] = 2, -1, -3

  it("colours attributions on a diverging map centred on zero, per example", function()
    local p, per = A.panels(x, a, {})
    assert.equal(2, per)
    assert.same({4, 3, 4, 4}, p.shape)            -- image, heat map, image, heat map
    local px = function(k, i, j) return p[{k, {}, i, j}]:totable() end
    assert.same({1, 1, 1}, px(1, 1, 1))           -- the image, gray to RGB in [0, 1]
    assert.same({0, 0, 0}, px(1, 2, 2))
    assert.same({1, 0, 0}, px(2, 1, 1))           -- the largest positive: red
    H.close(H.T(px(2, 1, 2)), H.T({0.5, 0.5, 1}), 1e-6, "half the largest, negative: light blue")
    assert.same({1, 1, 1}, px(2, 3, 3))           -- zero: white
    assert.same({0, 0, 1}, px(4, 4, 4))           -- example 2's own scale: full blue
    local o = A.panels(x, a, {overlay = true, alpha = 1})
    assert.same({2, 3, 4, 4}, o.shape)
    assert.same({1, 0, 0}, o[{1, {}, 1, 1}]:totable())
  end)

  it("writes a PNG grid and rejects misuse", function()
    local path = os.tmpname() .. ".png"
    plot.attribution(x, a, {path = path, nrow = 2})
    local f = assert(io.open(path, "rb"))
    local s = f:read("a")
    f:close()
    os.remove(path)
    assert.equal("\137PNG\r\n\26\n", s:sub(1, 8))
    H.err("plot.attribution: attributions of shape 2x1x3x4 do not match x of shape 2x1x4x4",
          function() plot.attribution(x, tide.zeros(2, 1, 3, 4)) end)
    H.err("plot.attribution: unknown option 'overlap'",
          function() plot.attribution(x, a, {overlap = true}) end)
  end)
end)
