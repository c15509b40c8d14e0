-- bench/infer.lua: inference throughput of the bench MLP (784-512-256-10) and CNN (BENCHMARKS.md's
-- train_cnn model) at batch 1 and 256, int8 (tide.quant: dynamic for the MLP, static with
-- min-max observers for the CNN, as bench/peer_quant.py quantizes PyTorch's) or float32 (--float),
-- and the int8 GEMM at n = 1024 in GOPS (2 n^3 operations; uint8 x int8, int32 sums, float out).
-- Usage: tide --threads 2 bench/infer.lua [--float] CASE ...
--   CASE: infer_mlp_int8_b1 infer_mlp_int8_b256 infer_cnn_int8_b1 infer_cnn_int8_b256 qgemm_1024
-- Random weights and inputs (speed does not depend on training); under --float the RESULT lines
-- keep the int8 names so the harness pairs them.
local B = dofile(((arg[0]):match("^(.*)/") or ".") .. "/common.lua")
local nn = require "tide.nn"

local float = arg[1] == "--float"
local names = {}
for i = float and 2 or 1, #arg do names[#names + 1] = arg[i] end

local function mlp()
  return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                       nn.Linear(256, 10))
end

local function cnn()
  return nn.Sequential(nn.Conv2d(1, 32, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
                       nn.Conv2d(32, 64, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
                       nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
end

local cases = {}
for _, w in ipairs{"mlp", "cnn"} do
  for _, b in ipairs{1, 256} do
    cases[("infer_%s_int8_b%d"):format(w, b)] = function(name)
      tide.manual_seed(0)
      local m = (w == "mlp" and mlp or cnn)():eval()
      local x = tide.rand(b, 1, 28, 28)
      if not float then
        local o = w == "mlp" and {mode = "dynamic"} or
            {mode = "static", observer = "minmax", calibrate = {tide.rand(64, 1, 28, 28)}}
        o.verbose = false
        m = tide.quant.quantize(m, o)
      end
      local med, lo, hi, calls = tide.no_grad(function()
        return B.rate(function(k) for _ = 1, k do m(x) end end, 0.2, b == 1 and 200 or 4)
      end)
      B.result(name, med * b, "samples/s", {median = ("%.1f"):format(med * b),
        best = ("%.1f"):format(hi * b), min = ("%.1f"):format(lo * b), calls_per_sample = calls,
        kind = float and "float32" or "int8"})
    end
  end
end

cases.qgemm_1024 = function(name)
  local n, Q = 1024, tide._quant
  tide.manual_seed(0)
  local a = tide.randint(0, 255, {n, n}, {dtype = "uint8"})
  local w = tide.randint(-128, 127, {n, n}, {dtype = "int8"})
  local p, ws = Q.pack(w), tide.full({n}, 1e-3)
  local spec = {scale = 0.01, zero_point = 0}
  local y = Q.linear(a, p, ws, nil, n, n, spec)
  local ref = (a:narrow(1, 1, 4):double():matmul(w:double():t()) * (0.01 * 1e-3)):float()
  if (y:narrow(1, 1, 4) - ref):abs():max():item() > 1e-3 then error("wrong result") end
  local med, lo, hi = B.rate(function(k) for _ = 1, k do Q.linear(a, p, ws, nil, n, n, spec) end end,
                             0.3, 2)
  local g = 2 * n * n * n / 1e9
  B.result(name, med * g, "GOPS", {median = ("%.1f"):format(med * g), best = ("%.1f"):format(hi * g),
    min = ("%.1f"):format(lo * g), isa = (Q.isa())})
end

B.cases(names, cases)
