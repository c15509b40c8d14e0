-- tests/lua/nn_errors_spec.lua: bad input to every nn layer, loss, optimizer and scheduler, one
-- row per case: an unknown option, a wrong input rank, feature size or dtype, class targets out
-- of 1..C, an empty parameter list, a non-tensor argument. Each must be a Lua error (no crash)
-- whose message holds every listed piece: the layer with its config, the shapes or values, and
-- what was expected.
local tide = require "tide"
local nn = require "tide.nn"
local optim = require "tide.optim"
local H = require "helpers"

local R = tide.randn
local function I(...) return tide.zeros({...}, {dtype = "int64"}) end
local long = H.long
local BAD = {pading = 1}

-- a call of module m (built by make) on the given arguments, made when the row runs
local function fwd(make, ...)
  local args = table.pack(...)
  return function() return make()(table.unpack(args, 1, args.n)) end
end
local function new(cls, ...)
  local args = table.pack(...)
  return function() return cls(table.unpack(args, 1, args.n)) end
end
local function L(...) local a = {...} return function() return nn.Linear(table.unpack(a)) end end

local conv = function() return nn.Conv2d(3, 8, 3) end
local convt = function() return nn.ConvTranspose2d(3, 8, 3) end
local x43, t4 = R(4, 3), long{1, 2, 3, 1}

