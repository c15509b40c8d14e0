-- tests/lua/nn_layers_spec.lua: the Lua layers (Linear, activations, Softmax, Dropout, Flatten,
-- Identity) against PyTorch values, nn.init's formulas, error messages, and an MLP learning XOR.
-- Reference numbers come from torch 2.x (float64), pasted here; nothing imports torch at test time.
local tide = require "tide"
local nn = require "tide.nn"
local H = require "helpers"

-- the error fn raises, which must match pattern
local function fails(fn, pattern)
  local ok, err = pcall(fn)
  assert.is_false(ok)
  assert.matches(pattern, err)
end

local close = H.near

local W = {{0.1, -0.2, 0.3, 0.4}, {-0.5, 0.6, 0.7, -0.8}, {0.9, 1.0, -1.1, 1.2}}
local B = {0.05, -0.15, 0.25}
local X = {{1.0, 2.0, -1.0, 0.5}, {-0.5, 0.25, 3.0, -2.0}}

local function fixed_linear(dtype)
  local lin = nn.Linear(4, 3)
  if dtype then lin:to(dtype) end
  lin:load_state_dict({weight = tide.tensor(W, {dtype = dtype}), bias = tide.tensor(B, {dtype = dtype})})
  return lin
end

describe("nn.Linear", function()
  -- torch: y = lin(x); ((y * y).sum() / 2).backward()
  it("matches PyTorch forward and backward on 2-D input (addmm)", function()
    for _, dtype in ipairs({"float64", "float32"}) do
      local tol = dtype == "float64" and 1e-12 or 1e-5
      local lin = fixed_linear(dtype)
      local x = tide.tensor(X, {dtype = dtype, requires_grad = true})
      local y = lin(x)
      assert.equal(dtype, y.dtype)
      close(y, {{-0.35, -0.55, 4.85}, {0.05, 3.95, -5.65}}, tol)
      local loss = (y * y):sum() / 2
      loss:backward()
      close(lin.weight.grad, {{-0.375, -0.6875, 0.5, -0.275}, {-2.525, -0.1125, 12.4, -8.175},
                              {7.675, 8.2875, -21.8, 13.725}}, tol * 10)
      close(lin.bias.grad, {-0.3, 3.4, -0.8}, tol)
      close(x.grad, {{4.605, 4.59, -5.825, 6.12}, {-7.055, -3.29, 8.995, -9.92}}, tol * 10)
    end
  end)

  it("matches PyTorch on 3-D input (matmul + bias)", function()
    local lin = fixed_linear("float64")
    local x = tide.tensor(X, {dtype = "float64"})
    local x3 = tide.stack({x, tide.stack({x[2], x[1]}) * 0.5}, 1)   -- 2 x 2 x 4
    local y = lin(x3)
    assert.same({2, 2, 3}, y.shape)
    close(y, {{{-0.35, -0.55, 4.85}, {0.05, 3.95, -5.65}}, {{0.05, 1.9, -2.7}, {-0.15, -0.35, 2.55}}},
          1e-12)
    local loss = (y * y):sum() / 2
    loss:backward()
    close(lin.weight.grad, {{-0.4625, -0.83125, 0.65, -0.3625}, {-3.175, -0.225, 15.425, -10.1625},
                            {9.625, 10.5, -27.125, 17.0625}}, 1e-12)
    close(lin.bias.grad, {-0.4, 4.95, -0.95}, 1e-12)
  end)

  it("without bias computes x W^T and has no bias parameter", function()
    local lin = nn.Linear(4, 3, {bias = false})
    assert.is_nil(lin.bias)
    assert.equal(1, #lin:parameters())
    lin:load_state_dict({weight = tide.tensor(W)})
    close(lin(tide.tensor(X)), {{-0.4, -0.4, 4.6}, {0, 4.1, -5.9}}, 1e-5)
    close(lin(tide.tensor(X[1])), {-0.4, -0.4, 4.6}, 1e-5)     -- 1-D input
  end)

  it("initialises like PyTorch: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias", function()
    tide.manual_seed(0)
    local lin = nn.Linear(400, 300)
    local w, b, bound = lin.weight, lin.bias, 1 / math.sqrt(400)
    assert.same({300, 400}, w.shape)
    assert.same({300}, b.shape)
    assert.is_true(w.requires_grad and b.requires_grad)
    assert.is_true(w:abs():max():item() <= bound)
    assert.is_true(w:abs():max():item() > 0.99 * bound)
    assert.is_true(math.abs(w:std():item() - bound / math.sqrt(3)) < 0.02 * bound)
    assert.is_true(math.abs(w:mean():item()) < 0.01 * bound)
    assert.is_true(b:abs():max():item() <= bound and b:abs():max():item() > 0.95 * bound)
  end)

  it("names itself, the expected and the actual features on a wrong input", function()
    local lin = nn.Linear(784, 128)
    -- `local y = ...; return y` keeps the caller's frame (a tail call would drop its line)
    fails(function() local y = lin(tide.zeros(64, 100)) return y end,
          "nn_layers_spec.lua:%d+: Linear%(784, 128%): expected input with 784 features, got 100 "
          .. "%(input 64x100%)$")
    fails(function() local y = lin(tide.zeros(2, 3, 5)) return y end,
          "Linear%(784, 128%): expected input with 784 features, got 5 %(input 2x3x5%)")
    fails(function() local y = lin(tide.tensor(1)) return y end,
          "Linear%(784, 128%): expected input with 784 features, got a scalar")
    fails(function() local y = lin({1, 2}) return y end,
          "Linear%(784, 128%): expected a tensor input, got table")
    fails(function() local y = nn.Linear(2, 2, {bias = false})(tide.zeros(1, 3)) return y end,
          "Linear%(2, 2, {bias = false}%): expected input with 2 features")
  end)

  it("refuses bad sizes and unknown options at the caller's line", function()
    fails(function() local m = nn.Linear(3, 0) return m end,
          "nn_layers_spec.lua:%d+: Linear%(3, 0%): sizes must be positive integers")
    fails(function() local m = nn.Linear(3, 2.5) return m end,
          "Linear%(3, 2.5%): sizes must be positive integers")
    fails(function() local m = nn.Linear(3, 2, {bais = false}) return m end,
          "nn_layers_spec.lua:%d+: Linear%(3, 2%): unknown option 'bais'")
  end)
end)

describe("activation layers", function()
  local a = tide.tensor({-2.0, -0.5, 0.0, 0.5, 2.0}, {dtype = "float64"})
  -- torch.nn.GELU()(a) etc.
  local want = {
    GELU = {-0.0455002639, -0.1542687694, 0.0, 0.3457312306, 1.9544997361},
    SiLU = {-0.238405844, -0.1887703344, 0.0, 0.3112296656, 1.761594156},
    Tanh = {-0.9640275801, -0.4621171573, 0.0, 0.4621171573, 0.9640275801},
    Sigmoid = {0.119202922, 0.3775406688, 0.5, 0.6224593312, 0.880797078},
    ReLU = {0.0, 0.0, 0.0, 0.5, 2.0},
  }
  for name, values in pairs(want) do
    it(name .. " matches PyTorch", function()
      local m = nn[name]()
      assert.equal(name .. "()", tostring(m))
      assert.equal(0, m:num_parameters())
      close(m(a), values, 1e-9)
    end)
  end

  it("GELU{approximate = 'tanh'} matches PyTorch's tanh approximation", function()
    local m = nn.GELU({approximate = "tanh"})
    -- torch.nn.GELU(approximate='tanh')(a)
    close(m(a), {-0.045402305912, -0.154285990175, 0.0, 0.345714009825, 1.954597694088}, 1e-9)
    assert.equal("GELU(approximate=tanh)", tostring(m))
    assert.has_error(function() nn.GELU({approximate = "fast"}) end)
  end)

  it("Softmax and LogSoftmax take their dim and match PyTorch", function()
    local s = tide.tensor({{1.0, 2.0, 3.0}, {0.5, -1.0, 2.0}}, {dtype = "float64"})
    close(nn.Softmax(2)(s), {{0.09003057317038045, 0.2447284710547976, 0.6652409557748218},
                             {0.1752903921400367, 0.039112573270687456, 0.7855970345892759}}, 1e-12)
    close(nn.Softmax(-1)(s), nn.Softmax(2)(s), 1e-15)
    close(nn.LogSoftmax(1)(s), {{-0.4740769841801067, -0.048587351573741965, -0.31326168751822286},
                                {-0.9740769841801067, -3.048587351573742, -1.3132616875182228}}, 1e-12)
    assert.equal("LogSoftmax(dim=1)", tostring(nn.LogSoftmax(1)))
    fails(function() local m = nn.Softmax() return m end,
          "nn_layers_spec.lua:%d+: Softmax: dim must be an integer %(e.g. nn.Softmax%(%-1%)%), got nil")
  end)

  it("refuses a non-tensor input naming the layer", function()
    local ok, err = pcall(function() local y = nn.Softmax(1)("x") return y end)
    assert.is_false(ok)
    assert.matches("Softmax%(dim=1%): expected a tensor input, got string", err)
  end)
end)

describe("Dropout, Flatten, Identity", function()
  it("Dropout zeroes and rescales in training, passes through in eval", function()
    tide.manual_seed(3)
    local d = nn.Dropout(0.25)
    assert.equal("Dropout(p=0.25)", tostring(d))
    local x = tide.ones(4000)
    local y = d(x)
    local zeros = y:eq(0):sum():item()
    assert.is_true(zeros > 850 and zeros < 1150, "zeros: " .. zeros)
    assert.is_true(math.abs(y:max():item() - 1 / 0.75) < 1e-6)
    d:eval()
    close(d(x), x)
    assert.equal(0.5, nn.Dropout().p)
    local ok, err = pcall(function() local m = nn.Dropout(1.5) return m end)
    assert.is_false(ok)
    assert.matches("nn_layers_spec.lua:%d+: Dropout%(1.5%): p must be a number in %[0, 1%), got 1.5", err)
  end)

  it("Flatten keeps the batch dim by default, takes start and end dims", function()
    local x = tide.zeros(2, 3, 4, 5)
    assert.same({2, 60}, nn.Flatten()(x).shape)
    assert.same({2, 3, 20}, nn.Flatten(3)(x).shape)
    assert.same({6, 4, 5}, nn.Flatten(1, 2)(x).shape)
    assert.equal("Flatten(start_dim=2, end_dim=-1)", tostring(nn.Flatten()))
  end)

  it("Identity returns its input", function()
    local x = tide.zeros(2)
    assert.equal(x, nn.Identity()(x))
  end)
end)

describe("nn.init", function()
  local init = nn.init

  it("computes fans and gains as PyTorch", function()
    assert.same({4, 3}, {init.fan_in_and_fan_out(tide.empty(3, 4))})
    assert.same({16 * 9, 32 * 9}, {init.fan_in_and_fan_out(tide.empty(32, 16, 3, 3))})
    assert.has_error(function() init.fan_in_and_fan_out(tide.empty(5)) end)
    assert.equal(1, init.calculate_gain("linear"))
    assert.equal(5 / 3, init.calculate_gain("tanh"))
    assert.equal(math.sqrt(2), init.calculate_gain("relu"))
    assert.equal(math.sqrt(2 / (1 + 0.01 ^ 2)), init.calculate_gain("leaky_relu"))
    assert.equal(math.sqrt(1 / 3), init.calculate_gain("leaky_relu", math.sqrt(5)))
    assert.has_error(function() init.calculate_gain("swish") end,
                     "nn.init.calculate_gain: unknown nonlinearity swish")
  end)

  -- max |t| near the bound and never above it; std of a normal init
  local function within(t, bound)
    local m = t:abs():max():item()
    assert.is_true(m <= bound * (1 + 1e-6) and m > 0.98 * bound, ("max %g, bound %g"):format(m, bound))
  end
  local function std_near(t, s)
    local got = t:std():item()
    assert.is_true(math.abs(got - s) < 0.03 * s, ("std %g, expected %g"):format(got, s))
  end

  it("uniform_, normal_, constant_, zeros_, ones_ work in place on parameters", function()
    tide.manual_seed(5)
    local p = nn.Parameter(tide.empty(100, 100))
    assert.equal(p, init.uniform_(p, -2, 3))
    assert.is_true(p:min():item() >= -2 and p:max():item() <= 3 and p:min():item() < -1.9)
    init.normal_(p, 1, 0.5)
    std_near(p, 0.5)
    assert.is_true(math.abs(p:mean():item() - 1) < 0.02)
    close(init.constant_(p, 7):view(-1):narrow(1, 1, 2), {7, 7})
    assert.equal(0, init.zeros_(p):abs():sum():item())
    assert.equal(10000, init.ones_(p):sum():item())
    assert.is_true(p.requires_grad and p.is_leaf)
    assert.has_error(function() init.zeros_(3) end, "nn.init.zeros_: expected a tensor, got number")
  end)

  it("xavier_ and kaiming_ use PyTorch's bounds and stds", function()
    tide.manual_seed(6)
    local t = tide.empty(200, 300)
    within(init.xavier_uniform_(t), math.sqrt(6 / 500))
    within(init.xavier_uniform_(t, 2), 2 * math.sqrt(6 / 500))
    std_near(init.xavier_normal_(t), math.sqrt(2 / 500))
    within(init.kaiming_uniform_(t), math.sqrt(3) * math.sqrt(2) / math.sqrt(300))  -- a = 0
    within(init.kaiming_uniform_(t, {a = math.sqrt(5)}), 1 / math.sqrt(300))
    within(init.kaiming_uniform_(t, {mode = "fan_out", nonlinearity = "relu"}),
           math.sqrt(3) * math.sqrt(2) / math.sqrt(200))
    std_near(init.kaiming_normal_(t, {nonlinearity = "relu"}), math.sqrt(2 / 300))
    local conv = tide.empty(64, 16, 3, 3)
    std_near(init.kaiming_normal_(conv, {mode = "fan_out", nonlinearity = "relu"}),
             math.sqrt(2 / (64 * 9)))
    assert.has_error(function() init.kaiming_normal_(t, {mode = "fan"}) end,
                     "nn.init.kaiming_normal_: mode must be \"fan_in\" or \"fan_out\", got fan")
    assert.has_error(function() init.kaiming_uniform_(t, {gain = 2}) end,
                     "nn.init.kaiming_uniform_: unknown option 'gain'")
  end)
end)

describe("an MLP end to end", function()
  it("fits XOR with a hand-written SGD loop in under a second", function()
    tide.manual_seed(42)
    local x = tide.tensor({{0, 0}, {0, 1}, {1, 0}, {1, 1}})
    local y = tide.tensor({{0}, {1}, {1}, {0}})
    local model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1), nn.Sigmoid())
    local params = model:parameters()
    local t0, loss = os.clock(), nil
    for _ = 1, 500 do
      loss = ((model(x) - y) ^ 2):mean()
      model:zero_grad()
      loss:backward()
      tide.no_grad(function()
        for _, p in ipairs(params) do p:sub_(p.grad * 2) end
      end)
    end
    assert.is_true(os.clock() - t0 < 1, "took " .. (os.clock() - t0) .. " s")
    assert.is_true(loss:item() < 0.01, "final loss " .. loss:item())
    local pred = model(x):gt(0.5):totable()
    assert.same({{false}, {true}, {true}, {false}}, pred)
  end)
end)
