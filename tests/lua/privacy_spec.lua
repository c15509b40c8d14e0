-- tests/lua/privacy_spec.lua: tide.privacy (DP-SGD). Per-example gradients against B separate
-- backward passes for every supported layer, clipping and noise statistics, Poisson batches,
-- noise 0 without clipping = plain SGD, tide.fit's epsilon and budget, and bad input.
local tide = require "tide"
local H = require "helpers"
local nn, optim, data = require "tide.nn", require "tide.optim", require "tide.data"
local privacy = require "tide.privacy"

local function maxdiff(a, b) return (a - b):abs():max():item() end

local err = H.errmsg

-- a loader over n random examples (only make_private's sizes matter where it is not iterated)
local function loader_of(x, y, b) return data.DataLoader(data.TensorDataset(x, y), {batch_size = b}) end

-- The per-example gradients of lossf(model(x_i), y_i), one backward pass per example.
local function separate(model, lossf, x, y)
  local per = {}
  for i = 1, x:size(1) do
    model:zero_grad()
    lossf(model(x:narrow(1, i, 1)), y:narrow(1, i, 1)):backward()
    per[i] = {}
    for j, p in ipairs(model:parameters()) do per[i][j] = p.grad:clone() end
  end
  return per
end

-- DP-SGD's gradient (noise 0, clipping at C) from one batched pass, against the clipped mean of
-- the separate gradients; C at the median norm clips about half of the examples.
local function check_layers(build, x, y, lossf)
  tide.manual_seed(3)
  local model = build():to("float64")
  lossf = lossf or nn.CrossEntropyLoss()
  local B = x:size(1)
  local per = separate(model, lossf, x, y)
  local norms = {}
  for i = 1, B do
    local s = 0
    for _, g in ipairs(per[i]) do s = s + (g * g):sum():item() end
    norms[i] = math.sqrt(s)
  end
  local sorted = table.move(norms, 1, B, 1, {})
  table.sort(sorted)
  local C = sorted[B // 2 + 1]
  local opt = optim.SGD(model:parameters(), {lr = 0})
  local dm, dopt = privacy.make_private(model, opt, loader_of(x, y, B),
    {noise_multiplier = 0, max_grad_norm = C, poisson = false})
  dopt:zero_grad()
  lossf(dm(x), y):backward()
  dopt:step()
  for i = 1, B do assert.near(norms[i], dopt._dp.last_norms[i], 1e-9 * (1 + norms[i])) end
  for j, p in ipairs(model:parameters()) do
    local want = tide.zeros(p.shape, {dtype = "float64"})
    for i = 1, B do want = want + per[i][j] * math.min(1, C / (norms[i] + 1e-6)) end
    assert.is_true(maxdiff(p.grad, want / B) < 1e-10, "parameter " .. j)
  end
end

describe("per-example gradients", function()
  it("Linear on vectors (ghost norms) and on sequences (Gram, and materialised)", function()
    tide.manual_seed(1)
    local x, y = tide.randn(6, 5, {dtype = "float64"}), tide.randint(1, 3, {6})
    check_layers(function() return nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)) end, x, y)
    local xs = tide.randn(5, 3, 4, {dtype = "float64"})   -- T = 3: 9 <= 4*6, Gram
    local Mean = nn.Module:extend("MeanT")
    function Mean.forward(_, t) return t:mean(2) end
    check_layers(function() return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), Mean(), nn.Linear(6, 3)) end,
                 xs, tide.randint(1, 3, {5}))
    local xl = tide.randn(4, 7, 2, {dtype = "float64"})   -- T = 7: 49 > 2*2, materialised
    check_layers(function() return nn.Sequential(nn.Linear(2, 2, {bias = false}), Mean(), nn.Linear(2, 3)) end,
                 xl, tide.randint(1, 3, {4}))
  end)

  it("Conv2d (stride, padding, groups)", function()
    tide.manual_seed(2)
    local x, y = tide.randn(5, 2, 6, 6, {dtype = "float64"}), tide.randint(1, 3, {5})
    check_layers(function()
      return nn.Sequential(nn.Conv2d(2, 4, 3, {padding = 1}), nn.ReLU(),
                           nn.Conv2d(4, 4, 3, {stride = 2, groups = 2}), nn.Flatten(), nn.Linear(16, 3))
    end, x, y)
  end)

  it("Embedding with repeated indices, LayerNorm and GroupNorm", function()
    tide.manual_seed(4)
    local idx = tide.tensor({{1, 2, 1}, {3, 3, 3}, {4, 5, 6}, {2, 2, 7}}, {dtype = "int64"})
    local Mean = nn.Module:extend("MeanT2")
    function Mean.forward(_, t) return t:mean(2) end
    check_layers(function()
      return nn.Sequential(nn.Embedding(8, 4), nn.LayerNorm(4), Mean(), nn.Linear(4, 3))
    end, idx, tide.randint(1, 3, {4}))
    local x = tide.randn(4, 4, 3, 3, {dtype = "float64"})
    check_layers(function()
      return nn.Sequential(nn.Conv2d(4, 4, 1), nn.GroupNorm(2, 4), nn.Flatten(), nn.Linear(36, 3))
    end, x, tide.randint(1, 3, {4}))
  end)

  it("noise 0 and no clipping give plain SGD's steps", function()
    tide.manual_seed(5)
    local X, Y = tide.randn(48, 10), tide.randint(1, 3, {48})
    local function run(private)
      tide.manual_seed(6)
      local model = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3))
      local opt = optim.SGD(model:parameters(), {lr = 0.1, momentum = 0.9})
      local loader = loader_of(X, Y, 16)
      if private then
        model, opt, loader = privacy.make_private(model, opt, loader,
          {noise_multiplier = 0, max_grad_norm = math.huge, poisson = false})
      end
      local lossf = nn.CrossEntropyLoss()
      for _ = 1, 2 do
        for x, y in loader:iter() do
          opt:zero_grad(); lossf(model(x), y):backward(); opt:step()
        end
      end
      return model:parameters()
    end
    local a, b = run(false), run(true)
    assert.is_true(maxdiff(a[1], b[1]) > -1)
    for j = 1, #a do assert.is_true(maxdiff(a[j], b[j]) < 1e-6, "parameter " .. j) end
    local init = (function() tide.manual_seed(6); return nn.Linear(10, 8).weight end)()
    assert.is_true(maxdiff(init, b[1]) > 1e-3)   -- it did train
  end)
