-- bench/explain.lua: explain_ig_cnn, tide.explain.integrated_gradients with 50 steps
-- (riemann_trapezoid, zero baseline) on 16 Fashion-MNIST test images through the seed CNN
-- (models.cnn, eval mode, seeded weights): one forward and backward of 800 path images per call.
-- The peer is bench/explain_peer.py. Unit: explained images per second.
-- Usage: tide --threads 2 bench/explain.lua
local B = dofile(((arg[0]):match("^(.*)/") or ".") .. "/common.lua")

B.cases({"explain_ig_cnn"}, {explain_ig_cnn = function(name)
  tide.manual_seed(0)
  local root = os.getenv("FMNIST_DIR") or "/usr/share/datasets/fashion-mnist"
  local x = data.idx(root .. "/t10k-images-idx3-ubyte.gz"):narrow(1, 1, 16):float():div_(255)
  x = x:view(16, 1, 28, 28)
  local target = data.idx(root .. "/t10k-labels-idx1-ubyte.gz"):narrow(1, 1, 16):long():add_(1)
  local model = models.cnn():eval()
  local ig = tide.explain.integrated_gradients
  local _, delta = ig(model, x, target, {steps = 50})
  local worst = delta:abs():max():item()
  if worst ~= worst or worst > 1 then error("wrong result: completeness delta " .. worst) end
  local med, lo, hi, calls = B.rate(function(k)
    for _ = 1, k do ig(model, x, target, {steps = 50}) end
  end, 0.5, 1)
  B.result(name, med * 16, "images/s", {median = string.format("%.1f", med * 16),
    min = string.format("%.1f", lo * 16), best = string.format("%.1f", hi * 16),
    calls_per_sample = calls, samples = B.SAMPLES, max_delta = string.format("%.2e", worst)})
end})
