-- examples/explain.lua: why did the seed CNN decide this? Trains models.cnn briefly on
-- Fashion-MNIST (tide.fit, Adam), then explains 8 test images with five methods of
-- tide.explain: saliency, integrated gradients, occlusion, Grad-CAM (on the second conv block)
-- and KernelSHAP over 4x4 patches, drawn as one PNG grid (per example: the image, then the five
-- maps; red raises the predicted class's score, blue lowers it). Ends with Adebayo et al.'s
-- sanity check: the attributions of the same architecture with random weights must differ from
-- the trained model's, reported as a Spearman rank correlation (near 1 would mean the method
-- shows the image, not the model). Expected (measured): about 86% test accuracy; correlations
-- near 0.1 for saliency and 0 for Grad-CAM (the run fails above 0.5), higher for the methods
-- tied to the input (IG ~0.9, occlusion ~0.7, KernelSHAP ~0.5).
-- Usage: tide examples/explain.lua [--epochs 1] [--limit 20000] [--out build/explain.png]
--        [--smoke]   (--smoke: 512 training images, 4 test images, fewer samples: the tests)
local opt = tide.args{epochs = 1, limit = 20000, out = "build/explain.png", smoke = false}
local E = tide.explain

tide.manual_seed(0)
local train = data.fashion_mnist{split = "train", limit = opt.smoke and 512 or opt.limit}
local test = data.fashion_mnist{split = "test", limit = 500}
local model = models.cnn{}
local history = tide.fit(model, {
  train = data.DataLoader(train, {batch_size = 64, shuffle = true, seed = 0}),
  val = data.DataLoader(test, {batch_size = 500}),
  optimizer = optim.Adam(model:parameters(), {lr = 1e-3}),
  epochs = opt.epochs,
})
model:eval()
print(("trained on %d images: test accuracy %.1f%%"):format(#train,
      100 * history.val_accuracy[#history.val_accuracy]))

local n = opt.smoke and 4 or 8
local x = tide.stack((function()
  local xs = {}
  for i = 1, n do xs[i] = test[i][1] end
  return xs
end)()):view(n, 1, 28, 28)
local pred = tide.no_grad(function() return model(x):argmax(2):view(n) end) -- explain the answer
local names = test.classes

-- 7 x 7 patches of 4 x 4 pixels as KernelSHAP's features
local patch = tide.zeros(1, 28, 28, {dtype = "int64"})
for i = 1, 28 do
  for j = 1, 28 do patch[{1, i, j}] = ((i - 1) // 4) * 7 + (j - 1) // 4 + 1 end
end

local function explain(m)
  local maps = {}
  maps.saliency = E.saliency(m, x, pred, {abs = true})
  maps.ig = E.integrated_gradients(m, x, pred, {steps = opt.smoke and 8 or 50})
  maps.occlusion = E.occlusion(m, x, pred, {window = 4, stride = 2})
  maps.gradcam = E.gradcam(m, x, pred, {layer = m[5]})     -- ReLU of the second conv block
  maps.shap = E.kernel_shap(m, x, pred, {features = patch, samples = opt.smoke and 32 or 256,
                                         seed = 1})
  return maps
end

local t0 = tide._clock()
local maps = explain(model)
print(("explained %d images with 5 methods in %.1f s"):format(n, tide._clock() - t0))
for i = 1, n do
  print(("  image %d: predicted %s (true %s)"):format(i, names[pred[i]], names[test[i][2]]))
end
local order = {"saliency", "ig", "occlusion", "gradcam", "shap"}
local list = {}
for i, k in ipairs(order) do list[i] = maps[k] end
plot.attribution(x, list, {path = opt.out, nrow = 2,
                           title = "image, saliency, IG, occlusion, Grad-CAM, KernelSHAP"})
print("attribution grid: " .. opt.out)

-- Spearman rank correlation of two attribution maps of one image (ties get their mean rank)
local function ranks(v)
  local idx = {}
  for i = 1, #v do idx[i] = i end
  table.sort(idx, function(a, b) return v[a] < v[b] end)
  local r, i = {}, 1
  while i <= #idx do
    local j = i
    while j < #idx and v[idx[j + 1]] == v[idx[i]] do j = j + 1 end
    for k = i, j do r[idx[k]] = (i + j) / 2 end
    i = j + 1
  end
  return r
end
local function spearman(a, b)
  local ra, rb = ranks(a:reshape(-1):totable()), ranks(b:reshape(-1):totable())
  return (function()
    local n2, ma, mb = #ra, 0, 0
    for i = 1, n2 do ma, mb = ma + ra[i] / n2, mb + rb[i] / n2 end
    local sab, saa, sbb = 0, 0, 0
    for i = 1, n2 do
      sab = sab + (ra[i] - ma) * (rb[i] - mb)
      saa, sbb = saa + (ra[i] - ma) ^ 2, sbb + (rb[i] - mb) ^ 2
    end
    return sab / math.sqrt(saa * sbb)
  end)()
end

tide.manual_seed(123)
local random = models.cnn{}:eval()                        -- same architecture, random weights
local rmaps = explain(random)
print("sanity check (Adebayo et al. 2018): rank correlation, trained vs random weights")
local corr = {}
for _, k in ipairs(order) do
  local s = 0
  for i = 1, n do s = s + spearman(maps[k][i]:abs(), rmaps[k][i]:abs()) end
  corr[k] = s / n
  print(("  %-10s %.2f"):format(k, corr[k]))
end
print("(near 0: the map depends on what the model learned. IG multiplies by the input, and "
      .. "occlusion and KernelSHAP give 0 on the black background whatever the weights, so part of "
      .. "their maps is the image's outline: Adebayo et al. found the same for gradient x input)")
if not opt.smoke and (corr.saliency > 0.5 or corr.gradcam > 0.5) then
  error(("sanity check failed: saliency %.2f, Grad-CAM %.2f (expected under 0.5)")
        :format(corr.saliency, corr.gradcam), 0)
end
