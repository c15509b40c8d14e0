-- tests/lua/models_spec.lua: stdlib/tide/models (doc/models.md): each model builds, gives the
-- documented output shapes, has PyTorch's parameter count and state-dict names for the same
-- architecture (numbers pasted from torch 1.13, the script is in the comment below), trains
-- (backward reaches every parameter), rejects bad options naming the model; gpt:generate.
-- Also nn.F.distillation_loss against PyTorch.
local tide = require "tide"
local nn = require "tide.nn"
local models = require "tide.models"
local H = require "helpers"

--[[ The reference figures: /usr/bin/python3 with torch 1.13, e.g. for the CNN
  L = [nn.Conv2d(1,32,3,padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32,64,3,padding=1),
       nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136,128), nn.ReLU(), nn.Linear(128,10)]
  m = nn.Sequential(*L); print(sum(p.numel() for p in m.parameters()), ' '.join(m.state_dict()))
ResNet: torchvision's names (conv1, bn1, layerN.i.{conv1,bn1,conv2,bn2,downsample.0/1}, fc) with
16/32/64 channels; gpt/transformer_classifier: nn.TransformerEncoderLayer(d, h, ff, p,
batch_first=True) in an nn.ModuleList named layers (plus tok, pos, ln_f, head). ]]
local REF = {
  cnn = {421642, "0.weight 0.bias 3.weight 3.bias 7.weight 7.bias 9.weight 9.bias"},
  cnn_bn_dropout = {421834, "0.weight 0.bias 1.weight 1.bias 1.running_mean 1.running_var "
    .. "1.num_batches_tracked 4.weight 4.bias 5.weight 5.bias 5.running_mean 5.running_var "
    .. "5.num_batches_tracked 9.weight 9.bias 12.weight 12.bias"},
  mlp = {535818, "1.weight 1.bias 3.weight 3.bias 5.weight 5.bias"},
  lenet5 = {61706, "0.weight 0.bias 3.weight 3.bias 7.weight 7.bias 9.weight 9.bias 11.weight "
    .. "11.bias"},
  autoencoder = {907848, "encoder.1.weight encoder.1.bias encoder.3.weight encoder.3.bias "
    .. "encoder.5.weight encoder.5.bias decoder.0.weight decoder.0.bias decoder.2.weight "
    .. "decoder.2.bias decoder.4.weight decoder.4.bias"},
  resnet20 = {272186, 128},
  resnet8_rgb = {78042, 56},
  resnet8 = {77754, (function()
    local bn = function(p) return ("%s.weight %s.bias %s.running_mean %s.running_var "
      .. "%s.num_batches_tracked"):format(p, p, p, p, p) end
    local function block(p, down)
      return table.concat({p .. ".conv1.weight", bn(p .. ".bn1"), p .. ".conv2.weight",
        bn(p .. ".bn2"), down and (p .. ".downsample.0.weight " .. bn(p .. ".downsample.1"))
        or nil}, " ")
    end
    return table.concat({"conv1.weight", bn("bn1"), block("layer1.0"), block("layer2.0", true),
                         block("layer3.0", true), "fc.weight fc.bias"}, " ")
  end)()},
  lstm_classifier = {214282, "lstm.weight_ih_l0 lstm.weight_hh_l0 lstm.bias_ih_l0 "
    .. "lstm.bias_hh_l0 lstm.weight_ih_l1 lstm.weight_hh_l1 lstm.bias_ih_l1 lstm.bias_hh_l1 "
    .. "fc.weight fc.bias"},
  gpt = {470784, 30},
  gpt1 = {272512, "tok.weight pos.weight layers.0.self_attn.in_proj_weight "
    .. "layers.0.self_attn.in_proj_bias layers.0.self_attn.out_proj.weight "
    .. "layers.0.self_attn.out_proj.bias layers.0.linear1.weight layers.0.linear1.bias "
    .. "layers.0.linear2.weight layers.0.linear2.bias layers.0.norm1.weight layers.0.norm1.bias "
    .. "layers.0.norm2.weight layers.0.norm2.bias ln_f.weight ln_f.bias head.weight head.bias"},
  transformer_classifier = {116482},
  -- pos.pe: the buffer of the PyTorch tutorial's PositionalEncoding (no parameters)
  transformer_classifier1 = {66498, "tok.weight pos.pe layers.0.self_attn.in_proj_weight "
    .. "layers.0.self_attn.in_proj_bias layers.0.self_attn.out_proj.weight "
    .. "layers.0.self_attn.out_proj.bias layers.0.linear1.weight layers.0.linear1.bias "
    .. "layers.0.linear2.weight layers.0.linear2.bias layers.0.norm1.weight layers.0.norm1.bias "
    .. "layers.0.norm2.weight layers.0.norm2.bias head.weight head.bias"},
}

