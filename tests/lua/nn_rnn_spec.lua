-- tests/lua/nn_rnn_spec.lua: nn.LSTM, nn.GRU and nn.RNN against PyTorch (tests/fixtures/rnn.lua,
-- written by scripts/gen_rnn_fixtures.py): outputs, final states and the gradients of the input,
-- the initial state and every parameter, for 1 and 2 layers, batch_first both ways,
-- bidirectional, given and default state, float32 and float64; then parameter names and init,
-- option and shape errors, dropout between layers, and the scan ops' own errors.
local tide = require "tide"
local nn = require "tide.nn"
local H = require "helpers"

local cases = dofile("tests/fixtures/rnn.lua")

local function tensor(spec, dtype, grad)
  local t = tide.tensor(spec.data, {dtype = dtype}):view(spec.shape)
  if grad then t = t:detach(); t.requires_grad = true end
  return t
end

-- every element of got within atol + rtol |want|
local function near(got, spec, tol, what)
  assert(got, what .. ": missing")
  assert.are.same(spec.shape, got.shape, what .. ": shape")
  local g = got:double():contiguous():view(-1):totable()
  for i, v in ipairs(spec.data) do
    local d = math.abs(g[i] - v)
    assert(d <= tol * (1 + math.abs(v)), ("%s: element %d is %.10g, PyTorch %.10g"):format(what, i, g[i], v))
  end
end

