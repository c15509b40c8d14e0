-- examples/autoencoder.lua: trains the fully connected autoencoder (models.autoencoder, a
-- 64-number code) to reconstruct Fashion-MNIST images (MSE, Adam). Expected: a test MSE below
-- 0.013 after the default 5 epochs; ends with an error when it is not reached. Writes 8 test
-- images (top row) and their reconstructions (bottom row) to build/autoencoder.png.
-- Usage: tide examples/autoencoder.lua [--epochs N] [--out PATH] [--smoke]
local opt = tide.args{epochs = 5, out = "build/autoencoder.png", smoke = false}
if opt.smoke then opt.epochs = 1 end

tide.manual_seed(0)
local train = data.fashion_mnist{split = "train", limit = opt.smoke and 512 or nil}
local test = data.fashion_mnist{split = "test", limit = opt.smoke and 512 or nil}
local function same(x) return x, x end   -- the target of an image is the image itself

local model = models.autoencoder{code = 64}
print(model)
local history = tide.fit(model, {
  train = data.DataLoader(train, {batch_size = 64, shuffle = true, seed = 0, transform = same}),
  val = data.DataLoader(test, {batch_size = 1000, transform = same}),
  loss = nn.MSELoss(),
  optimizer = optim.Adam(model:parameters(), {lr = 1e-3}),
  epochs = opt.epochs,
})

local images = {}
for k = 1, 8 do images[k] = test:get(k) end     -- the image (get also returns the label)
local x = tide.stack(images, 1)                  -- 8 x 1 x 28 x 28
model:eval()
local y = tide.no_grad(function() return model(x) end)
plot.image(tide.cat({x, y}, 1), {nrow = 8, file = opt.out, title = "test images and reconstructions"})

local mse = history.val_loss[#history.val_loss]
print(("test MSE after %d epoch(s): %.4f (images: %s)"):format(opt.epochs, mse, opt.out))
if not opt.smoke and opt.epochs >= 5 and mse >= 0.013 then
  error(("expected a test MSE below 0.013, got %.4f"):format(mse), 0)
end
