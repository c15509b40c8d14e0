-- examples/fashion_cnn.lua: trains the seed CNN (models.cnn, with BatchNorm and dropout) on
-- Fashion-MNIST with tide.fit: Adam, cosine learning-rate decay, batches of 64. Expected: at
-- least 91.5% test accuracy after the default 5 epochs (above 85% after one: `make demo` runs
-- `--epochs 1`). Draws the loss curve in the terminal and to build/loss.png; ends with an error
-- when the accuracy is not reached.
-- Usage: tide examples/fashion_cnn.lua [--epochs N] [--plot PATH] [--smoke]
-- (--smoke: 1 epoch on 512 training and 512 test images, no accuracy check: the test suite)
local opt = tide.args{epochs = 5, plot = "build/loss.png", smoke = false}
if opt.smoke then opt.epochs = 1 end

tide.manual_seed(0)
local train = data.fashion_mnist{split = "train", limit = opt.smoke and 512 or nil}
local test = data.fashion_mnist{split = "test", limit = opt.smoke and 512 or nil}
print(("Fashion-MNIST: %d training and %d test images"):format(#train, #test))

local model = models.cnn{batchnorm = true, dropout = 0.25}
print(model)
local optimizer = optim.Adam(model:parameters(), {lr = 1e-3})
local history = tide.fit(model, {
  train = data.DataLoader(train, {batch_size = 64, shuffle = true, seed = 0}),
  val = data.DataLoader(test, {batch_size = 500}),
  optimizer = optimizer,
  scheduler = optim.CosineAnnealingLR(optimizer, {T_max = opt.epochs}),
  epochs = opt.epochs,
  plot = opt.plot,                         -- redrawn to the file after every epoch
})

plot.loss(history, {title = "models.cnn on Fashion-MNIST"})   -- in the terminal (or a window)
local acc = history.val_accuracy[#history.val_accuracy]
print(("test accuracy after %d epoch%s: %.2f%% (loss curve: %s)"):format(opt.epochs,
      opt.epochs == 1 and "" or "s", 100 * acc, opt.plot))
local bar = opt.epochs >= 5 and 0.915 or 0.85
if not opt.smoke and acc < bar then
  error(("expected a test accuracy of at least %.1f%%, got %.2f%%"):format(100 * bar, 100 * acc), 0)
end