local ROWS = {
  -- Linear
  {"Linear option", new(nn.Linear, 4, 3, BAD), {"Linear(4, 3): unknown option 'pading'"}},
  {"Linear scalar", fwd(L(4, 3), tide.tensor(1)), {"Linear(4, 3)", "4 features, got a scalar"}},
  {"Linear features", fwd(L(4, 3), R(2, 5)), {"Linear(4, 3)", "4 features, got 5", "2x5"}},
  {"Linear int", fwd(L(4, 3), I(2, 4)), {"Linear(4, 3)", "float32 input", "got int64", "2x4"}},
  {"Linear int, no bias", fwd(L(4, 3, {bias = false}), I(2, 4)),
   {"Linear(4, 3, {bias = false})", "float32", "got int64"}},
  {"Linear float64", fwd(L(4, 3), R(2, 4):double()), {"Linear(4, 3)", "float32", "got float64"}},
  {"Linear string", fwd(L(4, 3), "x"), {"Linear(4, 3)", "expected a tensor input, got string"}},
  {"Linear sizes", new(nn.Linear, 0, 3), {"Linear(0, 3)", "positive integers"}},
  -- Conv2d, ConvTranspose2d
  {"Conv2d option", new(nn.Conv2d, 3, 8, 3, BAD), {"Conv2d(3, 8, 3): unknown option 'pading'"}},
  {"Conv2d rank", fwd(conv, R(3, 5)), {"Conv2d(3, 8, 3)", "N x C x H x W", "got 3x5"}},
  {"Conv2d channels", fwd(conv, R(1, 2, 5, 5)), {"Conv2d(3, 8, 3)", "3 input channels, got 2", "1x2x5x5"}},
  {"Conv2d int", fwd(conv, I(1, 3, 5, 5)), {"Conv2d(3, 8, 3)", "float32 or float64", "int64"}},
  {"Conv2d small", fwd(conv, R(1, 3, 2, 2)), {"Conv2d(3, 8, 3)", "kernel 3x3 is larger", "1x3x2x2"}},
  {"Conv2d nil", fwd(conv, nil), {"Conv2d(3, 8, 3)", "expected a tensor input, got nil"}},
  {"Conv2d groups", new(nn.Conv2d, 3, 8, 3, {groups = 2}), {"Conv2d(3, 8, 3)", "groups (2) must divide"}},
  {"ConvT option", new(nn.ConvTranspose2d, 3, 8, 3, BAD), {"ConvTranspose2d(3, 8, 3): unknown option 'pading'"}},
  {"ConvT rank", fwd(convt, R(3, 5)), {"ConvTranspose2d(3, 8, 3)", "N x C x H x W", "got 3x5"}},
  {"ConvT channels", fwd(convt, R(1, 2, 5, 5)), {"ConvTranspose2d(3, 8, 3)", "3 input channels, got 2"}},
  {"ConvT int", fwd(convt, I(1, 3, 5, 5)), {"ConvTranspose2d(3, 8, 3)", "float32 or float64", "int64"}},
  {"ConvT empty output", fwd(function() return nn.ConvTranspose2d(3, 8, 3, {padding = 2}) end,
                             R(1, 3, 2, 2)),
   {"ConvTranspose2d(3, 8, 3, {padding = 2})", "output would be 0x0", "1x3x2x2"}},
  {"ConvT string", fwd(convt, "x"), {"ConvTranspose2d(3, 8, 3)", "expected a tensor input, got string"}},
  -- pooling
  {"MaxPool2d option", new(nn.MaxPool2d, 2, BAD), {"MaxPool2d(2): unknown option 'pading'"}},
  {"MaxPool2d padding", new(nn.MaxPool2d, 2, {padding = 2}), {"MaxPool2d(2)", "padding 2", "half the kernel"}},
  {"MaxPool2d rank", fwd(function() return nn.MaxPool2d(2) end, R(3, 5)), {"MaxPool2d(2)", "got 3x5"}},
  {"MaxPool2d int", fwd(function() return nn.MaxPool2d(2) end, I(1, 3, 4, 4)), {"MaxPool2d(2)", "int64"}},
  {"MaxPool2d small", fwd(function() return nn.MaxPool2d(3) end, R(1, 3, 2, 2)),
   {"MaxPool2d(3)", "kernel 3x3 is larger than the padded input 2x2", "1x3x2x2"}},
  {"AvgPool2d option", new(nn.AvgPool2d, 2, BAD), {"AvgPool2d(2): unknown option 'pading'"}},
  {"AvgPool2d padding", new(nn.AvgPool2d, {2, 4}, {padding = {1, 3}}), {"AvgPool2d({2, 4})", "{1, 3}", "half"}},
  {"AvgPool2d rank", fwd(function() return nn.AvgPool2d(2) end, R(5)), {"AvgPool2d(2)", "got 5"}},
  {"AvgPool2d int", fwd(function() return nn.AvgPool2d(2) end, I(1, 3, 4, 4)), {"AvgPool2d(2)", "int64"}},
  {"AvgPool2d nil", fwd(function() return nn.AvgPool2d(2) end), {"AvgPool2d(2)", "got nil"}},
  {"Adaptive option", new(nn.AdaptiveAvgPool2d, 2, BAD), {"AdaptiveAvgPool2d(2): unknown option 'pading'"}},
  {"Adaptive size", new(nn.AdaptiveAvgPool2d, {2, 0}), {"AdaptiveAvgPool2d({2, 0})", "output_size"}},
  {"Adaptive rank", fwd(function() return nn.AdaptiveAvgPool2d(2) end, R(3, 5)),
   {"AdaptiveAvgPool2d(2)", "got 3x5"}},
  {"Adaptive int", fwd(function() return nn.AdaptiveAvgPool2d(2) end, I(1, 3, 4, 4)),
   {"AdaptiveAvgPool2d(2)", "int64"}},
  -- BatchNorm1d, BatchNorm2d, LayerNorm
  {"BatchNorm1d option", new(nn.BatchNorm1d, 4, BAD), {"BatchNorm1d(4): unknown option 'pading'"}},
  {"BatchNorm1d eps nan", new(nn.BatchNorm1d, 4, {eps = 0 / 0}), {"BatchNorm1d(4)", "eps must be a number in [0, inf), got nan"}},
  {"BatchNorm1d momentum nan", new(nn.BatchNorm1d, 4, {momentum = 0 / 0}),
   {"BatchNorm1d(4)", "momentum must be a number in [0, 1], got nan"}},
  {"BatchNorm2d momentum", new(nn.BatchNorm2d, 4, {momentum = 2}), {"BatchNorm2d(4)", "momentum must be a number in [0, 1], got 2"}},
  {"BatchNorm1d rank", fwd(function() return nn.BatchNorm1d(4) end, R(2, 4, 3, 3)),
   {"BatchNorm1d(4)", "N x C or N x C x L", "got 2x4x3x3"}},
  {"BatchNorm1d features", fwd(function() return nn.BatchNorm1d(4) end, R(2, 5)),
   {"BatchNorm1d(4)", "4 channels in dim 2, got 5", "2x5"}},
  {"BatchNorm1d int", fwd(function() return nn.BatchNorm1d(4) end, I(2, 4)), {"BatchNorm1d(4)", "int64"}},
  {"BatchNorm1d batch 1", fwd(function() return nn.BatchNorm1d(4) end, R(1, 4)),
   {"BatchNorm1d(4)", "more than 1 value per channel when training", "1x4"}},
  {"BatchNorm2d option", new(nn.BatchNorm2d, 4, BAD), {"BatchNorm2d(4): unknown option 'pading'"}},
  {"BatchNorm2d rank", fwd(function() return nn.BatchNorm2d(4) end, R(2, 4)),
   {"BatchNorm2d(4)", "N x C x H x W", "got 2x4"}},
  {"BatchNorm2d features", fwd(function() return nn.BatchNorm2d(4, {momentum = 0.5}) end, R(2, 3, 2, 2)),
   {"BatchNorm2d(4, {momentum = 0.5})", "4 channels in dim 2, got 3", "2x3x2x2"}},
  {"BatchNorm2d int", fwd(function() return nn.BatchNorm2d(4) end, I(2, 4, 2, 2)), {"BatchNorm2d(4)", "int64"}},
  {"LayerNorm option", new(nn.LayerNorm, 8, BAD), {"LayerNorm(8): unknown option 'pading'"}},
  {"LayerNorm eps nan", new(nn.LayerNorm, 8, {eps = 0 / 0}), {"LayerNorm(8)", "eps must be a number in [0, inf), got nan"}},
  {"LayerNorm features", fwd(function() return nn.LayerNorm(8) end, R(2, 5)),
   {"LayerNorm(8)", "ending in 8, got 2x5"}},
  {"LayerNorm int", fwd(function() return nn.LayerNorm(8) end, I(2, 8)), {"LayerNorm(8)", "int64"}},
  {"LayerNorm string", fwd(function() return nn.LayerNorm(8) end, "x"), {"LayerNorm(8)", "got string"}},
  -- Dropout, Embedding, Flatten
  {"Dropout option", new(nn.Dropout, 0.5, BAD), {"Dropout(0.5): unknown option 'pading'"}},
  {"Dropout p", new(nn.Dropout, 1.5), {"Dropout(1.5)", "p must be a number in [0, 1), got 1.5"}},
  {"Dropout p 1", new(nn.Dropout, 1), {"Dropout(1)", "p must be a number in [0, 1), got 1"}},
  {"Dropout p nan", new(nn.Dropout, 0 / 0), {"Dropout(", "p must be a number in [0, 1), got nan"}},
  {"Dropout p negative", new(nn.Dropout, -0.1), {"Dropout(-0.1)", "[0, 1), got -0.1"}},
  {"Dropout int", fwd(function() return nn.Dropout(0.5) end, I(2, 3)), {"Dropout(p=0.5)", "int64"}},
  {"Dropout number", fwd(function() return nn.Dropout(0.5) end, 3), {"Dropout(p=0.5)", "got number"}},
  {"Embedding option", new(nn.Embedding, 10, 4, BAD), {"Embedding(10, 4): unknown option 'pading'"}},
  {"Embedding float", fwd(function() return nn.Embedding(10, 4) end, R(2, 3)),
   {"Embedding(10, 4)", "int64 indices, got float32", "2x3"}},
  {"Embedding index 0", fwd(function() return nn.Embedding(10, 4) end, long{{3, 0}}),
   {"Embedding(10, 4)", "index 0 out of range 1..10"}},
  {"Embedding index C+1", fwd(function() return nn.Embedding(10, 4) end, long{11}),
   {"Embedding(10, 4)", "index 11 out of range 1..10"}},
  {"Flatten option", new(nn.Flatten, 2, -1, BAD), {"Flatten(2, -1): unknown option 'pading'"}},
  {"Flatten dims", new(nn.Flatten, "2"), {"Flatten(2, -1)", "must be integers"}},
  {"Flatten rank", fwd(function() return nn.Flatten() end, R(4)), {"Flatten(", "dim 2 out of range for a 1-D"}},
}

