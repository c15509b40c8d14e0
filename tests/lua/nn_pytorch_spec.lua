-- tests/lua/nn_pytorch_spec.lua: PyTorch state dicts (scripts/gen_sd_fixtures.py) loaded into
-- the same architectures built with tide: an Embedding + bidirectional 2-layer LSTM text model,
-- a GRU, a TransformerEncoder with a final LayerNorm, and a ConvTranspose2d/pooling/BatchNorm1d
-- stack; eval outputs (and train-mode outputs, gradients and running statistics) equal
-- PyTorch's, and state_dict{to = "pytorch"} gives back PyTorch's keys, order and shapes.
local tide = require "tide"
local nn = require "tide.nn"
local H = require "helpers"

local FIX = "tests/fixtures/"
local RTOL = 1e-4

local function shape(t) return #t.shape == 0 and "scalar" or table.concat(t.shape, "x") end

-- |a - b| <= RTOL (|b| + 0.1 max|b|) elementwise: float32 against PyTorch's float32, whose
-- sums (BatchNorm's batch statistics and their gradients) round differently
local function close(got, want, what)
  assert.same(want.shape, got.shape, what .. " shape")
  local g, w = got:double(), want:double()
  local tol = (w:abs() + w:abs():max():item() * 0.1) * RTOL
  local bad = ((g - w):abs() - tol):max():item()
  assert(bad <= 0, ("%s: off by %g beyond tolerance (max diff %g)"):format(what, bad,
         H.maxdiff(g, w)))
end

-- the fixture's state file into m (strict: no missing or unexpected keys), and its io tensors
local function load(name, m)
  local missing, unexpected = m:load(FIX .. "sd_" .. name .. "_state.safetensors", {from = "pytorch"})
  assert.same({}, missing)
  assert.same({}, unexpected)
  return tide.load(FIX .. "sd_" .. name .. "_io.safetensors", {flat = true})
end

-- state_dict{to = "pytorch"} must list exactly PyTorch's keys, in its order, with its shapes,
-- and the values just loaded; written with tide.save it reads back the same way
local function same_keys(name, m)
  local meta = tide.load(FIX .. "sd_" .. name .. "_state.safetensors", {flat = true})
  local sd, keys = m:state_dict{to = "pytorch"}
  local got = {}
  for i, k in ipairs(keys) do got[i] = k .. "=" .. shape(sd[k]) end
  assert.equal(meta.keys, table.concat(got, ","))
  for _, k in ipairs(keys) do
    assert.equal(meta[k].dtype, sd[k].dtype, k)
    assert.equal(0, H.maxdiff(meta[k], sd[k]), k)
  end
  local path = os.tmpname()
  tide.save(path, sd)
  local back = tide.load(path, {flat = true})
  os.remove(path)
  for _, k in ipairs(keys) do assert.equal(0, H.maxdiff(back[k], sd[k]), k .. " saved") end
end

local Text = nn.Module:extend("Text")
function Text:init()
  self.emb = nn.Embedding(50, 16)
  self.lstm = nn.LSTM(16, 24, {num_layers = 2, batch_first = true, bidirectional = true})
  self.fc = nn.Linear(48, 5)
end
function Text:forward(idx)                   -- idx: B x T int64, 1-based
  local h = self.lstm(self.emb(idx))         -- B x T x 48
  return self.fc(h:select(2, h:size(2)))     -- B x 5
end

local function encoder()
  return nn.Sequential(
    nn.TransformerEncoder({d_model = 16, nhead = 4, dim_feedforward = 32, dropout = 0,
                           batch_first = true, norm_first = false}, 2, {norm = true}),
    nn.Linear(16, 5))
end

local function vision()
  return nn.Sequential(
    nn.ConvTranspose2d(3, 6, 3, {stride = 2, padding = 1, output_padding = 1, groups = 3}),
    nn.GELU(),                                -- 4x6x10x10
    nn.MaxPool2d(3, {stride = 2, padding = 1}), nn.AvgPool2d(2, {stride = 1, padding = 1}),
    nn.AdaptiveAvgPool2d({4, 3}), nn.Flatten(), -- 4x72
    nn.BatchNorm1d(72), nn.SiLU(), nn.Linear(72, 5))
end

describe("PyTorch state dicts load and give PyTorch's outputs", function()
  it("Embedding -> bidirectional 2-layer LSTM -> Linear", function()
    local m = Text()
    local io = load("text", m)
    m:eval()
    close(m(io.input + 1), io.output, "text output")   -- PyTorch's ids are 0-based
    same_keys("text", m)
  end)

  it("GRU with an initial state, eval and train-mode gradients", function()
    local m = nn.GRU(8, 12)
    local io = load("gru", m)
    m:eval()
    local out, hn = m(io.input, io.h0)
    close(out, io.output, "GRU output")
    close(hn, io.h_n, "GRU h_n")
    m:train()
    local x, h0 = io.input:clone(), io.h0:clone()
    x.requires_grad, h0.requires_grad = true, true
    local y = m(x, h0)
    local loss = (y * io.w):sum()
    loss:backward()
    close(x.grad, io.grad_input, "GRU grad input")
    close(h0.grad, io.grad_h0, "GRU grad h0")
    close(m.weight_hh_l0.grad, io.grad_weight_hh_l0, "GRU grad weight_hh_l0")
    same_keys("gru", m)
  end)

  it("TransformerEncoder (2 layers, final LayerNorm) -> Linear", function()
    local m = encoder()
    local io = load("encoder", m)
    m:eval()
    close(m(io.input), io.output, "encoder output")
    same_keys("encoder", m)
  end)

  it("ConvTranspose2d (groups) -> pools -> BatchNorm1d -> Linear, eval and train", function()
    local m = vision()
    local io = load("vision", m)
    assert.equal(5, m[7].num_batches_tracked:item())
    same_keys("vision", m)
    m:eval()
    close(m(io.input), io.output, "vision eval output")
    m:train()
    local x = io.input:clone()
    x.requires_grad = true
    local y = m(x)
    close(y, io.train_output, "vision train output")
    local loss = (y * io.w):sum()
    loss:backward()
    close(x.grad, io.grad_input, "vision grad input")
    close(m[1].weight.grad, io["grad_0.weight"], "vision grad ConvTranspose2d weight")
    close(m[7].running_mean, io.running_mean, "running_mean after a train step")
    close(m[7].running_var, io.running_var, "running_var after a train step")
    assert.equal(6, m[7].num_batches_tracked:item())
  end)

  it("refuses a state dict of another architecture, naming the key and both shapes", function()
    local m = nn.LSTM(16, 24, {num_layers = 2, batch_first = true})   -- not bidirectional
    local sd = tide.load(FIX .. "sd_text_state.safetensors", {flat = true})
    local lstm = {}
    for k, v in pairs(sd) do
      local name = tide.is_tensor(v) and k:match("^lstm%.(.+)$")
      if name then lstm[name] = v end
    end
    H.err("size mismatch for 'weight_ih_l1': the model has 96x24, the state dict 96x48",
          m.load_state_dict, m, lstm, {from = "pytorch"})
    H.err("size mismatch for 'weight_ih_l1'", m.load_state_dict, m, lstm, {strict = false})
  end)
end)
