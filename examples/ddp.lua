-- examples/ddp.lua: examples/fashion_cnn.lua's recipe (the seed CNN with BatchNorm and dropout,
-- Adam, cosine decay, a global batch of 64) as a data-parallel job on tide.dist:
--   mpirun -np 2 build/tide examples/ddp.lua        (as root: see doc/dist.md)
-- Each rank trains on its shard with a batch of 64 / ranks; the gradients are averaged across
-- the ranks during backward. Expected, as one process: at least 91.5% test accuracy after the
-- default 5 epochs (above 85% after one). Also runs alone (a world of one). Rank 1 prints, and
-- draws the loss curve to build/ddp_loss.png; ends with an error when the accuracy is not met.
-- Usage: mpirun -np N tide examples/ddp.lua [--epochs N] [--plot PATH] [--smoke]
-- (--smoke: 1 epoch on 512 training and 512 test images, no accuracy check: the test suite)
local opt = tide.args{epochs = 5, plot = "build/ddp_loss.png", smoke = false}
if opt.smoke then opt.epochs = 1 end
local dist = tide.dist
local rank, size = dist.init()
if 64 % size ~= 0 then error("run with a number of ranks that divides 64, got " .. size, 0) end

tide.manual_seed(0)
local train = data.fashion_mnist{split = "train", limit = opt.smoke and 512 or nil}
local test = data.fashion_mnist{split = "test", limit = opt.smoke and 512 or nil}
local model = dist.DataParallel(models.cnn{batchnorm = true, dropout = 0.25}) -- rank 1's weights
tide.manual_seed(1000 + rank)                -- each rank its own dropout masks
if rank == 1 then
  print(("Fashion-MNIST: %d training and %d test images, %d rank%s with batches of %d"):format(
        #train, #test, size, size == 1 and "" or "s", 64 // size))
end
local optimizer = optim.Adam(model:parameters(), {lr = 1e-3})
local history = tide.fit(model, {
  train = data.DataLoader(train, {batch_size = 64 // size, shuffle = true, seed = 0,
                                  shard = "auto"}),
  val = data.DataLoader(test, {batch_size = 500, shard = "auto"}),
  optimizer = optimizer,
  scheduler = optim.CosineAnnealingLR(optimizer, {T_max = opt.epochs}),
  epochs = opt.epochs,
  plot = opt.plot,                           -- rank 1 redraws it after every epoch
})

local acc = history.val_accuracy[#history.val_accuracy] -- over the whole test set, every rank
if rank == 1 then
  print(("test accuracy after %d epoch%s on %d rank%s: %.2f%% (loss curve: %s)"):format(
        opt.epochs, opt.epochs == 1 and "" or "s", size, size == 1 and "" or "s", 100 * acc,
        opt.plot))
end
local bar = opt.epochs >= 5 and 0.915 or 0.85
if not opt.smoke and acc < bar then
  error(("expected a test accuracy of at least %.1f%%, got %.2f%%"):format(100 * bar, 100 * acc), 0)
end
