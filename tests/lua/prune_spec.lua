-- tests/lua/prune_spec.lua: tide.prune (doc/prune.md). Masks against torch.nn.utils.prune's for
-- the same weights (tests/fixtures/prune.safetensors from scripts/gen_prune_fixtures.py, ties
-- included), masks holding through training with every optimizer, checkpoints resuming a
-- pruning run bit for bit, schedules, remove, sparsity, compact, and bad input.
local tide = require "tide"
local nn = require "tide.nn"
local optim = require "tide.optim"
local models = require "tide.models"
local H = require "helpers"

local P = tide.prune
local F = tide.load("tests/fixtures/prune.safetensors", {flat = true})

-- a bias-free layer holding a copy of w (Linear for 2-D, Conv2d for 4-D)
local function layer(w)
  local m
  if w:dim() == 2 then m = nn.Linear(w:size(2), w:size(1), {bias = false})
  else m = nn.Conv2d(w:size(2), w:size(1), {w:size(3), w:size(4)}, {bias = false}) end
  tide.no_grad(function() m.weight:copy_(w) end)
  return m
end

local function same(want, got, what)
  assert.same(want.shape, got.shape, what)
  assert.equal(0, H.maxdiff(want, got), what)
end

describe("tide.prune masks match torch.nn.utils.prune", function()
  it("magnitude: l1_unstructured, a fraction, again on top, a count", function()
    local m = layer(F.l1_w)
    P.magnitude(m, 0.3)                          -- round(0.3 x 30) = 9
    same(F.l1_m1, m.weight_mask, "0.3")
    P.magnitude(m, 0.5)                          -- half of the 21 left: round(10.5) = 10
    same(F.l1_m2, m.weight_mask, "0.5 on top")
    assert.equal(19, m.weight_mask:eq(0):sum():item())
    local c = layer(F.l1_w)
    P.magnitude(c, 7)
    same(F.l1_m3, c.weight_mask, "a count")
  end)

  it("ties: torch.topk's choice among equal magnitudes, on both of its paths", function()
    local m = layer(F.ties_w)
    P.magnitude(m, 0.4)
    same(F.ties_m, m.weight_mask, "8x8 of -2..2")
    local b1, b2 = layer(F.big_w), layer(F.big_w)
    P.magnitude(b1, 20)                          -- 20 x 64 <= 2000: partial_sort
    same(F.big_m1, b1.weight_mask, "20 of 2000")
    P.magnitude(b2, 0.5)                         -- nth_element
    same(F.big_m2, b2.weight_mask, "half of 2000")
  end)

  it("global: global_unstructured over three layers, twice", function()
    local seq = nn.Sequential(layer(F.g1_w), layer(F.g2_w), layer(F.g3_w))
    P.magnitude(seq, 0.6, {scope = "global"})
    for i = 1, 3 do same(F["g" .. i .. "_m1"], seq[i].weight_mask, "layer " .. i) end
    P.magnitude(seq, 0.5, {scope = "global"})
    for i = 1, 3 do same(F["g" .. i .. "_m2"], seq[i].weight_mask, "layer " .. i .. " again") end
  end)

  it("structured: ln_structured L1 and L2, after unstructured, ties, along dim 2", function()
    local m1, m2, m3 = layer(F.s_w), layer(F.s_w), layer(F.s_w)
    P.structured(m1, 0.5)
    same(F.s_m1, m1.weight_mask, "L1")
    P.structured(m2, 0.3, {norm = 2})            -- round(2.4) = 2 channels
    same(F.s_m2, m2.weight_mask, "L2")
    P.magnitude(m3, 0.3)
    P.structured(m3, 0.5)
    same(F.s_m3, m3.weight_mask, "after unstructured")
    local t = layer(F.st_w)                      -- every row's L1 norm is 10
    P.structured(t, 0.5)
    same(F.st_m, t.weight_mask, "ties")
    local d = layer(F.sd_w)
    P.structured(d, 3, {dim = 2, norm = 2})
    same(F.sd_m, d.weight_mask, "dim 2")
  end)

  it("a PyTorch state dict of a pruned model loads into a pruned tide model", function()
    local seq = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 2))
    P.magnitude(seq, 0)                          -- masks of ones: the keys exist
    local sd = {}
    for k, v in pairs(F) do
      local name = type(k) == "string" and k:match("^seq%.(.+)$")
      if name then sd[name] = v end
    end
    seq:load_state_dict(sd, {from = "pytorch"})
    H.close(F.seq_y, seq(F.seq_x), 1e-6, "output")
    local keys = {}
    for k in pairs(seq:state_dict{to = "pytorch"}) do keys[#keys + 1] = k end
    table.sort(keys)
    local want = {}
    for k in F.keys:gmatch("[^,]+") do want[#want + 1] = k end
    table.sort(want)
    assert.same(want, keys)
  end)
end)

