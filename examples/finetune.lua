-- examples/finetune.lua: transfer learning on Fashion-MNIST. Trains models.cnn on five classes
-- (T-shirt/top, Pullover, Coat, Sneaker, Bag; one epoch) and saves it; then builds a CNN for
-- the five others (Trouser, Dress, Sandal, Shirt, Ankle boot), loads the saved weights except
-- the last layer (a partial load_state_dict), freezes that feature extractor and trains only
-- the new head, a Linear(128, 5), on 500 images. For contrast the same head is trained on a
-- frozen random CNN. Expected: at least 90% test accuracy on the new classes with the
-- pretrained features, and more than with the random ones; ends with an error otherwise.
-- Usage: tide examples/finetune.lua [--epochs N] [--smoke]   (N: epochs of the head, 10)
local opt = tide.args{epochs = 10, smoke = false}
if opt.smoke then opt.epochs = 1 end

-- The examples of the classes in `set` (at most n), relabelled 1..#set in that order.
local all = {} -- each dataset's tensors as float32, made once
local function classes(ds, set, n)
  all[ds] = all[ds] or {ds:tensors()}
  local x, y = all[ds][1], all[ds][2]
  local relabel, keep = tide.zeros(10, {dtype = "int64"}), tide.zeros(#ds, {dtype = "bool"})
  for new, old in ipairs(set) do
    relabel[old] = new
    keep = keep:logical_or(y:eq(old))
  end
  local rows = tide.arange(1, #ds):long():masked_select(keep)
  if n and n < rows:size(1) then rows = rows:narrow(1, 1, n) end
  return data.TensorDataset(x:index(1, rows), relabel:index(1, y:index(1, rows)))
end

tide.manual_seed(0)
local train = data.fashion_mnist{split = "train", limit = opt.smoke and 2048 or nil}
local test = data.fashion_mnist{split = "test", limit = opt.smoke and 512 or nil}
local A, B = {1, 3, 5, 8, 9}, {2, 4, 6, 7, 10}
local old = classes(train, A)                                 -- 30000 images
local new, new_test = classes(train, B, 500), classes(test, B)
all = nil -- the subsets hold copies: the whole sets can go
print(("pretraining on %d images of 5 classes; the new task has %d images"):format(#old, #new))

local pretrained = models.cnn{classes = 5}
tide.fit(pretrained, {
  train = data.DataLoader(old, {batch_size = 64, shuffle = true, seed = 0}),
  optimizer = optim.Adam(pretrained:parameters(), {lr = 1e-3}), epochs = 1,
})
local path = os.tmpname()
pretrained:save(path)

-- A new model for the new classes, trained on its head alone; with `load`, every other
-- weight comes from the file.
local function transfer(load)
  local model = models.cnn{classes = 5}
  if load then
    local sd = tide.load(path)
    sd[10] = nil                              -- tide.load nests "10.weight" as sd[10].weight: the head
    local missing = model:load_state_dict(sd, {strict = false})
    print("not loaded (the new head): " .. table.concat(missing, ", "))
  end
  model:freeze()                                              -- the feature extractor
  local head = model[#model]:unfreeze()
  tide.fit(model, {
    train = data.DataLoader(new, {batch_size = 16, shuffle = true, seed = 1}),
    optimizer = optim.Adam(head:parameters(), {lr = 1e-2}), epochs = opt.epochs,
  })
  return tide.evaluate(model, data.DataLoader(new_test, {batch_size = 1000})).accuracy
end

local fine = transfer(true)
local random = transfer(false)
os.remove(path)
print(("test accuracy on the new classes, head trained on %d images: %.2f%% with the "
       .. "pretrained features, %.2f%% with random ones"):format(#new, 100 * fine, 100 * random))
if not opt.smoke and (fine < 0.9 or fine <= random) then
  error("expected at least 90% with the pretrained features, and more than with random ones", 0)
end
