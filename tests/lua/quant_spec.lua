-- tests/lua/quant_spec.lua: tide.quant (doc/quant.md) against PyTorch 1.13's quantization
-- (scripts/gen_quant_fixtures.py): quantize/dequantize per tensor and per channel, quantized
-- Linear and Conv2d outputs on the same scales, observers' scales; quantized models (dynamic and
-- static) close to the float model on every kernel path, saved smaller and loaded back; misuse.
local tide = require "tide"
local nn = require "tide.nn"
local quant = require "tide.quant"
local H = require "helpers"

local Q = tide._quant
local F = tide.load("tests/fixtures/quant.safetensors")

local function same(a, b, what)
  assert.equal(b.dtype, a.dtype, what)
  assert.same(b:totable(), a:totable(), what)
end

-- integer outputs equal, or one step apart where PyTorch's engine rounds a tie the other way
local function within_one(a, b, what)
  local d = H.maxdiff(a, b)
  assert(d <= 1, ("%s: off by %g steps"):format(what, d))
  local off = a:long():ne(b:long()):sum():item()
  assert(off <= a:numel() // 50, ("%s: %d of %d values differ"):format(what, off, a:numel()))
end

local function paths(fn)
  local _, best = Q.isa()
  for _, isa in ipairs{"generic", "avx2", "vnni"} do
    Q.set_isa(isa)
    fn(isa)
    if isa == best then break end
  end
  Q.set_isa(nil)
end

describe("quantize_per_tensor / per_channel / dequantize", function()
  it("round half to even and clamp as PyTorch does", function()
    local u = tide.quantize_per_tensor(F.pt_x, 0.1, 10, "uint8")
    same(u:int_repr(), F.pt_u8_q, "quint8")
    H.close(u:dequantize(), F.pt_u8_dq, 1e-6, "dequantized quint8")
    local i = tide.quantize_per_tensor(F.pt_x, 0.05, -3, "int8")
    same(i:int_repr(), F.pt_i8_q, "qint8")
    H.close(tide.dequantize(i), F.pt_i8_dq, 1e-6, "dequantized qint8")
    assert.equal(0.05, i:q_scale())
    assert.equal(-3, i:q_zero_point())
  end)

  it("per channel along a dim", function()
    local q = tide.quantize_per_channel(F.pc_x, F.pc_scales, F.pc_zps, 1, "int8")
    same(q:int_repr(), F.pc_q, "per channel")
    H.close(q:dequantize(), F.pc_dq, 1e-6, "dequantized per channel")
    assert.equal("per_channel_affine", q:qscheme())
    assert.is_truthy(tostring(q):find("quantized int8 tensor 4x6, per channel along dim 1", 1, true))
  end)

  it("refuses bad scales, zero points, dtypes and arithmetic", function()
    local x = tide.ones(3)
    H.err("quantize_per_tensor: scale must be a positive finite number, got 0",
          tide.quantize_per_tensor, x, 0, 0, "uint8")
    H.err("zero point 256 outside the uint8 range [0, 255]", tide.quantize_per_tensor, x, 1, 256, "uint8")
    H.err("dtype must be \"uint8\" or \"int8\", got int64", tide.quantize_per_tensor, x, 1, 0, "int64")
    H.err("expected a float tensor, got int8", tide.quantize_per_tensor, x:to("int8"), 1, 0, "int8")
    H.err("2 scales for axis 1", tide.quantize_per_channel, tide.ones(3, 2), tide.ones(2),
          tide.zeros({2}, {dtype = "int64"}), 1, "int8")
    H.err("dequantize: expected a quantized tensor (tide.QTensor), got a float32 tide.Tensor",
          tide.dequantize, x)
    local q = tide.quantize_per_tensor(x, 1, 0, "int8")
    H.err("a quantized tensor takes no arithmetic", function() return q + 1 end)
  end)
end)

describe("quantized kernels against PyTorch's engine", function()
  it("Linear: per-channel symmetric weights and the requantized output", function()
    local n = F.lin_w:size(1)
    local s, w = tide.empty(n), F.lin_w
    for i = 1, n do
      s[i] = (Q.qparams(w[i]:min():item(), w[i]:max():item(), "int8", true))
    end
    H.close(s, F.lin_wscale, 1e-9, "weight scales")
    local wq = Q.quantize(w, s, tide.zeros({n}, {dtype = "int64"}), 1, "int8")
    same(wq, F.lin_wq, "int8 weights")
    paths(function(isa)
      local y = Q.linear(F.lin_x, Q.pack(wq), s, F.lin_b, n, 20,
                         {scale = 0.03, zero_point = 128, out_scale = 0.05, out_zero_point = 120})
      within_one(y, F.lin_y, "linear on " .. isa)
    end)
  end)

  it("Conv2d, padding 1, on every kernel path", function()
    local n = F.conv_w:size(1)
    local s = tide.empty(n)
    for i = 1, n do
      s[i] = (Q.qparams(F.conv_w[i]:min():item(), F.conv_w[i]:max():item(), "int8", true))
    end
    H.close(s, F.conv_wscale, 1e-9, "conv weight scales")
    local wq = Q.quantize(F.conv_w, s, tide.zeros({n}, {dtype = "int64"}), 1, "int8")
    local g = {ic = 3, oc = n, kh = 3, kw = 3, sh = 1, sw = 1, ph = 1, pw = 1, dh = 1, dw = 1}
    paths(function(isa)
      local y = Q.conv2d(F.conv_x, Q.pack(wq), s, F.conv_b, g,
                         {scale = 0.025, zero_point = 130, out_scale = 0.04, out_zero_point = 100})
      within_one(y, F.conv_y, "conv2d on " .. isa)
    end)
  end)

  it("observers: min-max exactly, histogram's search", function()
    local obs = require "tide.quant.observers"
    local mm, hist = obs.new("minmax"), obs.new("histogram")
    mm:observe(F.obs_a)
    hist:observe(F.obs_a)
    local s, z = mm:qparams()
    H.close(tide.full({}, s), F.obs_minmax_scale, 1e-9, "minmax scale")
    assert.equal(F.obs_minmax_zp:item(), z)
    s, z = hist:qparams()
    H.close(tide.full({}, s), F.obs_hist_scale, 1e-6, "histogram scale")
    assert.equal(F.obs_hist_zp:item(), z)
    hist:observe(F.obs_b) -- a wider range: the counts move to the new bins, none is lost
    assert.equal(F.obs_a:numel() + F.obs_b:numel(), hist.h:sum():item())
    s = hist:qparams()
    assert(s > F.obs_hist_scale:item(), "a wider range gives a larger scale")
    mm:observe(F.obs_b)
    s, z = mm:qparams()
    H.close(tide.full({}, s), F.obs_minmax2_scale, 1e-9, "minmax scale after two batches")
    assert.equal(F.obs_minmax2_zp:item(), z)
  end)

  it("TIDE_ISA caps the kernel path", function()
    local p = io.popen("TIDE_ISA=generic " .. (os.getenv("TIDE_BUILD") or "build")
                       .. "/tide -e 'io.write((tide._quant.isa()))'")
    assert.equal("generic", p:read("a"))
    p:close()
  end)
end)

describe("tide.quant.quantize", function()
  tide.manual_seed(3)
  local model = nn.Sequential(nn.Conv2d(2, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU(),
                              nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5),
                              nn.Linear(4 * 7 * 7, 32), nn.ReLU(),
                              nn.Linear(32, 10), nn.LayerNorm(10))
  model:eval()
  local x = tide.rand(16, 2, 14, 14)
  local ref = model(x):detach()

  it("dynamic and static models stay close to the float model on every path", function()
    for _, o in ipairs{{mode = "dynamic"}, {mode = "static", calibrate = {x}, observer = "minmax"},
                       {mode = "static", calibrate = {x}, observer = "percentile"}} do
      o.verbose = false
      local q = quant.quantize(model, o)
      paths(function(isa) H.close(q(x), ref, 0.05, o.mode .. " on " .. isa) end)
    end
    assert.is_true(H.maxdiff(model(x), ref) == 0) -- the float model is untouched
  end)

  it("static mode keeps uint8 activations between chained layers, ReLU fused", function()
    local q = quant.quantize(model, {mode = "static", calibrate = {x}, observer = "minmax",
                                     verbose = false})
    assert.equal("QuantizedMaxPool2d", getmetatable(q[4]).__name)
    assert.equal("Identity", getmetatable(q[3]).__name) -- the ReLU, now in the requantization
    local h = tide.no_grad(function() return q[4](q[3](q[2](q[1](x)))) end)
    assert.equal("uint8", h.dtype)
    assert.equal("float32", q(x).dtype)
  end)

  it("prints what it quantized and what stays float", function()
    local lines = {}
    local print0 = print
    _G.print = function(s) lines[#lines + 1] = s end
    local ok, q = pcall(quant.quantize, model, {mode = "dynamic"})
    _G.print = print0
    assert.is_true(ok, q)
    local text = table.concat(lines, "\n")
    assert.is_truthy(text:find("int8   7  QuantizedLinear(196, 32, dynamic)", 1, true), text)
    assert.is_truthy(text:find("float  10 LayerNorm  (not supported)", 1, true), text)
    assert.is_truthy(tostring(q):find("QuantizedConv2d(2, 4, 3x3, dynamic", 1, true))
    lines = {}
    _G.print = function(s) lines[#lines + 1] = s end
    ok = pcall(quant.quantize, nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten()), {mode = "dynamic"})
    _G.print = print0
    assert.is_true(ok)
    assert.is_truthy(table.concat(lines):find("float  1 Conv2d  (patch of 9 values: faster in float)",
                                              1, true), table.concat(lines))
  end)

  it("counts the float layers' MACs in tide.summary", function()
    local q = quant.quantize(model, {mode = "dynamic", verbose = false})
    assert.equal(tide.summary.macs(model, {2, 14, 14}), tide.summary.macs(q, {2, 14, 14}))
  end)

  it("saves a smaller file and loads it back into a quantized model", function()
    local big = nn.Sequential(nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    local q = quant.quantize(big, {mode = "dynamic", verbose = false})
    local fp, qp = os.tmpname(), os.tmpname()
    big:save(fp)
    q:save(qp)
    local size = function(p) local f = io.open(p, "rb"); local n = f:seek("end"); f:close(); return n end
    assert(size(fp) / size(qp) >= 3.5, ("ratio %g"):format(size(fp) / size(qp)))
    local other = quant.quantize(nn.Sequential(nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)),
                                 {mode = "dynamic", verbose = false})
    local xb = tide.randn(4, 256)
    other:load(qp)
    assert.equal(0, H.maxdiff(other(xb), q(xb)))
    assert.equal("int8", tide.load(qp, {flat = true})["1.weight"].dtype)
    os.remove(fp)
    os.remove(qp)
  end)

  it("quantizes an LSTM's matrices in dynamic mode, keeps it float in static mode", function()
    local Clf = nn.Module:extend("Clf")
    function Clf:init()
      self.lstm = nn.LSTM(12, 32, {num_layers = 2, batch_first = true, bidirectional = true})
      self.fc = nn.Linear(64, 5)
    end
    function Clf:forward(s) return self.fc(self.lstm(s):select(2, -1)) end
    local m = Clf():eval()
    local s = tide.randn(4, 7, 12)
    local q = quant.quantize(m, {mode = "dynamic", verbose = false})
    assert.equal("int8", q.lstm.weight_hh_l1_reverse.dtype)
    paths(function(isa) H.close(q(s), m(s), 0.01, "LSTM on " .. isa) end)
    local p = os.tmpname()
    q:save(p)
    local back = quant.quantize(Clf(), {mode = "dynamic", verbose = false})
    back:load(p)
    os.remove(p)
    assert.equal(0, H.maxdiff(back(s), q(s)))
    local lines, print0 = {}, print
    _G.print = function(l) lines[#lines + 1] = l end
    pcall(quant.quantize, m, {mode = "static", calibrate = {s}})
    _G.print = print0
    assert.is_truthy(table.concat(lines, "\n"):find("float  lstm LSTM  (int8 in dynamic mode only)",
                                                    1, true))
  end)

  it("refuses misuse", function()
    local q = quant.quantize(model, {mode = "dynamic", verbose = false})
    H.err("the model is already quantized", quant.quantize, q, {mode = "dynamic"})
    H.err("the calibration loader gave no batches", quant.quantize, model,
          {mode = "static", calibrate = {}})
    H.err("static mode needs a calibration loader", quant.quantize, model, {mode = "static"})
    H.err("mode must be \"dynamic\" or \"static\", got fast", quant.quantize, model, {mode = "fast"})
    H.err("unknown option 'mdoe'", quant.quantize, model, {mdoe = "dynamic"})
    H.err("observer must be", quant.quantize, model, {mode = "static", calibrate = {x}, observer = "kl"})
    H.err("no layer named 'head'", quant.quantize, model, {mode = "dynamic", layers = {"head"}})
    H.err("expected a float input, got int8", q[7], tide.zeros({2, 196}, {dtype = "int8"}))
    H.err("expected a float tensor, got tide.QTensor", q[7],
          tide.quantize_per_tensor(tide.zeros(2, 196), 1, 0, "uint8"))
  end)
end)
