-- examples/private.lua: differentially private training (tide.privacy, DP-SGD) of a small
-- Fashion-MNIST classifier at epsilon = 1, 3 and 8 (delta = 1e-5) against the same model trained
-- without privacy: one table of test accuracy against epsilon, and the accuracy curves of the
-- four runs (build/private.png). Each private run gets the smallest noise multiplier that spends
-- its epsilon in the given epochs (make_private's target_epsilon), clips each example's gradient
-- to norm 1, and samples Poisson batches of 256 expected examples.
-- Usage: tide examples/private.lua [--epochs N] [--plot PATH] [--smoke]
local opt = tide.args{epochs = 5, plot = "build/private.png", smoke = false}
if opt.smoke then opt.epochs = 1 end

local train = data.fashion_mnist{split = "train", limit = opt.smoke and 512 or nil}
local test = data.fashion_mnist{split = "test", limit = opt.smoke and 512 or nil}
local val = data.DataLoader(test, {batch_size = 1000})

local function model()                       -- 1x28x28 -> 10, GroupNorm: no batch statistics
  return nn.Sequential(
    nn.Conv2d(1, 16, 5, {stride = 2, padding = 2}), nn.GroupNorm(4, 16), nn.Tanh(),  -- 16x14x14
    nn.Conv2d(16, 32, 4, {stride = 2, padding = 1}), nn.GroupNorm(4, 32), nn.Tanh(), -- 32x7x7
    nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.Tanh(), nn.Linear(64, 10))
end

local function run(epsilon)
  tide.manual_seed(0)
  local m = model()
  local o = optim.SGD(m:parameters(), {lr = epsilon and 1 or 0.1, momentum = 0.9})
  local loader = data.DataLoader(train, {batch_size = 256, shuffle = true, seed = 0})
  local sigma
  if epsilon then
    m, o, loader = tide.privacy.make_private(m, o, loader, {target_epsilon = epsilon,
      target_delta = 1e-5, epochs = opt.epochs, max_grad_norm = 1, seed = 0})
    sigma = o.privacy.noise_multiplier
  end
  print(epsilon and ("-- epsilon %g (noise multiplier %.3f)"):format(epsilon, sigma)
        or "-- without privacy")
  local h = tide.fit(m, {train = loader, val = val, optimizer = o, epochs = opt.epochs})
  return {epsilon = epsilon, sigma = sigma, history = h,
          spent = h.epsilon and h.epsilon[#h.epsilon], acc = h.val_accuracy[#h.val_accuracy]}
end

local runs = {run(1), run(3), run(8), run(nil)}

print(("%-10s %-10s %-16s %s"):format("epsilon", "spent", "noise multiplier", "test accuracy"))
local series = {}
for _, r in ipairs(runs) do
  print(("%-10s %-10s %-16s %.2f%%"):format(r.epsilon or "none", r.spent and ("%.3f"):format(r.spent)
        or "-", r.sigma and ("%.3f"):format(r.sigma) or "-", 100 * r.acc))
  series[#series + 1] = {y = r.history.val_accuracy, title = r.epsilon and ("epsilon " .. r.epsilon)
                         or "no privacy", style = "linespoints"}
end
series.title, series.xlabel, series.ylabel = "Fashion-MNIST: test accuracy per epoch", "epoch",
                                              "test accuracy"
series.file = opt.plot
plot.lines(series)
print("accuracy against epsilon above; the curves: " .. opt.plot)
