-- tests/lua/norm_spec.lua: layer_norm, batch_norm and embedding beyond the one-line checks of
-- ops_spec.lua: running statistics over several steps against PyTorch, eval mode, sizes that
-- take the threaded paths against compositions of primitive ops, and the error messages.
-- PyTorch numbers come from torch 1.13 on the deterministic inputs built here (the same
-- formulas in Python).
local tide = require "tide"

local H = require "helpers"
local close, T, long, err = H.close, H.T, H.long, H.err

-- x_k[i][j] = sin(1.3 i + 0.7 j + k) (j + 1) + j, 6 x 3 (0-based i, j as in Python)
local function bn_input(k, dtype)
  local rows = {}
  for i = 0, 5 do
    rows[i + 1] = {}
    for j = 0, 2 do rows[i + 1][j + 1] = math.sin(1.3 * i + 0.7 * j + k) * (j + 1) + j end
  end
  return T(rows, dtype)
end

describe("batch_norm", function()
  for _, dt in ipairs({"float64", "float32"}) do
    local tol = dt == "float64" and 1e-10 or 2e-6
    it("running statistics after three training steps match PyTorch (" .. dt .. ")", function()
      local rm, rv = tide.zeros(3, {dtype = dt}), tide.ones(3, {dtype = dt})
      local w, b = T({1.5, -0.5, 2.0}, dt), T({0.1, 0.2, -0.3}, dt)
      local x, y
      for k = 0, 2 do
        x = bn_input(k, dt)
        y = tide.batch_norm(x, rm, rv, w, b, {training = true, momentum = 0.2})
      end
      close(rm, T{0.062284120006, 0.606753144528, 1.061629884405}, tol, "running_mean")
      close(rv, T{0.799749524259, 1.638208418247, 3.001300208981}, tol, "running_var")
      close(y, T({1.661151326099, -0.079198586159, -0.871381890807, -0.570028497087,
                  0.825542469331, -3.138450561588, -2.317984386749, 0.883199327882,
                  -0.944093058307, -1.021956869507, 0.009304556641, 2.496951735896,
                  1.41937070561, -0.515883957207, 2.143545136004, 1.429447721634,
                  0.077036189512, -1.486571361198}):view(6, 3), tol * 10, "output")
      local ev = tide.batch_norm(x, rm, rv, w, b)        -- eval is the default, as in F.batch_norm
      close(ev, T({1.520698042105, -0.287529601238, -0.101727158339, -0.269056688543,
                   0.637664150088, -2.679779682473, -1.671190344457, 0.696624407201,
                   -0.184412438817, -0.631573834874, -0.197025744698, 3.72865571465,
                   1.326752218104, -0.734086739478, 3.326770765755, 1.334835558995,
                   -0.127762961585, -0.801304893854}):view(6, 3), tol * 10, "eval output")
      assert.equal(dt, ev.dtype)
    end)
  end

  it("4-D input: running statistics and input gradients match PyTorch", function()
    local vals = {}
    for n = 0, 2 do
      vals[n + 1] = {}
      for c = 0, 1 do
        vals[n + 1][c + 1] = {}
        for h = 0, 1 do
          vals[n + 1][c + 1][h + 1] = {}
          for w = 0, 2 do
            vals[n + 1][c + 1][h + 1][w + 1] = math.cos(0.3 * n + 0.5 * c + 0.2 * h + 0.9 * w)
          end
        end
      end
    end
    local x = T(vals)
    x.requires_grad = true
    local rm, rv = tide.zeros(2, {dtype = "float64"}), tide.ones(2, {dtype = "float64"})
    tide.batch_norm(x, rm, rv, nil, nil, {training = true})
    local y = tide.batch_norm(x, rm, rv, {training = true})  -- options may follow the stats
    close(rm, T{0.036687924616, -0.031161158221}, 1e-10, "running_mean")
    close(rv, T{0.889513168113, 0.890971291592}, 1e-10, "running_var")
    y:backward(tide.arange(0, 35, {dtype = "float64"}):view(3, 2, 2, 3))
    close(x.grad:view(-1), T{-15.64295490204, -17.53229131509, -23.747965853943, -11.054448464917,
      -14.305638584785, -20.713808634205, -13.434073277815, -18.258225612986, -24.245814791485,
      -9.725139953564, -15.331017340066, -20.737021977793, 3.033601334079, -0.829246575385,
      -7.214065251718, 7.090348969623, 2.173219956913, -3.92686198126, 3.844582351438,
      -2.046298136427, -7.055229153555, 7.158574911982, 0.923616901047, -3.098401675036,
      20.925334020137, 15.576115722062, 9.734574153595, 24.514198895579, 18.51244788887,
      13.407440622486, 20.560325337177, 14.26973081341, 10.827690154891, 23.605745970482,
      17.439456872294, 15.301498606006}, 1e-9, "grad")
  end)

  it("matches the composite formula on a threaded size, forward and backward", function()
    tide.manual_seed(5)
    local x = (tide.randn(64, 16, 8, 8) * 3 + 1):detach()
    x.requires_grad = true
    local w, b = tide.randn(16), tide.randn(16)
    w.requires_grad, b.requires_grad = true, true
    local g = tide.randn(64, 16, 8, 8)
    local y = tide.batch_norm(x, nil, nil, w, b, {training = true})
    y:backward(g)
    local gx, gw, gb = x.grad, w.grad, b.grad
    x.grad, w.grad, b.grad = nil, nil, nil
    local xd = x:double()
    local m = xd:mean(4, true):mean(3, true):mean(1, true)
    local v = ((xd - m) ^ 2):mean(4, true):mean(3, true):mean(1, true)
    local ref = (xd - m) / (v + 1e-5):sqrt() * w:double():view(1, 16, 1, 1) + b:double():view(1, 16, 1, 1)
    close(y, ref, 1e-4, "output")
    ref:backward(g:double())
    close(gx, x.grad, 1e-4, "grad x")
    close(gw, w.grad, 1e-2, "grad weight")                -- sums of 4096 terms in float32
    close(gb, b.grad, 1e-2, "grad bias")
  end)

  it("N x C on a threaded size matches the composite in eval mode", function()
    tide.manual_seed(6)
    local x, rm, rv = tide.randn(4096, 24, {dtype = "float64"}), tide.randn(24, {dtype = "float64"}),
                      tide.rand(24, {dtype = "float64"}) + 0.5
    x.requires_grad = true
    local y = tide.batch_norm(x, rm, rv, {eps = 1e-3})
    local ref = (x - rm) / (rv + 1e-3):sqrt()
    close(y, ref, 1e-12, "eval output")
    y:sum():backward()
    close(x.grad, (1 / (rv + 1e-3):sqrt()):expand(4096, 24), 1e-12, "eval grad")
  end)

  it("two training forwards before one backward: running stats are no saved input", function()
    local rm, rv = tide.zeros(3), tide.ones(3)
    local w = tide.ones(3)
    w.requires_grad = true
    local a = tide.batch_norm(bn_input(0, "float32"), rm, rv, w, nil, {training = true})
    local b = tide.batch_norm(bn_input(1, "float32"), rm, rv, w, nil, {training = true})
    ;(a + b):sum():backward()                            -- would fail if rm/rv were version-checked
    assert.is_not_nil(w.grad)
    assert.matches("Backward$", a.grad_fn)
  end)

  it("updates running statistics under no_grad and leaves eval stats alone", function()
    local rm, rv = tide.zeros(3), tide.ones(3)
    tide.no_grad(function() tide.batch_norm(bn_input(0), rm, rv, {training = true}) end)
    assert.is_true(rm:abs():sum():item() > 0)
    local before = rm:clone()
    tide.batch_norm(bn_input(1), rm, rv)
    close(rm, before, 0, "eval must not update")
  end)

  it("reports misuse", function()
    local x = bn_input(0)
    err("batch_norm: running_mean and running_var are required in eval mode", tide.batch_norm, x)
    err("batch_norm: expected more than 1 value per channel when training, got input of shape 1x3",
        tide.batch_norm, tide.ones(1, 3), nil, nil, {training = true})
    err("batch_norm: running_mean has shape 4, expected 3 (the channels of input 6x3)",
        tide.batch_norm, x, tide.zeros(4), tide.ones(4))
    err("batch_norm: weight has shape 2, expected 3", tide.batch_norm, x, nil, nil, tide.ones(2),
        nil, {training = true})
    err("batch_norm: expected an input of 2 or more dims", tide.batch_norm, tide.ones(3),
        tide.zeros(3), tide.ones(3))
    err("batch_norm: give both running_mean and running_var", tide.batch_norm, x, tide.zeros(3), nil,
        {training = true})
    err("batch_norm: unknown option 'momentun'", tide.batch_norm, x, nil, nil, {momentun = 0.1})
    err("batch_norm: expected float input, got int64", tide.batch_norm, long{{1, 2}, {3, 4}},
        nil, nil, {training = true})
    err("batch_norm: weight must be a tensor or nil, got number", tide.batch_norm, x, nil, nil, 3)
  end)
end)

