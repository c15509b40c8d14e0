-- tests/lua/nn_module_spec.lua: nn.Module (registration, walks, train/eval, to, state dicts,
-- freeze, apply, printing), nn.Parameter and the containers (doc/nn.md).
local tide = require "tide"
local nn = require "tide.nn"
local H = require "helpers"

local close = H.near

local function keys(ordered)          -- the keys of a named_parameters/state_dict, in pairs order
  local out = {}
  for k in pairs(ordered) do out[#out + 1] = k end
  return out
end

-- z, a, m registered in that order, interleaving a parameter, a child, a plain field
local Net = nn.Module:extend("Net")
function Net:init()
  self.z = nn.Linear(2, 3)
  self.scale = nn.Parameter(tide.ones(3))
  self.hidden = 3                     -- plain fields are not registered
  self.cache = tide.zeros(3)
  self.a = nn.Linear(3, 1)
end
function Net:forward(x) return self.a(self.z(x) * self.scale) end

describe("nn.Module registration", function()
  it("keeps insertion order: own parameters first, then children", function()
    local net = Net()
    local np, names = net:named_parameters()
    local want = {"scale", "z.weight", "z.bias", "a.weight", "a.bias"}
    assert.same(want, names)
    assert.same(want, keys(np))
    assert.equal(net.z.weight, np["z.weight"])
    assert.equal(net.a.bias, net:parameters()[5])
    assert.equal(5, #net:parameters())
    assert.same({net.z, net.a}, net:children())
    assert.same({net, net.z, net.a}, net:modules())
    assert.same({"", "z", "a"}, select(2, net:named_modules()))
    assert.equal(3, net.hidden)
  end)

  it("gives nested children dotted names, containers integer components", function()
    local Enc = nn.Module:extend("Enc")
    function Enc:init()
      self.encoder = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2, {bias = false}))
      self.head = nn.ModuleList{nn.Linear(2, 1)}
    end
    local _, names = Enc():named_parameters()
    assert.same({"encoder.1.weight", "encoder.1.bias", "encoder.3.weight", "head.1.weight",
                 "head.1.bias"}, names)
  end)

  it("replaces a child in place; a field set to nil and back keeps its place", function()
    local net = Net()
    local new = nn.Linear(2, 3, {bias = false})
    net.z = new
    assert.same({"scale", "z.weight", "a.weight", "a.bias"}, select(2, net:named_parameters()))
    assert.equal(new.weight, net:parameters()[2])
    net.scale = nil
    assert.same({"z.weight", "a.weight", "a.bias"}, select(2, net:named_parameters()))
    net.scale = nn.Parameter(tide.ones(3))   -- as PyTorch's `self.scale = None` and back
    assert.same({"scale", "z.weight", "a.weight", "a.bias"}, select(2, net:named_parameters()))
    local m = nn.Module()
    m.p, m.q = nn.Parameter(tide.ones(1)), nn.Parameter(tide.ones(1))
    m.p = nil
    m.p = 1                                 -- a plain value ends the registration
    assert.same({"q"}, select(2, m:named_parameters()))
    m.p = nil
    m.p = nn.Parameter(tide.ones(1))
    assert.same({"q", "p"}, select(2, m:named_parameters()))
    net.a = nil
    assert.same({net.z}, net:children())
  end)

  it("counts a shared parameter or module once, first name wins", function()
    local a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    b.weight = a.weight                -- tied weights
    local seq = nn.Sequential(a, b, a)
    assert.equal(3, #seq:parameters())
    assert.equal(16 + 4 + 4, seq:num_parameters())
    assert.same({"1.weight", "1.bias", "2.bias"}, select(2, seq:named_parameters()))
    assert.same({seq, a, b}, seq:modules())
    assert.same({a, b}, seq:children())
    -- state_dict lists every name, as PyTorch's does
    assert.same({"1.weight", "1.bias", "2.weight", "2.bias", "3.weight", "3.bias"},
                select(2, seq:state_dict()))
  end)

  it("nn.Parameter sets requires_grad, detaches non-leaves, refuses integers", function()
    local t = tide.zeros(2)
    assert.equal(t, nn.Parameter(t))
    assert.is_true(t.requires_grad)
    assert.is_true(nn.is_parameter(t))
    assert.is_false(nn.is_parameter(tide.zeros(2)))
    local x = tide.ones(2, {requires_grad = true})
    local p = nn.Parameter(x * 2)
    assert.is_true(p.is_leaf and p.requires_grad)
    close(p, {2, 2})
    assert.is_false(nn.Parameter(tide.zeros(1), {requires_grad = false}).requires_grad)
    local ok, err = pcall(nn.Parameter, tide.zeros(2, {dtype = "int64"}))
    assert.is_false(ok)
    assert.matches("nn.Parameter: a int64 tensor cannot require grad", err)
    assert.is_true(nn.is_module(Net()))
    assert.is_false(nn.is_module(Net))
  end)

  it("registers buffers: in state_dict, not in parameters", function()
    local m = nn.Linear(2, 2)
    m:register_buffer("running", tide.zeros(2))
    m:register_buffer("count", tide.zeros(1, {dtype = "int64"}))
    assert.equal(2, #m:parameters())
    assert.same({"running", "count"}, select(2, m:named_buffers()))
    assert.equal(m.count, m:buffers()[2])
    assert.same({"weight", "bias", "running", "count"}, select(2, m:state_dict()))
    m.running = tide.ones(2)           -- replacing a buffer keeps it one
    close(m:state_dict().running, {1, 1})
    local ok, err = pcall(m.register_buffer, m, "a.b", tide.zeros(1))
    assert.is_false(ok)
    assert.matches("Linear:register_buffer: expected a name without dots, got a.b", err)
  end)
end)

describe("nn.Module state", function()
  it("train/eval propagate to every module and return self", function()
    local net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5)))
    assert.is_true(net[2][1].training)
    assert.equal(net, net:eval())
    for _, m in ipairs(net:modules()) do assert.is_false(m.training) end
    local x = tide.ones(4, 2)
    close(net[2](x), x)                 -- dropout is the identity in eval mode
    net:train()
    for _, m in ipairs(net:modules()) do assert.is_true(m.training) end
    net:train(false)
    assert.is_false(net[1].training)
  end)

  it("zero_grad clears every .grad", function()
    local net = Net()
    net(tide.randn(5, 2)):sum():backward()
    for _, p in ipairs(net:parameters()) do assert.is_not_nil(p.grad) end
    net:zero_grad()
    for _, p in ipairs(net:parameters()) do assert.is_nil(p.grad) end
  end)

  it("freeze and unfreeze switch requires_grad of every parameter", function()
    local net = Net()
    net.z:freeze()
    assert.is_false(net.z.weight.requires_grad)
    assert.is_true(net.a.weight.requires_grad)
    net(tide.randn(3, 2)):sum():backward()
    assert.is_nil(net.z.weight.grad)
    assert.is_not_nil(net.a.weight.grad)
    net:freeze()
    for _, p in ipairs(net:parameters()) do assert.is_false(p.requires_grad) end
    net:unfreeze()
    for _, p in ipairs(net:parameters()) do assert.is_true(p.requires_grad) end
  end)

  it("apply visits children before their parent", function()
    local inner = nn.Sequential(nn.ReLU(), nn.Tanh())
    local net = nn.Sequential(inner, nn.Sigmoid())
    local seen = {}
    assert.equal(net, net:apply(function(m) seen[#seen + 1] = getmetatable(m).__name end))
    assert.same({"ReLU", "Tanh", "Sequential", "Sigmoid", "Sequential"}, seen)
  end)

  it("to(dtype) converts float parameters and buffers, keeps names, sharing and flags", function()
    local a = nn.Linear(3, 3)
    local seq = nn.Sequential(a, a)
    a:register_buffer("mean", tide.zeros(3))
    a:register_buffer("n", tide.zeros(1, {dtype = "int64"}))
    a.bias.requires_grad = false
    local w = a.weight:clone()
    assert.equal(seq, seq:to("float64"))
    assert.equal("float64", a.weight.dtype)
    assert.equal("float64", a.mean.dtype)
    assert.equal("int64", a.n.dtype)
    assert.is_true(a.weight.requires_grad and a.weight.is_leaf)
    assert.is_false(a.bias.requires_grad)
    assert.is_true(nn.is_parameter(a.weight))
    assert.equal(2, #seq:parameters())
    close(a.weight, w)
    local y = seq(tide.randn(4, 3):double())
    assert.equal("float64", y.dtype)
    local ok, err = pcall(seq.to, seq, "int64")
    assert.is_false(ok)
    assert.matches("Sequential:to: expected \"float32\" or \"float64\", got int64", err)
  end)
end)

describe("state dicts", function()
  local function mlp() return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)) end

  it("round-trips: a fresh model loads to identical outputs", function()
    tide.manual_seed(1)
    local m1 = mlp()
    m1[1]:register_buffer("stat", tide.randn(8))
    tide.manual_seed(2)
    local m2 = mlp()
    m2[1]:register_buffer("stat", tide.zeros(8))
    local x = tide.randn(5, 4)
    assert.is_true((m1(x) - m2(x)):abs():max():item() > 1e-3)
    local sd = m1:state_dict()
    assert.same({"1.weight", "1.bias", "1.stat", "3.weight", "3.bias"}, keys(sd))
    assert.is_false(sd["1.weight"].requires_grad)
    local missing, unexpected = m2:load_state_dict(sd)
    assert.same({}, missing)
    assert.same({}, unexpected)
    assert.same(m1(x):totable(), m2(x):totable())
    close(m2[1].stat, m1[1].stat)
    assert.is_true(m2[1].weight.requires_grad and m2[1].weight.is_leaf)
    assert.is_false(rawequal(m1[1].weight, m2[1].weight))
  end)

  it("accepts nested tables (as tide.load returns) and converts dtypes", function()
    local m = nn.Linear(2, 1)
    m:load_state_dict({weight = tide.tensor({{1, 2}}, {dtype = "float64"}), bias = tide.tensor({3})})
    close(m.weight, {{1, 2}})
    local seq = nn.Sequential(m)
    seq:load_state_dict({[1] = {weight = tide.tensor({{5, 6}}), bias = tide.tensor({7})}})
    close(m.bias, {7})
    assert.equal("float32", m.weight.dtype)
  end)

  it("strict loading errors on missing or unexpected keys before changing anything", function()
    local m = mlp()
    local sd = m:state_dict()
    local before = m[1].weight:clone()
    local partial = {["1.weight"] = tide.zeros(8, 4), ["9.weight"] = tide.zeros(1)}
    local ok, err = pcall(m.load_state_dict, m, partial)
    assert.is_false(ok)
    assert.matches("load_state_dict: missing keys: 1.bias, 3.weight, 3.bias; unexpected keys: "
                   .. "9.weight %(pass {strict = false} to load a part%)", err)
    close(m[1].weight, before)
    local missing, unexpected = m:load_state_dict(partial, {strict = false})
    assert.same({"1.bias", "3.weight", "3.bias"}, missing)
    assert.same({"9.weight"}, unexpected)
    close(m[1].weight, tide.zeros(8, 4))
    close(m[3].weight, sd["3.weight"])
  end)

  it("names the key and both shapes on a size mismatch, strict or not", function()
    local m = mlp()
    local sd = m:state_dict()
    sd["3.weight"] = tide.zeros(3, 7)
    for _, strict in ipairs({true, false}) do
      local ok, err = pcall(m.load_state_dict, m, sd, {strict = strict})
      assert.is_false(ok)
      assert.matches("load_state_dict: size mismatch for '3.weight': the model has 3x8, "
                     .. "the state dict 3x7", err)
    end
    sd["3.weight"] = 1
    local ok, err = pcall(m.load_state_dict, m, sd)
    assert.is_false(ok)
    assert.matches("'3.weight' is a number, expected a tensor", err)
  end)

  it("shifts integer path components for PyTorch, both ways", function()
    local Net2 = nn.Module:extend("Net2")
    function Net2:init()
      local layers = {}
      for i = 1, 11 do layers[i] = i % 2 == 1 and nn.Linear(2, 2) or nn.ReLU() end
      self.features = nn.Sequential(layers)
    end
    local m = Net2()
    local sd, names = m:state_dict({to = "pytorch"})
    assert.same({"features.0.weight", "features.0.bias", "features.2.weight"},
                {names[1], names[2], names[3]})
    assert.equal("features.10.bias", names[#names])
    assert.same(m.features[11].bias:totable(), sd["features.10.bias"]:totable())
    local pt = {}
    for k, v in pairs(sd) do pt[k] = v:clone():fill_(0.5) end
    assert.same({}, (m:load_state_dict(pt, {from = "pytorch"})))
    close(m.features[11].bias, {0.5, 0.5})
    local ok, err = pcall(m.state_dict, m, {to = "torch"})
    assert.is_false(ok)
    assert.matches("state_dict: to must be \"pytorch\" or nil, got torch", err)
  end)
end)

describe("nn.Module printing", function()
  it("prints an indented tree with shapes and parameter counts", function()
    local Block = nn.Module:extend("Block")
    function Block:init()
      self.gain = nn.Parameter(tide.ones(4))
      self.body = nn.Sequential(nn.Linear(784, 128), nn.ReLU())
    end
    local net = nn.Sequential(Block(), nn.Dropout(0.25), nn.Linear(128, 10, {bias = false}))
    assert.equal(table.concat({
      "Sequential(",
      "  (1): Block(",
      "    gain 4, 4 params",
      "    (body): Sequential(",
      "      (1): Linear(784 -> 128, 100480 params)",
      "      (2): ReLU()",
      "    )",
      "  )",
      "  (2): Dropout(p=0.25)",
      "  (3): Linear(128 -> 10, no bias, 1280 params)",
      ")"}, "\n"), tostring(net))
    assert.equal("nn.Block (a Module class)", tostring(Block))
  end)
end)

describe("nn.Module classes", function()
  it("subclasses inherit methods and metamethods; forward must be defined", function()
    local Scaled = nn.Linear:extend("Scaled")
    function Scaled:init(n, k)
      nn.Linear.init(self, n, n)
      self.k = k
    end
    function Scaled:forward(x) return nn.Linear.forward(self, x) * self.k end
    local s = Scaled(3, 2)
    local x = tide.randn(2, 3)
    close(s(x), tide.addmm(s.bias, x, s.weight:t()) * 2)
    assert.matches("^Scaled%(3 %-> 3, 12 params%)$", tostring(s))
    assert.same({"weight", "bias"}, select(2, s:named_parameters()))
    local Empty = nn.Module:extend("Empty")
    local ok, err = pcall(function() local y = Empty()(x) return y end)
    assert.is_false(ok)
    assert.matches("Empty: forward is not defined %(define function Empty:forward%(x%)%)", err)
    assert.has_error(function() nn.Module:extend() end, "Module:extend: expected a class name (a string)")
  end)
end)

describe("containers", function()
  it("Sequential chains its children, built from a list or arguments", function()
    local a, b = nn.Linear(3, 4), nn.Linear(4, 2)
    for _, seq in ipairs({nn.Sequential{a, nn.ReLU(), b}, nn.Sequential(a, nn.ReLU(), b)}) do
      assert.equal(3, #seq)
      assert.equal(b, seq[3])
      local x = tide.randn(5, 3)
      close(seq(x), b(a(x):relu()))
    end
    local seq = nn.Sequential()
    assert.equal(0, #seq)
    local x = tide.randn(2, 2)
    assert.equal(x, seq(x))
    assert.equal(seq, seq:append(nn.Tanh()))
    close(seq(x), x:tanh())
  end)

  it("refuses non-modules with the position", function()
    local ok, err = pcall(nn.Sequential, nn.ReLU(), 3)
    assert.is_false(ok)
    assert.matches("nn.Sequential: element 2 is a number, expected a module", err)
    ok, err = pcall(nn.ModuleList, {nn.ReLU(), "x"})
    assert.is_false(ok)
    assert.matches("nn.ModuleList: element 2 is a string, expected a module", err)
    local seq = nn.Sequential(nn.ReLU())
    ok, err = pcall(function() seq[3] = nn.ReLU() end)
    assert.is_false(ok)
    assert.matches("Sequential: cannot set %[3%] to a table %(expected a module at 1..2%)", err)
    ok, err = pcall(seq.append, seq, tide.zeros(1))
    assert.is_false(ok)
    assert.matches("Sequential:append: expected a module, got userdata", err)
  end)

  it("ModuleList iterates with ipairs, appends, registers and is not callable", function()
    local list = nn.ModuleList{nn.Linear(2, 2), nn.Linear(2, 2)}
    list:append(nn.Linear(2, 1))
    local n = 0
    for i, m in ipairs(list) do
      n = n + 1
      assert.equal(list[i], m)
    end
    assert.equal(3, n)
    assert.equal(3, #list)
    assert.same({"1.weight", "1.bias", "2.weight", "2.bias", "3.weight", "3.bias"},
                select(2, list:named_parameters()))
    local ok, err = pcall(function() local y = list(tide.zeros(2)) return y end)
    assert.is_false(ok)
    assert.matches("ModuleList: a list is not callable", err)
  end)
end)