end)

describe("clipping and noise", function()
  it("clips one example's gradient to max_grad_norm exactly", function()
    tide.manual_seed(7)
    local model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 2)):to("float64")
    local x, y = tide.randn(1, 6, {dtype = "float64"}) * 10, tide.tensor({2}, {dtype = "int64"})
    local m, opt = privacy.make_private(model, optim.SGD(model:parameters(), {lr = 0}),
      loader_of(x, y, 1), {noise_multiplier = 0, max_grad_norm = 0.01, poisson = false})
    opt:zero_grad(); nn.CrossEntropyLoss()(m(x), y):backward(); opt:step()
    local s = 0
    for _, p in ipairs(model:parameters()) do s = s + (p.grad * p.grad):sum():item() end
    assert.near(0.01, math.sqrt(s), 1e-7)   -- C n / (n + 1e-6), as Opacus
  end)

  it("adds N(0, (sigma C)^2) noise per coordinate, reproducible with a seed", function()
    local function noise(seed)
      tide.manual_seed(8)
      local model = nn.Linear(100, 100)
      local _, opt = privacy.make_private(model, optim.SGD(model:parameters(), {lr = 0}),
        loader_of(tide.zeros(40, 100), tide.zeros(40), 10),
        {noise_multiplier = 1.5, max_grad_norm = 2, poisson = false, seed = seed})
      opt:zero_grad(); opt:step()              -- no example recorded: the noise alone
      return model.weight.grad * 10
    end
    local g = noise(11)
    local n = g:numel()
    assert.near(0, g:mean():item(), 4 * 3 / math.sqrt(n))
    assert.near(3, g:std():item(), 3 * 0.05)
    assert.equal(0, maxdiff(g, noise(11)))
    assert.is_true(maxdiff(g, noise(12)) > 0.1)
  end)
end)

