-- examples/compress.lua: trains the seed CNN and an MLP on Fashion-MNIST, then compresses each:
-- int8 (tide.quant: dynamic, and static calibrated on 1024 training images), magnitude pruning
-- to 50/80/90% with a fine-tuning epoch (tide.prune), and 50% of the channels pruned by L1 norm,
-- fine-tuned and cut out (tide.prune.compact). One table per model: size on disk, parameters,
-- non-zero weights, test accuracy and inference latency at batch 1 and 256. Ends with an error
-- when int8 loses more than 0.5 points of accuracy.
-- Usage: tide examples/compress.lua [--epochs N] [--out DIR] [--smoke]
-- (--smoke: 1 epoch on 512 training and 512 test images, no accuracy check: the test suite)
local opt = tide.args{epochs = 2, out = "build", smoke = false}
if opt.smoke then opt.epochs = 1 end

tide.manual_seed(0)
local train = data.fashion_mnist{split = "train", limit = opt.smoke and 512 or nil}
local test = data.fashion_mnist{split = "test", limit = opt.smoke and 512 or nil}
local test_loader = data.DataLoader(test, {batch_size = 256})

local function file_size(m, name)
  local path = opt.out .. "/compress_" .. name .. ".safetensors"
  m:save(path)
  local f = assert(io.open(path, "rb"))
  local n = f:seek("end")
  f:close()
  os.remove(path)
  return n
end

local function counts(m)
  local n, nz = 0, 0
  for _, t in pairs(m:state_dict()) do
    if t.dtype ~= "int64" then
      n, nz = n + t:numel(), nz + t:ne(0):sum():item()
    end
  end
  return n, nz
end

-- median wall time of model(x) over a few runs, in milliseconds
local function latency(m, x, runs)
  local times = {}
  tide.no_grad(function()
    m(x)
    for i = 1, runs do
      local t0 = tide._clock()
      m(x)
      times[i] = (tide._clock() - t0) * 1e3
    end
  end)
  table.sort(times)
  return times[(runs + 1) // 2]
end

-- n training or test images from position `from` (wrapping around) as one float batch
local function batch(set, from, n)
  local xs = {}
  for j = 1, n do xs[j] = set[(from + j - 2) % #set + 1][1]:float() end
  return tide.stack(xs)
end
local x1, x256 = batch(test, 1, 1), batch(test, 1, 256)

local function row(name, m, base_acc)
  local n, nz = counts(m)
  local acc = tide.evaluate(m, test_loader).accuracy
  print(("%-18s %9.1f KB %9d %9d %8.2f%% %9.3f ms %9.2f ms"):format(name, file_size(m, name) / 1024,
        n, nz, 100 * acc, latency(m, x1, 21), latency(m, x256, 5)))
  return acc - (base_acc or acc)
end

local function fit(model, epochs)
  tide.fit(model, {train = data.DataLoader(train, {batch_size = 64, shuffle = true, seed = 0}),
                   epochs = epochs, progress = false})
  return model:eval()
end

-- a trained copy of model (same architecture from make) to prune: fine-tuned, masks removed
local function pruned(make, model, how)
  local m = make()
  m:load_state_dict(model:state_dict())
  how(m)
  fit(m, 1)
  tide.prune.remove(m)
  return m
end

local function compress(name, make)
  print(("\n== %s: training %d epoch%s"):format(name, opt.epochs, opt.epochs == 1 and "" or "s"))
  local model = fit(make(), opt.epochs)
  local calib = {}
  for i = 1, 4 do calib[i] = batch(train, (i - 1) * 256 + 1, 256) end
  local dyn = tide.quant.quantize(model, {mode = "dynamic", verbose = false})
  local stat = tide.quant.quantize(model, {mode = "static", calibrate = calib, verbose = false})
  print(("%-22s %12s %9s %9s %9s %12s %12s"):format("model", "size", "params", "non-zero",
        "accuracy", "batch 1", "batch 256"))
  local acc = tide.evaluate(model, test_loader).accuracy
  row(name .. " float32", model)
  local loss = math.max(-row(name .. " int8 dynamic", dyn, acc), -row(name .. " int8 static", stat, acc))
  for _, p in ipairs{0.5, 0.8, 0.9} do
    row(("%s pruned %d%%"):format(name, 100 * p),
        pruned(make, model, function(m) tide.prune.magnitude(m, p, {scope = "global"}) end))
  end
  local ch = pruned(make, model, function(m)
    local last = {}                    -- every layer but the classifier loses half its channels
    for n, l in pairs(m:named_modules()) do
      if getmetatable(l) == nn.Linear or getmetatable(l) == nn.Conv2d then last[#last + 1] = n end
    end
    table.remove(last)
    tide.prune.structured(m, 0.5, {layers = last})
  end)
  row(name .. " channels 50%", tide.prune.compact(ch))
  return loss
end

local worst = math.max(compress("mlp", function() return models.mlp{784, 512, 256, 10} end),
                       compress("cnn", function() return models.cnn{batchnorm = true, dropout = 0.25} end))
print(("\nint8 accuracy loss at most %.2f points"):format(100 * worst))
if not opt.smoke and worst > 0.005 then
  error(("expected int8 to lose at most 0.5 points, lost %.2f"):format(100 * worst), 0)
end