local ACTS = {"ReLU", "GELU", "Tanh", "Sigmoid", "SiLU"}
for _, name in ipairs(ACTS) do
  ROWS[#ROWS + 1] = {name .. " option", new(nn[name], BAD), {name, "unknown option 'pading'"}}
  ROWS[#ROWS + 1] = {name .. " table", fwd(nn[name], {}), {name .. "()", "expected a tensor input, got table"}}
end
for _, name in ipairs({"Softmax", "LogSoftmax"}) do
  ROWS[#ROWS + 1] = {name .. " option", new(nn[name], -1, BAD), {name .. "(-1): unknown option 'pading'"}}
  ROWS[#ROWS + 1] = {name .. " no dim", new(nn[name]), {name, "dim must be an integer"}}
  ROWS[#ROWS + 1] = {name .. " dim", fwd(function() return nn[name](3) end, R(2, 3)),
                     {name .. "(dim=3)", "dim 3 out of range for a 2-D tensor"}}
end

-- recurrent layers
for _, name in ipairs({"RNN", "LSTM", "GRU"}) do
  local make = function() return nn[name](4, 6) end
  local cfg = name .. "(4, 6)"
  local h0 = R(1, 3, 6)
  for _, r in ipairs({
    {"option", new(nn[name], 4, 6, BAD), {cfg .. ": unknown option 'pading'"}},
    {"rank", fwd(make, R(2, 3, 4, 5)), {cfg, "3 dims (T x B x in) or 2", "got 2x3x4x5"}},
    {"features", fwd(make, R(5, 2, 3)), {cfg, "4 features, got 3", "5x2x3"}},
    {"int", fwd(make, I(5, 2, 4)), {cfg, "float32 input", "got int64", "5x2x4"}},
    {"string", fwd(make, "x"), {cfg, "expected a tensor input, got string"}},
    {"state", fwd(make, R(5, 2, 4), name == "LSTM" and {h0, h0} or h0),
     {cfg, "h0 of shape 1x2x6, got 1x3x6"}},
    {"num_layers", new(nn[name], 4, 6, {num_layers = 0}), {cfg, "num_layers must be a positive integer"}},
    {"dropout nan", new(nn[name], 4, 6, {dropout = 0 / 0}), {cfg, "dropout must be a number in [0, 1), got nan"}},
  }) do ROWS[#ROWS + 1] = {name .. " " .. r[1], r[2], r[3]} end
end

-- attention and the transformer
local mha = function() return nn.MultiheadAttention(8, 2) end
local tel = function() return nn.TransformerEncoderLayer(8, 2, {dim_feedforward = 16}) end
local TEL = "TransformerEncoderLayer(8, 2, {dim_feedforward = 16})"
local enc = function() return nn.TransformerEncoder({d_model = 8, nhead = 2, dim_feedforward = 16}, 2) end
local pe = function() return nn.PositionalEncoding(8, 10) end
for _, r in ipairs({
  {"MHA option", new(nn.MultiheadAttention, 8, 2, BAD), {"MultiheadAttention(8, 2): unknown option 'pading'"}},
  {"MHA heads", new(nn.MultiheadAttention, 8, 3), {"MultiheadAttention(8, 3)", "not divisible by num_heads 3"}},
  {"MHA dropout nan", new(nn.MultiheadAttention, 8, 2, {dropout = 0 / 0}),
   {"MultiheadAttention(8, 2)", "dropout must be a number in [0, 1), got nan"}},
  {"MHA call option", fwd(mha, R(2, 3, 8), nil, nil, BAD), {"MultiheadAttention(8, 2): unknown option 'pading'"}},
  {"MHA rank", fwd(mha, R(2, 3, 4, 8)), {"MultiheadAttention(8, 2)", "3-D inputs", "query 2x3x4x8"}},
  {"MHA features", fwd(mha, R(2, 3, 6)), {"MultiheadAttention(8, 2)", "8 features", "query 2x3x6"}},
  {"MHA int", fwd(mha, I(2, 3, 8)), {"MultiheadAttention(8, 2)", "float32 inputs", "int64", "query 2x3x8"}},
  {"MHA key batch", fwd(mha, R(2, 3, 8), R(1, 3, 8), R(1, 3, 8)), {"MultiheadAttention(8, 2)", "same batch size", "key 1x3x8"}},
  {"MHA mask", fwd(mha, R(2, 3, 8), {mask = R(2, 2)}), {"MultiheadAttention(8, 2)", "mask must be 3 x 3", "got 2x2"}},
  {"MHA number", fwd(mha, 5), {"MultiheadAttention(8, 2)", "query must be a tensor, got number"}},
  {"TEL option", new(nn.TransformerEncoderLayer, 8, 2, BAD), {"TransformerEncoderLayer(8, 2): unknown option 'pading'"}},
  {"TEL dropout nan", new(nn.TransformerEncoderLayer, 8, 2, {dropout = 0 / 0}),
   {"TransformerEncoderLayer(8, 2)", "dropout must be a number in [0, 1), got nan"}},
  {"TEL eps nan", new(nn.TransformerEncoderLayer, 8, 2, {layer_norm_eps = 0 / 0}),
   {"TransformerEncoderLayer(8, 2)", "layer_norm_eps must be a number in [0, inf), got nan"}},
  {"TEL activation", new(nn.TransformerEncoderLayer, 8, 2, {activation = "tanh"}),
   {"TransformerEncoderLayer(8, 2)", "activation must be", "got tanh"}},
  {"TEL call option", fwd(tel, R(2, 3, 8), BAD), {TEL .. ": unknown option 'pading'"}},
  {"TEL rank", fwd(tel, R(2, 3, 4, 8)), {TEL, "B x T x 8, got 2x3x4x8"}},
  {"TEL features", fwd(tel, R(2, 3, 6)), {TEL, "B x T x 8, got 2x3x6"}},
  {"TEL int", fwd(tel, I(2, 3, 8)), {TEL, "float32 input", "got int64", "2x3x8"}},
  {"TEL nil", fwd(tel), {TEL, "expected a tensor input, got nil"}},
  {"Encoder option", new(nn.TransformerEncoder, {d_model = 8, nhead = 2}, 2, BAD),
   {"TransformerEncoder(TransformerEncoderLayer(8, 2), 2): unknown option 'pading'"}},
  {"Encoder layer option", new(nn.TransformerEncoder, {d_model = 8, nhead = 2, pading = 1}, 2),
   {"TransformerEncoderLayer(8, 2): unknown option 'pading'"}},
  {"Encoder layers", new(nn.TransformerEncoder, {d_model = 8, nhead = 2}, 0),
   {"TransformerEncoder(TransformerEncoderLayer(8, 2), 0)", "num_layers must be a positive integer"}},
  {"Encoder layer", new(nn.TransformerEncoder, nn.Linear(8, 8), 2),
   {"TransformerEncoder(Linear(8, 8), 2)", "expected a TransformerEncoderLayer"}},
  {"Encoder features", fwd(enc, R(2, 3, 6)), {TEL, "B x T x 8, got 2x3x6"}},
  {"Encoder int", fwd(enc, I(2, 3, 8)), {TEL, "got int64"}},
  {"PE option", new(nn.PositionalEncoding, 8, 10, BAD), {"PositionalEncoding(8, 10): unknown option 'pading'"}},
  {"PE dropout nan", new(nn.PositionalEncoding, 8, 10, {dropout = 0 / 0}),
   {"PositionalEncoding(8, 10)", "dropout must be a number in [0, 1), got nan"}},
  {"PE rank", fwd(pe, R(3, 8)), {"PositionalEncoding(8, 10)", "B x T x 8, got 3x8"}},
  {"PE features", fwd(pe, R(2, 3, 6)), {"PositionalEncoding(8, 10)", "B x T x 8, got 2x3x6"}},
  {"PE length", fwd(pe, R(2, 11, 8)), {"PositionalEncoding(8, 10)", "11 positions is longer than max_len 10"}},
  {"PE int", fwd(pe, I(2, 3, 8)), {"PositionalEncoding(8, 10)", "float input, got int64", "2x3x8"}},
  {"PE string", fwd(pe, "x"), {"PositionalEncoding(8, 10)", "got string"}},
}) do ROWS[#ROWS + 1] = r end

-- losses
for _, name in ipairs({"CrossEntropyLoss", "NLLLoss"}) do
  local make = function() return nn[name]() end
  for _, r in ipairs({
    {"option", new(nn[name], BAD), {name .. ": unknown option 'pading'"}},
    {"reduction", new(nn[name], {reduction = "avg"}), {name, "reduction must be", "got avg"}},
    {"class 0", fwd(make, x43, long{1, 0, 3, 1}), {name .. "()", "target class 0 out of range 1..3"}},
    {"class C+1", fwd(make, x43, long{1, 2, 4, 1}), {name .. "()", "target class 4 out of range 1..3"}},
    {"target length", fwd(make, x43, long{1, 2, 3}), {name .. "()", "target shape 3", "input 4x3"}},
    {"scalar input", fwd(make, tide.tensor(1), t4), {name .. "()", "got a scalar"}},
    {"int input", fwd(make, I(4, 3), t4), {name .. "()", "expected float", "got int64"}},
    {"table target", fwd(make, x43, {1, 2}), {name .. "()", "got userdata and table"}},
  }) do ROWS[#ROWS + 1] = {name .. " " .. r[1], r[2], r[3]} end
end
ROWS[#ROWS + 1] = {"NLLLoss float target", fwd(nn.NLLLoss, x43, tide.tensor({1, 2, 3, 1})),
                   {"NLLLoss()", "expected int64 class targets, got float32"}}
ROWS[#ROWS + 1] = {"CrossEntropyLoss float labels", fwd(nn.CrossEntropyLoss, x43, tide.tensor({1, 2, 3, 1})),
                   {"CrossEntropyLoss()", "target is float32 of shape 4 for input 4x3",
                    "class indices must be int64", "probabilities of shape 4x3"}}
ROWS[#ROWS + 1] = {"CrossEntropyLoss smoothing", fwd(function()
  return nn.CrossEntropyLoss({label_smoothing = 2}) end, x43, t4),
                   {"CrossEntropyLoss({label_smoothing = 2})", "label_smoothing must be a number in [0, 1], got 2"}}
ROWS[#ROWS + 1] = {"CrossEntropyLoss smoothing nan", new(nn.CrossEntropyLoss, {label_smoothing = 0 / 0}),
                   {"CrossEntropyLoss(", "label_smoothing must be a number in [0, 1], got nan"}}
ROWS[#ROWS + 1] = {"SmoothL1Loss beta nan", new(nn.SmoothL1Loss, {beta = 0 / 0}),
                   {"SmoothL1Loss(", "beta must be a number in [0, inf), got nan"}}
for _, name in ipairs({"MSELoss", "L1Loss", "SmoothL1Loss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss"}) do
  local make = function() return nn[name]() end
  local p = R(4, 3):sigmoid()
  for _, r in ipairs({
    {"option", new(nn[name], BAD), {name .. ": unknown option 'pading'"}},
    {"shapes", fwd(make, p, R(4, 2):sigmoid()), {name .. "()", "input shape 4x3 and target shape 4x2 differ"}},
    {"int input", fwd(make, I(4, 3), p), {name .. "()", "float input, got int64"}},
    {"number target", fwd(make, p, 1), {name .. "()", "got userdata and number"}},
  }) do ROWS[#ROWS + 1] = {name .. " " .. r[1], r[2], r[3]} end
end
ROWS[#ROWS + 1] = {"BCELoss input range", fwd(nn.BCELoss, tide.full({2}, 1.5), tide.ones(2)),
                   {"BCELoss()", "input values must be in [0, 1], got 1.5"}}

-- optimizers and schedulers
local w = tide.zeros(2, {requires_grad = true})
for _, name in ipairs({"SGD", "Adam", "AdamW", "RMSprop", "Adagrad"}) do
  local o = {lr = 0.1}
  for _, r in ipairs({
    {"option", new(optim[name], {w}, {lr = 0.1, pading = 1}), {name .. ": unknown option 'pading'"}},
    {"empty", new(optim[name], {}, o), {name .. ": empty parameter list"}},
    {"empty group", new(optim[name], {{params = {}}}, o), {name .. ": empty parameter list"}},
    {"string param", new(optim[name], {w, "x"}, o), {name .. ": parameter 2 is a string, expected a tensor"}},
    {"nil", new(optim[name], nil, o), {name .. ": expected a list of tensors or of parameter groups, got nil"}},
    {"int param", new(optim[name], {I(2)}, o), {name .. ": parameter 1 is int64, expected float32 or float64"}},
    {"lr", new(optim[name], {w}, {lr = -1}), {name .. ": lr must be >= 0, got -1"}},
  }) do ROWS[#ROWS + 1] = {name .. " " .. r[1], r[2], r[3]} end
end
local opt = optim.SGD({w}, {lr = 0.1})
for name, o in pairs({StepLR = {step_size = 2}, ExponentialLR = {gamma = 0.5},
                      CosineAnnealingLR = {T_max = 5}, LinearWarmup = {warmup_steps = 2},
                      ReduceLROnPlateau = {}}) do
  local bad = {pading = 1}
  for k, v in pairs(o) do bad[k] = v end
  ROWS[#ROWS + 1] = {name .. " option", new(optim[name], opt, bad), {name .. ": unknown option 'pading'"}}
  ROWS[#ROWS + 1] = {name .. " not an optimizer", new(optim[name], {}, o),
                     {name .. ": expected an optimizer, got table"}}
end

describe("bad input gives an error naming the layer, its config and the values", function()
  for _, row in ipairs(ROWS) do
    it(row[1], function()
      local ok, msg = pcall(row[2])
      assert.is_false(ok, row[1] .. ": no error")
      assert.equal("string", type(msg))
      for _, piece in ipairs(row[3]) do
        assert(msg:find(piece, 1, true), ("%s: %q not in: %s"):format(row[1], piece, msg))
      end
    end)
  end
  it("covers every layer, loss and optimizer class", function()
    local named = {}
    for _, row in ipairs(ROWS) do named[row[1]:match("^(%S+)")] = true end
    for _, k in ipairs({"Linear", "Conv2d", "ConvT", "MaxPool2d", "AvgPool2d", "Adaptive",
                        "BatchNorm1d", "BatchNorm2d", "LayerNorm", "Dropout", "Embedding", "Flatten",
                        "Softmax", "LogSoftmax", "RNN", "LSTM", "GRU", "MHA", "TEL", "Encoder", "PE",
                        "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "SmoothL1Loss", "BCELoss",
                        "BCEWithLogitsLoss", "KLDivLoss", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad",
                        "StepLR", "ExponentialLR", "CosineAnnealingLR", "LinearWarmup",
                        "ReduceLROnPlateau", table.unpack(ACTS)}) do
      assert(named[k], "no bad-input row for " .. k)
    end
  end)
end)