describe("Poisson sampling", function()
  it("takes each example with probability 1/#loader, seeded, sizes vary, may be empty", function()
    local x, y = tide.arange(1, 200):view(200, 1), tide.zeros(200)
    local m = nn.Linear(1, 1)
    local _, _, dl = privacy.make_private(m, optim.SGD(m:parameters(), {lr = 0}), loader_of(x, y, 20),
      {noise_multiplier = 1, max_grad_norm = 1, seed = 3})
    assert.equal(10, #dl)
    local sizes, total = {}, 0
    for bx in dl:iter() do sizes[#sizes + 1] = bx:size(1); total = total + bx:size(1) end
    assert.equal(10, #sizes)
    assert.is_true(total > 120 and total < 280)
    table.sort(sizes)
    assert.is_true(sizes[1] < sizes[#sizes])
    local _, _, dl2 = privacy.make_private(nn.Linear(1, 1), optim.SGD(m:parameters(), {lr = 0}),
      loader_of(x, y, 20), {noise_multiplier = 1, max_grad_norm = 1, seed = 3})
    local a, b = dl:positions(1, 1), dl2:positions(1, 1)
    assert.same(a:totable(), b:totable())
    local _, _, tiny = privacy.make_private(nn.Linear(1, 1), optim.SGD(m:parameters(), {lr = 0}),
      loader_of(x:narrow(1, 1, 3), y:narrow(1, 1, 3), 1), {noise_multiplier = 1, max_grad_norm = 1, seed = 1})
    local empty = false
    for _ = 1, 5 do for bx in tiny:iter() do empty = empty or bx:size(1) == 0 end end
    assert.is_true(empty)
  end)
end)

describe("tide.fit with a DP optimizer", function()
  it("records epsilon per epoch and stops at the budget", function()
    tide.manual_seed(9)
    local X, Y = tide.randn(64, 4), tide.randint(1, 2, {64})
    local model = nn.Sequential(nn.Linear(4, 2))
    local m, opt, dl = privacy.make_private(model, optim.SGD(model:parameters(), {lr = 0.1}),
      loader_of(X, Y, 16), {noise_multiplier = 1, max_grad_norm = 1, target_epsilon = 6, seed = 2})
    local h = tide.fit(m, {train = dl, optimizer = opt, epochs = 50, progress = false})
    assert.is_true(#h.epsilon >= 2 and h.epochs < 50)
    assert.is_true(h.epsilon[2] > h.epsilon[1])
    assert.is_true(h.epsilon[#h.epsilon] <= 6)
    assert.is_true(opt:epsilon(nil, opt.privacy.steps + 1) > 6)
    assert.near(h.epsilon[#h.epsilon], privacy.epsilon{noise_multiplier = 1, sample_rate = 0.25,
      steps = opt.privacy.steps, delta = 1e-5}, 1e-12)
  end)
end)

describe("bad input", function()
  local function mk(model, o)
    return privacy.make_private(model, optim.SGD(model:parameters(), {lr = 0.1}),
                                loader_of(tide.zeros(8, 2), tide.zeros(8), 4), o)
  end
  it("refuses BatchNorm, naming GroupNorm, and layers without a rule", function()
    assert.matches("'2' is BatchNorm1d%(4%), which mixes the examples of a batch.*nn.GroupNorm",
      err(mk, nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4)), {noise_multiplier = 1, max_grad_norm = 1}))
    assert.matches("'1' %(LSTM%) has trainable parameters and no per%-example gradient rule",
      err(mk, nn.Sequential(nn.LSTM(2, 2)), {noise_multiplier = 1, max_grad_norm = 1}))
  end)
  it("checks the options", function()
    local m = nn.Linear(2, 2)
    assert.matches("max_grad_norm must be a positive number, got nil", err(mk, m, {noise_multiplier = 1}))
    assert.matches("unknown option 'noise'", err(mk, m, {noise = 1, max_grad_norm = 1}))
    assert.matches("give noise_multiplier or target_epsilon", err(mk, m, {max_grad_norm = 1}))
    assert.matches("target_epsilon needs epochs", err(mk, m, {max_grad_norm = 1, target_epsilon = 1}))
    assert.matches("delta must be a number in %(0, 1%), got 2",
      err(mk, m, {max_grad_norm = 1, noise_multiplier = 1, target_delta = 2}))
    assert.matches("noise_multiplier must be a non%-negative number, got %-1",
      err(mk, m, {max_grad_norm = 1, noise_multiplier = -1}))
    assert.matches("tide.privacy.epsilon: steps must be a non%-negative integer, got 1.5",
      err(privacy.epsilon, {noise_multiplier = 1, sample_rate = 0.1, steps = 1.5, delta = 1e-5}))
    assert.matches("sample_rate must be a number in %(0, 1%], got 0",
      err(privacy.get_noise_multiplier, 1, 1e-5, 0, 1))
  end)
end)

describe("GroupNorm", function()
  it("normalises each example's groups; gradients pass gradcheck", function()
    local g = nn.GroupNorm(2, 4):to("float64")
    local x = tide.randn(3, 4, 5, {dtype = "float64"})
    local y = g(x):reshape(3, 2, -1)
    assert.is_true(y:mean(3):abs():max():item() < 1e-12)
    assert.is_true((y:var(3, {unbiased = false}) - 1):abs():max():item() < 1e-4)
    x.requires_grad = true
    assert.is_true(tide.autograd.gradcheck(function(t) return g(t) end, {x}))
    assert.matches("GroupNorm%(3, 4%): num_groups must divide num_channels", err(nn.GroupNorm, 3, 4))
  end)
end)