describe("tide.prune in training", function()
  local function run(make_opt, before)
    tide.manual_seed(3)
    local m = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    local opt = before and make_opt(m:parameters())
    P.magnitude(m, 0.5)
    opt = opt or make_opt(m:parameters())
    local zeros = m[1].weight_mask:eq(0)
    local x, y = tide.randn(16, 6), tide.randn(16, 3)
    for _ = 1, 5 do
      opt:zero_grad()
      local loss = (m(x) - y):pow(2):mean()
      loss:backward()
      assert.equal(0, m[1].weight_orig.grad:masked_select(zeros):abs():sum():item())
      opt:step()
    end
    m(x)
    assert.equal(0, m[1].weight:masked_select(zeros):abs():sum():item())
    assert.equal(0.5, P.sparsity(m).layers["1"])
    return m
  end

  it("pruned weights stay zero with SGD, momentum, Adam, AdamW, RMSprop", function()
    local makers = {
      function(p) return optim.SGD(p, {lr = 0.1}) end,
      function(p) return optim.SGD(p, {lr = 0.1, momentum = 0.9, weight_decay = 0.01}) end,
      function(p) return optim.Adam(p, {lr = 0.05}) end,
      function(p) return optim.AdamW(p, {lr = 0.05, weight_decay = 0.1}) end,
      function(p) return optim.RMSprop(p, {lr = 0.01}) end,
    }
    for _, make in ipairs(makers) do
      run(make, false)
      run(make, true)                            -- an optimizer built before pruning
    end
  end)

  it("parameters keep their order; remove makes the masks permanent", function()
    local m = nn.Sequential(nn.Linear(4, 3))
    local w, b = m[1].weight, m[1].bias
    P.magnitude(m, 0.5)
    local ps = m:parameters()
    assert.equal(w, ps[1])                       -- the same tensor, now weight_orig
    assert.equal(b, ps[2])
    assert.is_nil(m[1].bias_mask)
    local x = tide.randn(2, 4)
    local y = m(x)
    P.remove(m)
    assert.equal(w, m[1].weight)
    assert.is_nil(rawget(m[1], "weight_orig"))
    local keys = {}
    for k in pairs(m:state_dict()) do keys[#keys + 1] = k end
    assert.same({"1.weight", "1.bias"}, keys)
    assert.equal(6, m[1].weight:eq(0):sum():item())
    same(y, m(x), "output after remove")
    assert.equal(0.5, P.sparsity(m).total)
  end)

  it("a checkpoint resumes a gradual pruning run bit for bit", function()
    local function setup(seed)
      tide.manual_seed(seed)
      local m = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 3))
      P.magnitude(m, 0)
      local opt = optim.Adam(m:parameters(), {lr = 0.02})
      return m, opt, P.schedule{from = 0, to = 0.8, steps = 6}
    end
    tide.manual_seed(5)
    local x, y = tide.randn(8, 6), tide.randn(8, 3)
    local function train(m, opt, s, from, to)
      for _ = from, to do
        opt:zero_grad()
        ;(m(x) - y):pow(2):mean():backward()
        opt:step()
        s:step(m)
      end
    end
    local path = os.tmpname()
    local a, aopt, as = setup(1)
    train(a, aopt, as, 1, 3)
    tide.checkpoint.save(path, {model = a, optimizer = aopt, scheduler = as})
    train(a, aopt, as, 4, 8)
    local b, bopt, bs = setup(2)                 -- other weights, other masks, until loaded
    tide.checkpoint.load(path, {model = b, optimizer = bopt, scheduler = bs})
    os.remove(path)
    assert.equal(3, bs.t)
    train(b, bopt, bs, 4, 8)
    for k, v in pairs(a:state_dict()) do same(v, b:state_dict()[k], k) end
    assert.near(0.8, P.sparsity(b).total, 0.01)
  end)