describe("layer_norm", function()
  for _, dt in ipairs({"float32", "float64"}) do
    it("matches the composite formula on 32*64 x 128 (" .. dt .. "), forward and backward", function()
      tide.manual_seed(7)
      local x = (tide.randn(32 * 64, 128, {dtype = dt}) * 2 + 0.5):detach()
      local w, b = tide.randn(128, {dtype = dt}), tide.randn(128, {dtype = dt})
      for _, t in ipairs({x, w, b}) do t.requires_grad = true end
      local g = tide.randn(32 * 64, 128, {dtype = dt})
      local y = tide.layer_norm(x, 128, w, b)
      y:backward(g)
      local gx, gw, gb = x.grad, w.grad, b.grad
      x.grad, w.grad, b.grad = nil, nil, nil
      local m = x:mean(2, true)
      local v = ((x - m) ^ 2):mean(2, true)
      local ref = (x - m) / (v + 1e-5):sqrt() * w + b
      local tol = dt == "float64" and 1e-10 or 2e-4
      close(y, ref, tol, "output")
      ref:backward(g)
      close(gx, x.grad, tol, "grad x")
      close(gw, w.grad, tol * 100, "grad weight")
      close(gb, b.grad, tol * 100, "grad bias")
    end)
  end

  it("normalises several trailing dims, with weight only or bias only", function()
    tide.manual_seed(8)
    local x = tide.randn(2, 3, 4, {dtype = "float64"})
    local flat = tide.layer_norm(x:view(2, 12), 12):view(2, 3, 4)
    close(tide.layer_norm(x, {3, 4}), flat, 1e-12, "two dims")
    local w = tide.randn(3, 4, {dtype = "float64"})
    close(tide.layer_norm(x, {3, 4}, w), flat * w, 1e-12, "weight only")
    close(tide.layer_norm(x, {3, 4}, nil, w), flat + w, 1e-12, "bias only")
    close(tide.layer_norm(x, 4, {eps = 0.5}):mean(3), tide.zeros(2, 3), 1e-12, "options early")
  end)

  it("reports misuse", function()
    local x = tide.ones(4, 6)
    err("layer_norm: normalized_shape 5 does not match the last dims of input 4x6", tide.layer_norm,
        x, 5)
    err("layer_norm: weight has shape 5, expected 6 (normalized_shape)", tide.layer_norm, x, 6,
        tide.ones(5))
    err("layer_norm: expected float input, got int64", tide.layer_norm, long{1, 2}, 2)
    err("layer_norm: unknown option 'epsilon'", tide.layer_norm, x, 6, nil, nil, {epsilon = 1})
    err("layer_norm: normalized_shape must be an integer or a table of integers, got no value",
        tide.layer_norm, x)
  end)
end)