describe("nn rnn: RNN/LSTM/GRU against PyTorch", function()
  for _, c in ipairs(cases) do
    it(c.name, function()
      local tol = c.dtype == "float64" and 1e-9 or 2e-5
      local m = nn[c.class](4, 6, c.opts):to(c.dtype)
      local sd = {}
      for name, spec in pairs(c.params) do sd[name] = tensor(spec, c.dtype) end
      m:load_state_dict(sd)
      local names = {}
      for name in pairs(m:named_parameters()) do names[#names + 1] = name end
      assert.are.same(c.order, names)                   -- PyTorch's names, in PyTorch's order
      local x = tensor(c.x, c.dtype, true)
      local h0 = c.h0 and tensor(c.h0, c.dtype, true)
      local c0 = c.c0 and tensor(c.c0, c.dtype, true)
      local state = h0 and (c0 and {h0, c0} or h0)
      local out, st = m(x, state)
      local hn, cn = st, nil
      if c.class == "LSTM" then hn, cn = st[1], st[2] end
      near(out, c.out, tol, "output")
      near(hn, c.h_n, tol, "h_n")
      if cn then near(cn, c.c_n, tol, "c_n") end
      local loss = (out * tensor(c.w_out, c.dtype)):sum() + (hn * tensor(c.w_h, c.dtype)):sum()
      if cn then loss = loss + (cn * tensor(c.w_c, c.dtype)):sum() end
      loss:backward()
      near(x.grad, c.grads.x, tol, "grad of x")
      if h0 then near(h0.grad, c.grads.h0, tol, "grad of h0") end
      if c0 then near(c0.grad, c.grads.c0, tol, "grad of c0") end
      local params = m:named_parameters()
      for _, name in ipairs(c.order) do near(params[name].grad, c.grads[name], tol, "grad of " .. name) end
    end)
  end
end)

describe("nn rnn: LSTM and GRU behaviour", function()
  it("has PyTorch's parameter shapes and default init range", function()
    local m = nn.LSTM(10, 20, {num_layers = 2, bidirectional = true})
    local p = m:named_parameters()
    assert.are.same({80, 10}, p.weight_ih_l0.shape)
    assert.are.same({80, 20}, p.weight_hh_l0_reverse.shape)
    assert.are.same({80, 40}, p.weight_ih_l1.shape)
    assert.are.same({80}, p.bias_hh_l1_reverse.shape)
    local k = 1 / math.sqrt(20)
    for _, t in pairs(p) do
      assert.is_true(t:abs():max():item() <= k)
      assert.is_true(t.requires_grad)
    end
    assert.equal(2 * (80 * 10 + 80 * 20 + 160) + 2 * (80 * 40 + 80 * 20 + 160), m:num_parameters())
  end)

  it("has no biases with {bias = false}", function()
    local n = 0
    for _ in pairs(nn.GRU(3, 5, {bias = false}):named_parameters()) do n = n + 1 end
    assert.equal(2, n)
  end)

  it("returns batch_first output as B x T x H and states as (L*D) x B x H", function()
    local m = nn.LSTM(4, 6, {num_layers = 2, batch_first = true, bidirectional = true})
    local out, st = m(tide.randn(3, 5, 4))
    assert.are.same({3, 5, 12}, out.shape)
    assert.are.same({4, 3, 6}, st[1].shape)
    assert.are.same({4, 3, 6}, st[2].shape)
  end)

  it("applies dropout between layers only in training mode", function()
    tide.manual_seed(3)
    local m = nn.LSTM(4, 6, {num_layers = 2, dropout = 0.5})
    local x = tide.randn(5, 3, 4)
    local a = m(x)
    local b = m(x)
    assert.is_true(H.maxdiff(a, b) > 0)              -- two dropout masks
    m:eval()
    H.close(m(x), m(x), 0, "eval outputs")
    local one = nn.LSTM(4, 6, {dropout = 0.5})     -- one layer: nothing between layers
    H.close(one(x), one(x), 0, "one-layer outputs")
  end)

  it("keeps running the same with the returned state (truncated BPTT)", function()
    local m = nn.GRU(4, 6)
    local x = tide.randn(6, 2, 4)
    local full = m(x)
    local a, h = m(x:narrow(1, 1, 3))
    local b = m(x:narrow(1, 4, 3), h)
    H.close(tide.cat({a, b}, 1), full, 1e-6, "split run")
  end)

  it("runs under no_grad and in float64", function()
    local m = nn.LSTM(4, 6):to("float64")
    local out
    tide.no_grad(function() out = m(tide.randn(5, 3, 4):double()) end)
    assert.equal("float64", out.dtype)
    assert.is_false(out.requires_grad)
  end)
end)

describe("nn rnn: errors", function()
  it("rejects unknown options, naming the layer", function()
    H.err("LSTM(4, 6): unknown option 'hiden'", function() return nn.LSTM(4, 6, {hiden = 3}) end)
    H.err("GRU(4, 6): unknown option 'nonlinearity'", function() return nn.GRU(4, 6, {nonlinearity = "relu"}) end)
    H.err('RNN(4, 6): nonlinearity must be "tanh" or "relu"', function() return nn.RNN(4, 6, {nonlinearity = "sigmoid"}) end)
    H.err("LSTM(4, 0): sizes must be positive integers", function() return nn.LSTM(4, 0) end)
    H.err("num_layers must be a positive integer", function() return nn.LSTM(4, 6, {num_layers = 0}) end)
    H.err("GRU(4, 6): dropout must be a number in [0, 1), got 2", function() return nn.GRU(4, 6, {dropout = 2}) end)
  end)

  it("rejects wrong input ranks and feature sizes, naming config and shapes", function()
    local m = nn.LSTM(4, 6, {num_layers = 2})
    H.err("LSTM(4, 6, {num_layers = 2}): expected input of 3 dims (T x B x in) or 2 (T x in, unbatched), got 5x3x4x1",
          function() return m(tide.randn(5, 3, 4, 1)) end)
    H.err("LSTM(4, 6, {num_layers = 2}): expected input with 4 features, got 5 (input 5x3x5)",
          function() return m(tide.randn(5, 3, 5)) end)
    H.err("expected a tensor input, got nil", function() return m() end)
    H.err("input is float64 but the parameters are float32", function() return m(tide.randn(5, 3, 4):double()) end)
  end)

  it("rejects states of the wrong shape or kind", function()
    local lstm = nn.LSTM(4, 6, {batch_first = true})
    H.err("LSTM(4, 6, {batch_first = true}): expected h0 of shape 1x3x6, got 2x3x6",
          function() return lstm(tide.randn(3, 5, 4), {tide.zeros(2, 3, 6), tide.zeros(1, 3, 6)}) end)
    H.err("expected the state as a table {h0, c0}", function() return lstm(tide.randn(3, 5, 4), tide.zeros(1, 3, 6)) end)
    H.err("GRU(4, 6): expected h0 of shape 1x3x6, got 1x2x6",
          function() return nn.GRU(4, 6)(tide.randn(5, 3, 4), tide.zeros(1, 2, 6)) end)
  end)

  it("the scan ops check their operands", function()
    local gx = tide.randn(5, 3, 24)
    H.err("lstm_scan: expected w_hh of shape 4H x H, got 24x5",
          function() return gx:lstm_scan(tide.randn(24, 5), tide.zeros(2, 3, 6)) end)
    H.err("lstm_scan: expected the initial state of shape 2x3x6, got 3x6",
          function() return gx:lstm_scan(tide.randn(24, 6), tide.zeros(3, 6)) end)
    H.err("gru_scan: gx has 24 gate columns, expected 18 for hidden size 6",
          function() return gx:gru_scan(tide.randn(18, 7), tide.zeros(3, 6)) end)
    H.err("rnn_tanh_scan: expected gx, w_hh and the state of one float dtype",
          function() return tide.randn(5, 3, 6):rnn_tanh_scan(tide.randn(6, 6):double(), tide.zeros(3, 6)) end)
  end)
end)
