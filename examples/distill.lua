-- examples/distill.lua: knowledge distillation on Fashion-MNIST. Trains a teacher (models.cnn
-- with BatchNorm, 2 epochs), then a small student (an MLP 784-32-10, 40 times fewer
-- parameters) twice from the same start: on the labels alone (cross-entropy), and on the
-- teacher's softened outputs with nn.F.distillation_loss (temperature 4, alpha 0.9), in a
-- hand-written training loop. Expected: the teacher above 90% test accuracy and the distilled
-- student above 85%; ends with an error otherwise. Prints all three accuracies.
-- Usage: tide examples/distill.lua [--epochs N] [--smoke]   (N: student epochs, 5)
local opt = {epochs = 5}
local i = 1
while arg[i] do                            -- --name value, --smoke
  local k = arg[i]:match("^%-%-(%w+)$")
  if k == "smoke" then opt.smoke = true
  elseif k and opt[k] then i = i + 1; opt[k] = tonumber(arg[i]) or arg[i]
  else error("unknown argument " .. arg[i] .. " (see the top of " .. arg[0] .. ")", 0) end
  i = i + 1
end
if opt.smoke then opt.epochs = 1 end

tide.manual_seed(0)
local train = data.fashion_mnist{split = "train"}
local test = data.fashion_mnist{split = "test"}
if opt.smoke then
  train = data.split(train, {512, #train - 512}, 0)[1]
  test = data.split(test, {512, #test - 512}, 0)[1]
end
local test_loader = data.DataLoader(test, {batch_size = 1000})

local teacher = models.cnn{batchnorm = true, dropout = 0.25}
tide.fit(teacher, {
  train = data.DataLoader(train, {batch_size = 64, shuffle = true, seed = 0}),
  optimizer = optim.Adam(teacher:parameters(), {lr = 1e-3}), epochs = opt.smoke and 1 or 2,
})
local teacher_acc = tide.evaluate(teacher, test_loader).accuracy

-- The teacher's logits for every training image, computed once: example i is (x, y, logits).
local x, y = train:tensors()
teacher:eval()
local logits = tide.no_grad(function()
  local parts = {}
  for s = 1, #train, 1000 do parts[#parts + 1] = teacher(x:narrow(1, s, math.min(1000, #train - s + 1))) end
  return tide.cat(parts, 1)
end)
local with_teacher = data.DataLoader(data.TensorDataset(x, y, logits),
                                     {batch_size = 64, shuffle = true, seed = 1})

local function student_run(distill)
  tide.manual_seed(1)                                         -- both students start alike
  local student = models.mlp{784, 32, 10}
  local optimizer = optim.Adam(student:parameters(), {lr = 1e-3})
  for epoch = 1, opt.epochs do
    for xb, yb, tb in with_teacher:iter() do
      local out = student(xb)
      local loss = distill and nn.F.distillation_loss(out, tb, yb, {temperature = 4, alpha = 0.9})
                   or nn.F.cross_entropy(out, yb)
      optimizer:zero_grad()
      loss:backward()
      optimizer:step()
    end
    print(("%s student, epoch %d: test accuracy %.4f"):format(distill and "distilled" or "plain",
          epoch, tide.evaluate(student, test_loader).accuracy))
  end
  return tide.evaluate(student, test_loader).accuracy, student:num_parameters()
end

local plain = student_run(false)
local distilled, n = student_run(true)
print(("test accuracy: teacher %.2f%% (%d parameters), student %.2f%% on labels, %.2f%% "
       .. "distilled (%d parameters)"):format(100 * teacher_acc, teacher:num_parameters(),
       100 * plain, 100 * distilled, n))
if not opt.smoke and (teacher_acc < 0.9 or distilled < 0.85) then
  error("expected the teacher above 90% and the distilled student above 85%", 0)
end
