-- examples/distill.lua: knowledge distillation on Fashion-MNIST. Trains a teacher (models.cnn
-- with BatchNorm, 2 epochs on all 60000 images), then a small student (an MLP 784-32-10, 17
-- times fewer parameters) that sees only 5000 labelled images, twice from the same start: on
-- the labels alone (cross-entropy), and on the labels plus the teacher's softened outputs with
-- nn.F.distillation_loss (temperature 2, alpha 0.5), in a hand-written training loop.
-- Expected: the teacher at 89% test accuracy or more and the distilled student at 82% or
-- more (the student on labels alone reaches about 81.5%); ends with an error otherwise.
-- Usage: tide examples/distill.lua [--epochs N] [--smoke]   (N: student epochs, 15)
local opt = tide.args{epochs = 15, smoke = false}
if opt.smoke then opt.epochs = 1 end

tide.manual_seed(0)
local train = data.fashion_mnist{split = "train", limit = opt.smoke and 512 or nil}
local test = data.fashion_mnist{split = "test", limit = opt.smoke and 512 or nil}
local test_loader = data.DataLoader(test, {batch_size = 1000})

local teacher = models.cnn{batchnorm = true, dropout = 0.25}
local optimizer = optim.Adam(teacher:parameters(), {lr = 1e-3})
local teacher_epochs = opt.smoke and 1 or 2
tide.fit(teacher, {
  train = data.DataLoader(train, {batch_size = 64, shuffle = true, seed = 0}),
  optimizer = optimizer, epochs = teacher_epochs,
  scheduler = optim.CosineAnnealingLR(optimizer, {T_max = teacher_epochs}),
})
local teacher_acc = tide.evaluate(teacher, test_loader).accuracy

-- The student's data: n images, their labels and the teacher's logits for them, computed once.
local n = math.min(5000, #train)
local x, y = data.fashion_mnist{split = "train", limit = n}:tensors() -- float32 for n images only
teacher:eval()
local logits = tide.no_grad(function()
  local parts = {}
  for s = 1, n, 1000 do parts[#parts + 1] = teacher(x:narrow(1, s, math.min(1000, n - s + 1))) end
  return tide.cat(parts, 1)                                   -- n x 10
end)
local loader = data.DataLoader(data.TensorDataset(x, y, logits),
                               {batch_size = 64, shuffle = true, seed = 1})

local function student_run(distill)
  tide.manual_seed(1)                                         -- both students start alike
  local student = models.mlp{784, 32, 10}
  local adam = optim.Adam(student:parameters(), {lr = 1e-3})
  for _ = 1, opt.epochs do
    for xb, yb, tb in loader:iter() do
      local out = student(xb)
      local loss = distill and nn.F.distillation_loss(out, tb, yb, {temperature = 2, alpha = 0.5})
                   or nn.F.cross_entropy(out, yb)
      adam:zero_grad()
      loss:backward()
      adam:step()
    end
  end
  return tide.evaluate(student, test_loader).accuracy, student:num_parameters()
end

local plain = student_run(false)
local distilled, size = student_run(true)
print(("test accuracy: teacher %.2f%% (%d parameters, %d images); student (%d parameters, %d "
       .. "images) %.2f%% on labels alone, %.2f%% distilled (%s)"):format(100 * teacher_acc,
       teacher:num_parameters(), #train, size, n, 100 * plain, 100 * distilled,
       distilled > plain and "the teacher helped" or "no gain this time"))
if not opt.smoke and (teacher_acc < 0.89 or distilled < 0.82) then
  error("expected the teacher at 89% or more and the distilled student at 82% or more", 0)
end
