-- tests/lua/nn_attention_spec.lua: nn.MultiheadAttention, nn.TransformerEncoderLayer,
-- nn.TransformerEncoder and nn.PositionalEncoding against PyTorch 1.13: outputs, attention
-- weights and the gradients of every input and parameter, float32 and float64, train mode
-- (dropout 0) and eval mode. Reference values: tests/fixtures/attention.lua, written by
-- scripts/gen_attn_fixtures.py (`make fixtures`); the parameters arrive as a PyTorch state dict.
-- Then init, state dict names, options, shapes, errors and dropout.
local tide = require "tide"
local nn = require "tide.nn"
local H = require "helpers"

local FIX = assert(loadfile(os.getenv("TIDE_ATTN_FIXTURES") or "tests/fixtures/attention.lua",
                            "t", {}))()
local RTOL = {float32 = 1e-4, float64 = 1e-10}

local function tensor(f, dtype)
  local t = tide.tensor(f.data, {dtype = f.dtype == "bool" and "bool" or dtype})
  return t:view(table.unpack(f.shape))
end

-- |got - want| <= rtol * max(1, max |want|), with the worst place in the message
local function near(got, want, dtype, what)
  assert.same(want.shape, got.shape, what .. ": shape")
  local w = tensor(want, "float64")
  local scale = math.max(1, w:abs():max():item())
  local d = H.maxdiff(got, w)
  assert(d <= RTOL[dtype] * scale, ("%s (%s): off by %g (scale %g)"):format(what, dtype, d, scale))
end

local function pytorch_name(n)           -- "layers.1.norm1.weight" -> "layers.0.norm1.weight"
  return (n:gsub("[^.]+", function(c) if c:match("^%d+$") then return tostring(tonumber(c) - 1) end end))
end

local function build(c)
  local d, h, o = c.ctor[1], c.ctor[2], c.ctor[3]
  if c.kind == "mha" then return nn.MultiheadAttention(d, h, o) end
  if c.kind == "layer" then return nn.TransformerEncoderLayer(d, h, o) end
  if c.kind == "posenc" then return nn.PositionalEncoding(d, h, {dropout = 0}) end
  local lo = {d_model = d, nhead = h}
  for k, v in pairs(o) do if k ~= "num_layers" then lo[k] = v end end
  return nn.TransformerEncoder(lo, o.num_layers, {norm = true})
end