describe("embedding", function()
  it("picks rows and index-adds gradients, repeated indices included", function()
    local w = T{{1, 2}, {3, 4}, {5, 6}}
    w.requires_grad = true
    local idx = long{{3, 1, 3}, {2, 3, 3}}
    local y = tide.embedding(idx, w)
    assert.same({2, 3, 2}, y.shape)
    close(y[1][1], T{5, 6}, 0)
    y:backward(tide.ones(2, 3, 2, {dtype = "float64"}))
    close(w.grad, T{{1, 1}, {1, 1}, {4, 4}}, 0, "index-add")
    assert.is_nil(idx.grad)
  end)

  it("matches index() on a threaded size", function()
    tide.manual_seed(9)
    local w = tide.randn(1000, 64)
    local idx = tide.randint(1, 1000, {32, 64})
    close(tide.embedding(idx, w), w:index(1, idx:view(-1)):view(32, 64, 64), 0, "rows")
    close(idx:embedding(w), tide.embedding(idx, w), 0, "method form")
  end)

  it("reports misuse", function()
    local w = tide.ones(10, 3)
    err("embedding: index 11 out of range 1..10 (position 2)", tide.embedding, long{1, 11}, w)
    err("embedding: index 0 out of range 1..10 (position 1)", tide.embedding, long{0}, w)
    err("embedding: expected int64 indices, got float32", tide.embedding, tide.ones(2), w)
    err("embedding: expected a 2-D float weight (num_embeddings x dim), got 10 float32",
        tide.embedding, long{1}, tide.ones(10))
  end)
end)