end)

describe("tide.prune.schedule", function()
  it("cubic and linear targets", function()
    local s = P.schedule{from = 0, to = 0.8, steps = 10}
    assert.near(0.7, s:amount(5), 1e-12)         -- 0.8 - 0.8 x 0.5^3
    assert.equal(0, s:amount(0))
    assert.equal(0.8, s:amount(10))
    assert.equal(0.8, s:amount(99))
    assert.near(0.4, P.schedule{to = 0.8, steps = 10, kind = "linear"}:amount(5), 1e-12)
  end)

  it("steps prune per layer to round(target x size), every k steps, structured too", function()
    local m = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 4))
    local s = P.schedule{from = 0, to = 0.5, steps = 4, every = 2}
    assert.near(0.2890625, s:step(m), 1e-12)     -- t = 1 (0.5 - 0.5 x 0.75^3): no pruning
    assert.is_nil(rawget(m[1], "weight_mask"))
    s:step(m)                                    -- t = 2: 0.5 - 0.5 / 8 = 0.4375
    assert.equal(88, m[1].weight_mask:eq(0):sum():item())   -- round(0.4375 x 200) = 87.5 -> 88
    assert.equal(35, m[3].weight_mask:eq(0):sum():item())   -- round(35) of 80
    s:step(m, 4)
    assert.equal(0.5, P.sparsity(m).total)
    local c = nn.Sequential(nn.Linear(10, 8))
    local sc = P.schedule{to = 0.5, steps = 2, method = "structured", norm = 2}
    sc:step(c)                                   -- 0.5 - 0.5 / 8: round(3.5) = 4 of 8 rows
    assert.equal(4, c[1].bias_mask:eq(0):sum():item())
    assert.equal(40, c[1].weight_mask:eq(0):sum():item())
  end)
end)

describe("tide.prune with tide.fit", function()
  it("a schedule stepped from on_step with the run's step reaches its target", function()
    local data = require "tide.data"
    tide.manual_seed(4)
    local x, y = tide.randn(64, 6), tide.randint(1, 3, {64}, {dtype = "int64"})
    local m = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3))
    local s = P.schedule{to = 0.6, steps = 6, scope = "global"}
    tide.fit(m, {train = data.DataLoader(data.TensorDataset(x, y), {batch_size = 16}),
                 epochs = 2, progress = false,
                 on_step = function(info) s:step(info.model, info.step) end})
    assert.equal(8, s.t)
    assert.near(0.6, P.sparsity(m).total, 1 / 108)   -- round(0.6 x 108) = 65 of 108 weights
    assert.equal(65, m[1].weight_mask:eq(0):sum():item() + m[3].weight_mask:eq(0):sum():item())
  end)
end)