local function run(name, dtype)
  local c = FIX[name]
  local want = c[dtype == "float32" and "f32" or "f64"]
  local m = build(c):to(dtype)
  if c.kind == "posenc" then near(m.pe, want.pe, "float32", name .. " pe") end
  local sd = {}
  for k, v in pairs(c.sd) do sd[k] = tensor(v, dtype) end
  m:load_state_dict(sd, {from = "pytorch"})
  m:train(c.train)
  local x, names, leaves = {}, {}, {}
  for k, v in pairs(c.inputs) do
    x[k] = tensor(v, dtype)
    x[k].requires_grad = true
    names[#names + 1], leaves[#leaves + 1] = k, x[k]
  end
  for n, p in pairs(m:named_parameters()) do
    names[#names + 1], leaves[#leaves + 1] = pytorch_name(n), p
  end
  local call = {}
  for k, v in pairs(c.call) do call[k] = type(v) == "table" and tensor(v, dtype) or v end
  local out, weights
  if c.kind == "mha" then
    local q = x.q
    local k = x.k or q
    out, weights = m(q, k, x.v or k, call)
  elseif c.kind == "posenc" then
    out = m(x.x)
  else
    out = m(x.x, call)
  end
  near(out, want.out, dtype, name .. " output")
  local loss = (out * tensor(c.w, dtype)):sum()
  if want.weights then
    near(weights, want.weights, dtype, name .. " weights")
    loss = loss + (weights * tensor(c.ww, dtype)):sum()
  end
  local grads = tide.autograd.grad(loss, leaves, {allow_unused = true})
  local n = 0
  for i, nm in ipairs(names) do
    assert(want.grads[nm], name .. ": no PyTorch gradient for " .. nm)
    assert(grads[i], name .. ": no gradient for " .. nm)
    near(grads[i], want.grads[nm], dtype, name .. " grad " .. nm)
    n = n + 1
  end
  local expected = 0
  for _ in pairs(want.grads) do expected = expected + 1 end
  assert.equal(expected, n, name .. ": gradients compared")
end

describe("attention layers against PyTorch", function()
  local names = {}
  for k in pairs(FIX) do names[#names + 1] = k end
  table.sort(names)
  for _, name in ipairs(names) do
    for _, dtype in ipairs({"float64", "float32"}) do
      it(name .. " " .. dtype, function() run(name, dtype) end)
    end
  end
end)

describe("MultiheadAttention", function()
  it("has PyTorch's parameter names, shapes and init", function()
    tide.manual_seed(1)
    local m = nn.MultiheadAttention(16, 4)
    local sd, keys = m:state_dict({to = "pytorch"}), {}
    for k, v in pairs(sd) do keys[#keys + 1] = k .. ":" .. table.concat(v.shape, "x") end
    assert.same({"in_proj_weight:48x16", "in_proj_bias:48", "out_proj.weight:16x16", "out_proj.bias:16"}, keys)
    local bound = math.sqrt(6 / (16 + 48))                   -- xavier_uniform on 48 x 16
    assert.is_true(m.in_proj_weight:abs():max():item() <= bound)
    assert.is_true(m.in_proj_weight:abs():max():item() > 0.8 * bound)
    assert.equal(0, m.in_proj_bias:abs():sum():item())
    assert.equal(0, m.out_proj.bias:abs():sum():item())
    assert.equal(4, #nn.MultiheadAttention(16, 4, {bias = false}):parameters() + 2)
  end)

  it("checks options and shapes, naming the layer", function()
    H.err("MultiheadAttention(10, 3): embed_dim 10 is not divisible by num_heads 3",
          nn.MultiheadAttention, 10, 3)
    H.err("MultiheadAttention(8, 2): unknown option 'drop'", nn.MultiheadAttention, 8, 2, {drop = 0.1})
    local m = nn.MultiheadAttention(8, 2)
    H.err("MultiheadAttention(8, 2): expected 8 features in the last dim (query 2x5x6",
          m, tide.randn(2, 5, 6))
    H.err("key and value must have the same length", m, tide.randn(2, 5, 8), tide.randn(2, 4, 8),
          tide.randn(2, 3, 8))
    H.err("mask must be 5 x 5 or 4 x 5 x 5, got 3x3", m, tide.randn(2, 5, 8), {mask = tide.zeros(3, 3)})
    H.err("unknown option 'casual'", m, tide.randn(2, 5, 8), {casual = true})
  end)

  it("self-attention by one argument, unbatched input, per-head weights", function()
    tide.manual_seed(2)
    local m = nn.MultiheadAttention(8, 2)
    local x = tide.randn(2, 5, 8)
    local a, wa = m(x, {causal = true})
    local b, wb = m(x, x, x, {causal = true})
    H.close(a, b, 1e-6)
    H.close(wa, wb, 1e-6)
    local u, wu = m(x[1], {causal = true})                   -- L x d
    H.close(u, a[1], 1e-5)
    assert.same({5, 5}, wu.shape)
    local _, wh = m(x, {average_attn_weights = false})
    assert.same({2, 2, 5, 5}, wh.shape)
    local _, none = m(x, {need_weights = false})
    assert.is_nil(none)
  end)

  it("drops attention weights only when training", function()
    tide.manual_seed(3)
    local m = nn.MultiheadAttention(8, 2, {dropout = 0.5})
    local x = tide.randn(2, 5, 8)
    local _, w = m(x, {average_attn_weights = false})
    local zeros = w:eq(0):sum():item()
    assert.is_true(zeros > 10, "expected dropped weights, got " .. zeros .. " zeros")
    m:eval()
    local _, we = m(x, {average_attn_weights = false})
    H.close(we:sum(-1), tide.ones(2, 2, 5), 1e-5)
  end)
end)

describe("TransformerEncoder", function()
  it("maps its state dict to PyTorch's names (layers.0 ..., norm)", function()
    local enc = nn.TransformerEncoder({d_model = 8, nhead = 2, dim_feedforward = 16}, 2, {norm = true})
    local sd = enc:state_dict({to = "pytorch"})
    assert.is_not_nil(sd["layers.0.self_attn.in_proj_weight"])
    assert.is_not_nil(sd["layers.1.linear2.bias"])
    assert.is_not_nil(sd["norm.weight"])
    assert.equal(2 * 12 + 2, #enc:parameters())
    -- the layers start equal (cloned, as PyTorch deep-copies its layer) but do not share
    H.close(enc.layers[1].linear1.weight, enc.layers[2].linear1.weight, 0)
    assert.is_false(rawequal(enc.layers[1].linear1.weight, enc.layers[2].linear1.weight))
  end)

  it("clones a given layer", function()
    local layer = nn.TransformerEncoderLayer(8, 2, {dim_feedforward = 16, norm_first = true})
    local enc = nn.TransformerEncoder(layer, 3)
    assert.equal(3, #enc.layers)
    assert.is_true(enc.layers[3].norm_first)
    H.close(enc.layers[3].self_attn.in_proj_weight, layer.self_attn.in_proj_weight, 0)
  end)

  it("checks options and inputs", function()
    H.err("TransformerEncoderLayer(8, 3): d_model 8 is not divisible by nhead 3",
          nn.TransformerEncoderLayer, 8, 3)
    H.err("unknown option 'dim_ff'", nn.TransformerEncoderLayer, 8, 2, {dim_ff = 4})
    H.err("activation must be \"relu\", \"gelu\" or a function", nn.TransformerEncoderLayer, 8, 2,
          {activation = "tanh"})
    local layer = nn.TransformerEncoderLayer(8, 2, {dim_feedforward = 16})
    H.err("TransformerEncoderLayer(8, 2, {dim_feedforward = 16}): expected input B x T x 8, got 2x5x4",
          layer, tide.randn(2, 5, 4))
    H.err("expected a TransformerEncoderLayer or its options", nn.TransformerEncoder, nn.Linear(2, 2), 2)
  end)

  it("trains: a causal encoder learns to copy the previous token", function()
    tide.manual_seed(4)
    local V, d, T = 6, 16, 6
    local emb, pos = nn.Embedding(V, d), nn.PositionalEncoding(d, 32, {dropout = 0})
    local enc = nn.TransformerEncoder({d_model = d, nhead = 2, dim_feedforward = 32, dropout = 0}, 1)
    local head = nn.Linear(d, V)
    local model = nn.Module()
    model.emb, model.pos, model.enc, model.head = emb, pos, enc, head
    local opt = require("tide.optim").Adam(model:parameters(), {lr = 1e-2})
    local first, last
    for step = 1, 150 do
      local x = tide.randint(1, V, {8, T})
      local logits = head(enc(pos(emb(x)), {causal = true}))       -- 8 x T x V
      local y = logits:narrow(2, 2, T - 1):reshape(-1, V)
      local loss = tide.cross_entropy(y, x:narrow(2, 1, T - 1):reshape(-1))
      opt:zero_grad()
      loss:backward()
      opt:step()
      if step == 1 then first = loss:item() end
      last = loss:item()
    end
    assert.is_true(last < 0.3 * first, ("loss %g -> %g"):format(first, last))
  end)
end)

describe("nn.F.scaled_dot_product_attention", function()
  it("is the fused op, with the composed version's semantics", function()
    tide.manual_seed(5)
    local q, k, v = tide.randn(2, 3, 4, 8), tide.randn(2, 3, 6, 8), tide.randn(2, 3, 6, 5)
    local mask = tide.rand(4, 6):gt(0.3):logical_or(tide.arange(1, 6):eq(1))
    local s = q:matmul(k:transpose(-2, -1)) / math.sqrt(8)
    local ref = s:masked_fill(mask:logical_not(), -math.huge):softmax(-1):matmul(v)
    H.close(nn.F.scaled_dot_product_attention(q, k, v, {mask = mask}), ref, 1e-5)
    local above = tide.arange(1, 6):view(1, 6):gt(tide.arange(1, 4):view(4, 1))
    local refc = s:masked_fill(above, -math.huge):softmax(-1):matmul(v)
    H.close(nn.F.scaled_dot_product_attention(q, k, v, {causal = true}), refc, 1e-5)
    H.err("unknown option 'casual'", nn.F.scaled_dot_product_attention, q, k, v, {casual = true})
  end)

  it("reports shape errors from the kernel", function()
    local q, k = tide.randn(2, 4, 8), tide.randn(2, 6, 8)
    H.err("k and v must have the same number of keys, got k 2x6x8 and v 2x5x3",
          tide.scaled_dot_product_attention, q, k, tide.randn(2, 5, 3))
    H.err("mask 3x6 does not broadcast to the scores (4 x 6", tide.scaled_dot_product_attention,
          q, k, k, tide.zeros(3, 6))
    H.err("batch dims do not broadcast", tide.scaled_dot_product_attention, q, tide.randn(3, 6, 8), k)
    H.err("q must be a float tensor", tide.scaled_dot_product_attention, q:to("int64"), k, k)
  end)

  it("drops weights with the seeded generator (the same draw on any thread count)", function()
    local q = tide.randn(4, 16, 8)
    tide.manual_seed(9)
    local _, w1 = tide.scaled_dot_product_attention(q, q, q, {dropout = 0.25})
    local nt = tide.get_num_threads()
    tide.set_num_threads(1)
    tide.manual_seed(9)
    local _, w2 = tide.scaled_dot_product_attention(q, q, q, {dropout = 0.25})
    tide.set_num_threads(nt)
    H.close(w1, w2, 0)
    local frac = w1:eq(0):sum():item() / w1:numel()
    assert.is_true(frac > 0.18 and frac < 0.32, "dropped fraction " .. frac)
  end)
end)