-- the PyTorch names of m's state dict, in order, as one string
local function keys(m)
  local out = {}
  for k in pairs(m:state_dict{to = "pytorch"}) do out[#out + 1] = k end
  return table.concat(out, " ")
end

local function shape(t) return table.concat(t.shape, "x") end

-- the reference's parameter count and names (a string of names, or their number)
local function matches_pytorch(m, ref)
  assert.equal(ref[1], m:num_parameters())
  if type(ref[2]) == "string" then assert.equal(ref[2], keys(m))
  elseif ref[2] then assert.equal(ref[2], select(2, keys(m):gsub("%S+", ""))) end
end

-- out = m(x); a loss on it reaches every parameter
local function trains(m, x, loss)
  m:zero_grad()
  local y = m(x)
  ;(loss and loss(y) or (y * y):mean()):backward()
  for name, p in pairs(m:named_parameters()) do
    assert(p.grad, "no gradient for " .. name)
    assert.equal(shape(p), shape(p.grad))
  end
  return y
end

local function images(n, c, s) return tide.rand(n, c or 1, s or 28, s or 28) end

describe("models", function()
  tide.manual_seed(0)

  it("lists every model and loads its file on first use", function()
    for _, name in ipairs({"mlp", "cnn", "lenet5", "resnet", "autoencoder", "lstm_classifier",
                           "gpt", "transformer_classifier"}) do
      assert.equal("function", type(models[name]), name)
    end
  end)

  it("cnn is the seed CNN: PyTorch's parameters and names, N x 10 logits", function()
    local m = models.cnn()
    matches_pytorch(m, REF.cnn)
    assert.equal("4x10", shape(trains(m, images(4))))
    assert.equal(10, #m)
  end)

  it("cnn takes batchnorm, dropout and classes", function()
    local m = models.cnn{batchnorm = true, dropout = 0.5}
    matches_pytorch(m, REF.cnn_bn_dropout)
    assert.equal("BatchNorm2d", getmetatable(m[2]).__name)
    assert.equal("Dropout", getmetatable(m[#m - 1]).__name)
    assert.equal("3x10", shape(trains(m, images(3))))
    m:eval()
    assert.equal("2x5", shape(models.cnn{classes = 5}(images(2))))
  end)

  it("mlp: the listed sizes, Flatten first, activation and dropout between", function()
    local m = models.mlp{784, 512, 256, 10}
    matches_pytorch(m, REF.mlp)
    assert.equal("5x10", shape(trains(m, images(5))))
    local g = models.mlp{20, 8, 3, activation = "gelu", dropout = 0.1}
    assert.same({"Flatten", "Linear", "GELU", "Dropout", "Linear"}, (function()
      local names = {}
      for i = 1, #g do names[i] = getmetatable(g[i]).__name end
      return names
    end)())
    assert.equal("2x3", shape(g(tide.randn(2, 20))))
  end)

  it("lenet5: PyTorch's parameters and names", function()
    local m = models.lenet5()
    matches_pytorch(m, REF.lenet5)
    assert.equal("2x10", shape(trains(m, images(2))))
  end)

  it("resnet: depth 6n+2, torchvision's names, 28x28 and 32x32, 1 or 3 channels", function()
    matches_pytorch(models.resnet(), REF.resnet20)
    local m = models.resnet{depth = 8}
    matches_pytorch(m, REF.resnet8)
    assert.equal("2x10", shape(trains(m, images(2))))
    local rgb = models.resnet{depth = 8, channels = 3, classes = 100}
    assert.equal(REF.resnet8_rgb[1] + 64 * 90 + 90, rgb:num_parameters())   -- fc: 100 classes
    matches_pytorch(models.resnet{depth = 8, channels = 3}, REF.resnet8_rgb)
    rgb:eval()
    assert.equal("2x100", shape(rgb(images(2, 3, 32))))
  end)

  it("autoencoder: 784-400-300-64 and back, reconstructions in the input's shape", function()
    local m = models.autoencoder()
    matches_pytorch(m, REF.autoencoder)
    local x = images(3)
    local y = trains(m, x, function(y) return nn.F.mse_loss(y, x) end)
    assert.equal("3x1x28x28", shape(y))
    assert.is_true(y:min():item() >= 0 and y:max():item() <= 1)   -- Sigmoid output
    assert.equal("2x784", shape(models.autoencoder{code = 16}(tide.rand(2, 784))))
  end)

  it("bad options raise errors naming the model and the option", function()
    H.err("models.cnn: unknown option 'batchnrom'", models.cnn, {batchnrom = true})
    H.err("models.cnn: option 'dropout' must be a probability", models.cnn, {dropout = 1})
    H.err("models.cnn: options must be a table", models.cnn, 3)
    H.err("models.mlp: expected at least two sizes", models.mlp, {784})
    H.err("models.mlp: option 'activation' must be one of", models.mlp, {4, 2, activation = "elu"})
    H.err("models.resnet: option 'depth' must be 6n+2", models.resnet, {depth = 18})
    H.err("models.resnet: option 'channels' must be a positive integer", models.resnet, {channels = 0})
    H.err("models.lenet5: unknown option 'num_classes'", models.lenet5, {num_classes = 10})
    H.err("models.autoencoder: option 'code' must be a positive integer", models.autoencoder,
          {code = 2.5})
    H.err("models.gpt: d_model (100) must be divisible by heads (3)", models.gpt,
          {d_model = 100, heads = 3})
    H.err("models.lstm_classifier: unknown option 'hiden'", models.lstm_classifier, {hiden = 4})
    H.err("models.transformer_classifier: option 'classes' must be a positive integer",
          models.transformer_classifier, {classes = -1})
  end)
end)

describe("models (recurrent and attention)", function()
  it("lstm_classifier: PyTorch's LSTM names, rows of an image as steps", function()
    local m = models.lstm_classifier()
    matches_pytorch(m, REF.lstm_classifier)
    assert.equal("3x10", shape(trains(m, images(3))))
    local s = models.lstm_classifier{input = 5, hidden = 8, layers = 1, classes = 3}
    assert.equal("2x3", shape(s(tide.randn(2, 7, 5))))
  end)

  local function ids(b, t, v) return tide.randint(1, v, {b, t}):long() end

  it("gpt: PyTorch's TransformerEncoderLayer names, B x T x vocab logits", function()
    matches_pytorch(models.gpt(), REF.gpt)
    local m = models.gpt{layers = 1}
    matches_pytorch(m, REF.gpt1)
    local x = ids(2, 10, 256)
    assert.equal("2x10x256", shape(trains(m, x, function(y)
      return nn.F.cross_entropy(y:view(-1, 256), x:view(-1))
    end)))
    H.err("GPT: 65 tokens exceed seq_len 64", m, ids(1, 65, 256))
  end)

  it("gpt is causal: a later token does not change earlier logits", function()
    local m = models.gpt{vocab = 11, d_model = 16, heads = 2, layers = 2, seq_len = 8, ff = 32}
    m:eval()
    local a = tide.tensor({{1, 2, 3, 4, 5}}, {dtype = "int64"})
    local b = tide.tensor({{1, 2, 3, 4, 9}}, {dtype = "int64"})
    H.close(m(a):narrow(2, 1, 4), m(b):narrow(2, 1, 4), 1e-5, "logits of tokens 1..4")
  end)

  it("gpt:generate returns the prompt and n new ids in range, reproducibly", function()
    local m = models.gpt{vocab = 13, d_model = 16, heads = 2, layers = 1, seq_len = 6, ff = 32}
    local prompt = tide.tensor({3, 1, 4}, {dtype = "int64"})
    tide.manual_seed(7)
    local out = m:generate(prompt, 9, {top_k = 5})
    assert.equal("12", shape(out))
    assert.equal("int64", out.dtype)
    assert.same({3, 1, 4}, out:narrow(1, 1, 3):totable())
    for _, id in ipairs(out:totable()) do assert.is_true(id >= 1 and id <= 13) end
    tide.manual_seed(7)
    assert.same(out:totable(), m:generate(prompt, 9, {top_k = 5}):totable())
    assert.is_true(m.training)                            -- generate restores the mode
    local two = m:generate(prompt:view(1, 3), 2, {temperature = 0.5})
    assert.equal("1x5", shape(two))
    H.err("GPT:generate: unknown option 'topk'", function() m:generate(prompt, 1, {topk = 2}) end)
    H.err("GPT:generate: prompt must be a non-empty int64", function() m:generate(tide.ones(3), 1) end)
  end)

  it("transformer_classifier: mean-pooled encoder, B x classes", function()
    local m = models.transformer_classifier()
    assert.equal(REF.transformer_classifier[1], m:num_parameters())
    matches_pytorch(models.transformer_classifier{layers = 1}, REF.transformer_classifier1)
    local s = models.transformer_classifier{vocab = 20, d_model = 16, heads = 2, layers = 1,
                                            classes = 3, max_len = 12, ff = 32}
    assert.equal("4x3", shape(trains(s, ids(4, 12, 20))))
  end)
end)

describe("nn.F.distillation_loss", function()
  -- torch: a*T*T*F.kl_div(F.log_softmax(s/T,1), F.softmax(t/T,1), reduction="batchmean")
  --        + (1-a)*F.cross_entropy(s, y), s, t float64 below, y = [1, 2] (0-based)
  local s0 = {{1.0, 2.0, 0.5}, {0.1, -1.0, 3.0}}
  local t = H.T({{2.0, 1.0, 0.0}, {0.5, 0.5, 1.5}})
  local y = H.long({2, 3})

  it("equals PyTorch's value and gradient", function()
    local s = tide.tensor(s0, {dtype = "float64", requires_grad = true})
    local loss = nn.F.distillation_loss(s, t, y)
    assert.is_true(math.abs(loss:item() - 0.5668931844390868) < 1e-12)
    loss:backward()
    H.close(s.grad, H.T({{-0.17460395364641537, 0.12363443181086711, 0.05096952183554801},
                         {-0.07487066098345317, -0.1897437771531356, 0.2646144381365887}}),
            1e-12, "gradient")
    local l2 = nn.F.distillation_loss(s, t, y, {temperature = 2, alpha = 0.5})
    assert.is_true(math.abs(l2:item() - 0.4302481274925083) < 1e-12)
  end)

  it("does not reach the teacher, and checks its arguments", function()
    local s = tide.tensor(s0, {requires_grad = true})
    local tt = tide.tensor({{2, 1, 0}, {0.5, 0.5, 1.5}}, {requires_grad = true})
    nn.F.distillation_loss(s, tt, y):backward()
    assert.is_nil(tt.grad)
    H.err("nn.F.distillation_loss: unknown option 'temp'", nn.F.distillation_loss, s, tt, y, {temp = 2})
    H.err("nn.F.distillation_loss: alpha must be a number in [0, 1], got 2", nn.F.distillation_loss, s, tt, y, {alpha = 2})
    H.err("nn.F.distillation_loss: alpha must be a number in [0, 1], got nan", nn.F.distillation_loss, s, tt, y, {alpha = 0 / 0})
    H.err("nn.F.distillation_loss: temperature must be a number in (0, inf), got nan",
          nn.F.distillation_loss, s, tt, y, {temperature = 0 / 0})
    H.err("differ in shape", nn.F.distillation_loss, s, tide.zeros(2, 4), y)
  end)
end)
