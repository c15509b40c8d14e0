-- tests/lua/summary_spec.lua: tide.summary and tide.summary.macs (doc/summary.md). Every figure
-- is worked out by hand in the comment beside it from the formulas of doc/summary.md, so a wrong
-- formula, a missed or double-counted layer or a wrong batch division fails.
local tide = require "tide"
local nn = require "tide.nn"
local models = require "tide.models"
local H = require "helpers"

local QUIET = {print = false}

local function by_name(r)
  local t = {}
  for _, row in ipairs(r.layers) do t[row.name] = row end
  return t
end

describe("tide.summary", function()
  it("the seed CNN: per-layer MACs, params, shapes and the totals", function()
    local r = tide.summary(models.cnn(), {1, 28, 28}, {print = false, batch_size = 64})
    local rows = by_name(r)
    assert.equal(10, #r.layers)
    -- conv1: 32x28x28 outputs x (1 x 3 x 3) = 25088 x 9
    assert.same({1, 32, 28, 28}, rows["1"].output_shape)
    assert.equal(225792, rows["1"].macs)
    assert.equal(320, rows["1"].params)                 -- 32 x 9 + 32
    assert.equal("Conv2d", rows["1"].class)
    -- conv2: 64x14x14 outputs x (32 x 3 x 3) = 12544 x 288
    assert.equal(3612672, rows["4"].macs)
    assert.equal(18496, rows["4"].params)               -- 64 x 288 + 64
    assert.same({1, 64, 7, 7}, rows["6"].output_shape)
    assert.equal(401408, rows["8"].macs)                -- 3136 x 128
    assert.equal(1280, rows["10"].macs)                 -- 128 x 10
    for _, k in ipairs({"2", "3", "5", "6", "7", "9"}) do assert.equal(0, rows[k].macs) end
    assert.equal(4241152, r.total_macs)                 -- 225792 + 3612672 + 401408 + 1280
    assert.equal(421642, r.total_params)
    assert.equal(421642, r.trainable_params)
    -- outputs of the ten layers: 25088 x 2 + 6272 + 12544 x 2 + 3136 x 2 + 128 x 2 + 10
    -- = 88074 floats = 352296 bytes; rows: conv1 25088 x 4
    assert.equal(352296, r.activation_bytes)
    assert.equal(100352, rows["1"].activation_bytes)
    assert.equal(421642 * 4, r.size_bytes)
    assert.equal(3136, r.input_bytes)                   -- 784 floats
    -- params + grads, then 64 x (input + activations + their gradients)
    assert.equal(2 * 1686568 + 64 * (3136 + 2 * 352296), r.memory_bytes)
    assert.equal(64, r.batch_size)
    assert.equal("float32", r.dtype)
  end)

  it("counts one example of an example batch; batch norm counts one MAC per output", function()
    local m = models.cnn{batchnorm = true}
    local bn = m[2]
    local mean = bn.running_mean:clone()
    m:train()
    local r = tide.summary(m, tide.randn(4, 1, 28, 28), QUIET)
    local rows = by_name(r)
    assert.equal(25088, rows["2"].macs)                 -- 32 x 28 x 28
    assert.equal(12544, rows["6"].macs)                 -- 64 x 14 x 14
    assert.equal(4241152 + 25088 + 12544, r.total_macs)
    assert.same({4, 32, 28, 28}, rows["1"].output_shape)
    assert.equal(4, r.batch_size)
    -- eval mode for the run: the running statistics are untouched, the mode is restored, and
    -- no module keeps the wrapper the run installed
    assert.equal(0, H.maxdiff(mean, bn.running_mean))
    assert.equal(0, bn.num_batches_tracked:item())
    assert.is_true(m.training and bn.training)
    for _, mod in ipairs(m:modules()) do assert.is_nil(rawget(mod, "forward")) end
  end)

  it("an LSTM: G (in + H) per step, layer and direction", function()
    local m = models.lstm_classifier{hidden = 16, layers = 2}
    local r = tide.summary(m, {28, 28}, QUIET)
    local rows = by_name(r)
    -- T = 28 steps, G = 4 x 16 = 64 rows: layer 0 28 x 64 x (28 + 16) = 78848,
    -- layer 1 28 x 64 x (16 + 16) = 57344
    assert.equal(78848 + 57344, rows.lstm.macs)
    assert.equal(160, rows.fc.macs)
    assert.equal(136352, r.total_macs)
    assert.equal(5120, rows.lstm.params)                -- 64x28 + 64x16 + 128 + 64x16 x 2 + 128
    assert.same({1, 28, 16}, rows.lstm.output_shape)
    -- a bidirectional GRU, time-major: batch_dim = 2. 2 directions x 5 steps x 60 x (10 + 20)
    local g = nn.GRU(10, 20, {bidirectional = true})
    assert.equal(18000, (tide.summary.macs(g, {5, 10}, {batch_dim = 2})))
    assert.equal(18000, (tide.summary.macs(g, tide.randn(5, 3, 10), {batch_dim = 2})))
  end)

  it("a small Transformer: projections, attention, feed-forward, norms", function()
    local m = models.transformer_classifier{vocab = 50, d_model = 16, heads = 2, layers = 1,
                                            classes = 3, ff = 32, max_len = 8}
    local ids = tide.randint(1, 50, {2, 8}, {dtype = "int64"})
    local r = tide.summary(m, ids, {print = false, depth = 4})
    local rows = by_name(r)
    -- T = 8, d = 16: in-projection 3 x 8 x 16 x 16 = 6144, Q K^T and weights x V
    -- 2 x 8 x 8 x 16 = 2048, out_proj 8 x 16 x 16 = 2048
    assert.equal(6144 + 2048 + 2048, rows["layers.1.self_attn"].macs)
    assert.equal(2048, rows["layers.1.self_attn.out_proj"].macs)
    assert.equal(4096, rows["layers.1.linear1"].macs)  -- 8 x 16 x 32
    assert.equal(4096, rows["layers.1.linear2"].macs)
    assert.equal(128, rows["layers.1.norm1"].macs)     -- 8 x 16
    assert.equal(0, rows.tok.macs)
    assert.equal(48, rows.head.macs)                   -- 16 x 3
    assert.equal(10240 + 8192 + 256, rows["layers.1"].macs)
    assert.equal(18736, r.total_macs)
    assert.equal(3075, r.total_params)  -- 800 + (3x16x16 + 48 + 272 + 544 + 528 + 64) + 51
    local total, own = tide.summary.macs(m, {8}, {dtype = "int64"})
    assert.equal(18736, total)
    assert.equal(8192, own["layers.1.self_attn"])      -- its own part, out_proj apart
    assert.is_nil(own.tok)
  end)

  it("depth limits the rows; a row counts its whole subtree", function()
    local m = models.transformer_classifier{vocab = 50, d_model = 16, heads = 2, layers = 1,
                                            classes = 3, ff = 32, max_len = 8}
    local r = tide.summary(m, {8}, {print = false, dtype = "int64", depth = 1})
    assert.same({"tok", "pos", "layers", "head"},
                {r.layers[1].name, r.layers[2].name, r.layers[3].name, r.layers[4].name})
    assert.equal(4, #r.layers)
    assert.equal(18688, r.layers[3].macs)
    assert.equal(2224, r.layers[3].params)
  end)

  it("formulas of the other layers", function()
    local M = tide.summary.macs
    -- cross-attention, L = 3 queries, S = 5 keys, d = 8: (3 + 5 + 5) x 64 + 2 x 3 x 5 x 8,
    -- plus out_proj 3 x 8 x 8
    local q, kv = tide.randn(1, 3, 8), tide.randn(1, 5, 8)
    assert.equal(832 + 240 + 192, (M(nn.MultiheadAttention(8, 2), {q, kv, kv})))
    -- 8x5x5 outputs x (4 / 2 groups) x 3 x 3
    assert.equal(3600, (M(nn.Conv2d(4, 8, 3, {stride = 2, padding = 1, groups = 2}), {4, 9, 9})))
    -- 4x5x5 inputs x (2 outputs / 1 group) x 3 x 3
    assert.equal(1800, (M(nn.ConvTranspose2d(4, 2, 3, {stride = 2}), {4, 5, 5})))
    assert.equal(48, (M(nn.AvgPool2d(2), {3, 4, 4})))      -- 3x2x2 outputs x 4
    -- windows over 5 into 2: [1, 3] and [3, 5], 3 + 3 per dim: 3 planes x 6 x 6
    assert.equal(108, (M(nn.AdaptiveAvgPool2d(2), {3, 5, 5})))
    assert.equal(0, (M(nn.Sequential(nn.ReLU(), nn.Dropout(), nn.Flatten()), {3, 4})))
  end)

  it("a module's own macs method wins; sizes in the parameters' dtypes (quantized layers)", function()
    local Q = nn.Module:extend("QTestLinear")
    function Q:init()
      self.weight = nn.Parameter(tide.ones({6, 4}, {dtype = "uint8"}), {requires_grad = false})
      self:register_buffer("scale", tide.ones(6))
    end
    function Q.forward(_, x) return tide.zeros(x:size(1), 6) end
    function Q.macs(_, inputs, out) return out:numel() * inputs[1]:size(2) end
    local m = nn.Sequential(Q(), nn.Linear(6, 2))
    local r = tide.summary(m, tide.randn(5, 4), QUIET)
    assert.equal(24 + 12, r.total_macs)
    assert.equal(24 + 6 * 4 + 14 * 4, r.size_bytes)    -- uint8 weight, float scale, Linear
    assert.equal(38, r.total_params)
    assert.equal(14, r.trainable_params)
    -- the table entry for a class: a new row is used by every instance
    tide.summary.formulas.QTestLinear = function() return 1000 end
    Q.macs = nil
    assert.equal(1000 // 5 + 12, (tide.summary.macs(m, tide.randn(5, 4))))
    tide.summary.formulas.QTestLinear = nil
  end)

  it("pruned models: the non-zero column", function()
    local m = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    tide.no_grad(function()
      m[1].bias:fill_(1)
      m[1].weight[1]:fill_(0)                         -- 4 of the 12 weights
    end)
    local r = tide.summary(m, {4}, QUIET)
    assert.equal(11, r.nonzero_params)
    assert.equal(11, r.layers[1].nonzero)
    assert.equal(15, r.total_params)
    assert.truthy(tostring(r):find("Non-zero", 1, true))
    assert.truthy(tostring(r):find("non-zero 11", 1, true))
    local dense = tide.summary(nn.Sequential(nn.Linear(4, 3)), {4}, QUIET)
    assert.falsy(tostring(dense):find("Non-zero", 1, true))
    -- masked by tide.prune: weight_orig stays dense, the mask decides
    local cnn = models.cnn()
    tide.prune.magnitude(cnn, 0.9, {scope = "global"})
    local pr = tide.summary(cnn, {1, 28, 28}, QUIET)
    -- 421408 weights, round(0.9 x 421408) = 379267 masked; the 234 biases stay
    assert.equal(421408 - 379267 + 234, pr.nonzero_params)
    assert.equal(421642, pr.total_params)
  end)

  it("prints the table, unless print = false", function()
    local lines = {}
    local old = _G.print
    _G.print = function(s) lines[#lines + 1] = tostring(s) end
    local ok, r = pcall(tide.summary, models.cnn(), {1, 28, 28})
    _G.print = old
    assert(ok, r)
    assert.equal(1, #lines)
    assert.equal(tostring(r), lines[1])
    assert.truthy(lines[1]:find("10 (Linear)", 1, true))
    assert.truthy(lines[1]:find("MACs per example: 4,241,152", 1, true))
    assert.truthy(lines[1]:find("Params: 421,642 (trainable 421,642, frozen 0)", 1, true))
  end)

  it("bad input: errors name the function and the value", function()
    local m = models.cnn()
    H.err("tide.summary: expected a module (nn.Module), got number", tide.summary, 42, {1})
    H.err("tide.summary: input shape entry 1 is 0, expected a positive integer",
          tide.summary, m, {0, 28, 28}, QUIET)
    H.err("tide.summary: expected the shape of one example (e.g. {1, 28, 28}), an example "
          .. "batch (a tensor) or a list of inputs, got string", tide.summary, m, "x")
    H.err("tide.summary: unknown option 'deph'", tide.summary, m, {1, 28, 28}, {deph = 1})
    H.err("tide.summary: depth must be a non-negative integer, got -1",
          tide.summary, m, {1, 28, 28}, {depth = -1})
    H.err("tide.summary.macs: batch_dim 3 is out of range for the 2-D input 2x4",
          tide.summary.macs, m, tide.zeros(2, 4), {batch_dim = 3})
    H.err("tide.summary: the model's forward failed:", tide.summary, m, {3, 28, 28}, QUIET)
    H.err("expected 1 input channel, got 3", tide.summary, m, {3, 28, 28}, QUIET)
    for _, mod in ipairs(m:modules()) do assert.is_nil(rawget(mod, "forward")) end
  end)
end)
