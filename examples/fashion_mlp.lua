-- examples/fashion_mlp.lua: trains a multilayer perceptron (models.mlp{784, 512, 256, 10} with
-- dropout) on Fashion-MNIST with tide.fit, Adam and cosine learning-rate decay. Expected: at
-- least 87.5% test accuracy after the default 5 epochs (above 83% after one); ends with an error
-- when it is not reached. The loss curve goes to build/mlp_loss.png.
-- Usage: tide examples/fashion_mlp.lua [--epochs N] [--plot PATH] [--smoke]
local opt = tide.args{epochs = 5, plot = "build/mlp_loss.png", smoke = false}
if opt.smoke then opt.epochs = 1 end

tide.manual_seed(0)
local train = data.fashion_mnist{split = "train", limit = opt.smoke and 512 or nil}
local test = data.fashion_mnist{split = "test", limit = opt.smoke and 512 or nil}

local model = models.mlp{784, 512, 256, 10, dropout = 0.2}
print(model)
local optimizer = optim.Adam(model:parameters(), {lr = 1e-3})
local history = tide.fit(model, {
  train = data.DataLoader(train, {batch_size = 64, shuffle = true, seed = 0}),
  val = data.DataLoader(test, {batch_size = 1000}),
  optimizer = optimizer,
  scheduler = optim.CosineAnnealingLR(optimizer, {T_max = opt.epochs}),
  epochs = opt.epochs,
  plot = opt.plot,
})

local acc = history.val_accuracy[#history.val_accuracy]
print(("test accuracy after %d epoch(s): %.2f%% (loss curve: %s)"):format(opt.epochs, 100 * acc,
      opt.plot))
local bar = opt.epochs >= 5 and 0.875 or 0.83
if not opt.smoke and acc < bar then
  error(("expected a test accuracy of at least %.1f%%, got %.2f%%"):format(100 * bar, 100 * acc), 0)
end