describe("tide.prune.compact", function()
  it("drops pruned channels of the seed CNN: the same outputs, fewer MACs", function()
    tide.manual_seed(7)
    local m = models.cnn{batchnorm = true}
    m:train()
    m(tide.randn(8, 1, 28, 28))                  -- running statistics that are not trivial
    m:eval()
    P.structured(m, 0.5, {layers = {"1", "5", "10"}})
    local x = tide.randn(3, 1, 28, 28)
    local y = m(x)
    local macs = tide.summary.macs(m, {1, 28, 28})
    P.compact(m)
    assert.equal(16, m[1].out_channels)
    assert.equal(16, m[2].num_features)
    assert.equal(16, m[5].in_channels)
    assert.equal(32, m[5].out_channels)
    assert.equal(32 * 49, m[10].in_features)
    assert.equal(64, m[10].out_features)
    assert.equal(64, m[12].in_features)
    H.close(y, m(x), 1e-4, "outputs")
    assert.is_true(tide.summary.macs(m, {1, 28, 28}) < macs / 3)
    assert.is_nil(rawget(m[1], "weight_mask"))
  end)

  it("folds a dropped neuron's constant output into the next Linear's bias", function()
    tide.manual_seed(8)
    local m = nn.Sequential(nn.Linear(4, 6), nn.Sigmoid(), nn.Linear(6, 2))
    P.structured(m, 2, {layers = {m[1]}, bias = false})   -- sigmoid(bias) stays
    local x = tide.randn(5, 4)
    local y = m(x)
    P.compact(m)
    assert.equal(4, m[1].out_features)
    H.close(y, m(x), 1e-5, "outputs")
  end)

  it("refuses a constant a padded Conv2d cannot absorb", function()
    local m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3, {padding = 1}))
    tide.no_grad(function() m[1].bias:fill_(1) end)
    P.structured(m, 1, {layers = {m[1]}, bias = false})
    H.err("cannot absorb (it pads with zeros)", P.compact, m)
  end)
end)

describe("tide.prune bad input", function()
  it("errors name the function and the value", function()
    local m = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    H.err("tide.prune.magnitude: amount must be a fraction in [0, 1] or a count (a non-negative "
          .. "integer), got 1.5", P.magnitude, m, 1.5)
    H.err("got -0.1", P.magnitude, m, -0.1)
    H.err("got -1", P.structured, m, -1)
    H.err("tide.prune.magnitude: amount 13 is more than the 12 weights left to prune",
          P.magnitude, m, 13)
    H.err("tide.prune.structured: amount 4 is more than the 3 channels of layer '1' left to prune",
          P.structured, m, 4)
    H.err("tide.prune.magnitude: unknown layer 'fc'", P.magnitude, m, 0.5, {layers = {"fc"}})
    H.err("tide.prune.magnitude: layer '2' (ReLU) has no weight to prune",
          P.magnitude, m, 0.5, {layers = {m[2]}})
    H.err("tide.prune.magnitude: layers[1] is not a module of the model",
          P.magnitude, m, 0.5, {layers = {nn.Linear(2, 2)}})
    H.err("tide.prune.magnitude: scope must be \"layer\" or \"global\", got all",
          P.magnitude, m, 0.5, {scope = "all"})
    H.err("tide.prune.structured: unknown option 'dims'", P.structured, m, 0.5, {dims = 1})
    H.err("tide.prune.structured: dim 3 is out of range for layer '1' (its weight is 3x4)",
          P.structured, m, 0.5, {dim = 3})
    H.err("tide.prune.structured: norm must be 1 or 2, got 3", P.structured, m, 0.5, {norm = 3})
    H.err("tide.prune.magnitude: expected a module (nn.Module), got number", P.magnitude, 1, 0.5)
    H.err("tide.prune.schedule: to must be a sparsity in [0, 1], got 2", P.schedule, {to = 2, steps = 1})
    H.err("tide.prune.schedule: steps must be a positive integer, got nil", P.schedule, {to = 0.5})
    H.err("tide.prune.sparsity: expected a module (nn.Module), got nil", P.sparsity)
    -- nothing was changed by the calls that failed
    assert.is_nil(rawget(m[1], "weight_mask"))
  end)

  it("a quantized model is refused", function()
    local Q = nn.Module:extend("QuantizedTestLinear")
    function Q:init() self:register_buffer("weight", tide.zeros({3, 4}, {dtype = "uint8"})) end
    local m = nn.Sequential(nn.Linear(4, 4), Q())
    H.err("tide.prune.magnitude: the model is quantized (layer '2', QuantizedTestLinear, has uint8 "
          .. "weights): prune the float model, then quantize", P.magnitude, m, 0.5)
    H.err("the model is quantized", P.structured, m, 0.5)
  end)
end)
