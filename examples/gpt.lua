-- examples/gpt.lua: a small GPT (models.gpt: 2 pre-norm layers, d_model 128, 4 heads, 64
-- bytes of context, 471k parameters) learns English byte by byte from Debian's fortunes
-- (/usr/share/games/fortunes, data.fortunes): two epochs of 64-byte windows with tide.fit,
-- AdamW, warmup and cosine decay; then samples text with gpt:generate. Expected: a validation
-- loss below 1.9 nats per byte (5.55 is chance); ends with an error otherwise. The loss curve
-- goes to build/gpt_loss.png.
-- Usage: tide examples/gpt.lua [--epochs N] [--plot PATH] [--smoke]
local opt = tide.args{epochs = 2, plot = "build/gpt_loss.png", smoke = false}
if opt.smoke then opt.epochs = 1 end

tide.manual_seed(0)
local corpus = data.fortunes()
local windows = corpus:dataset(64)                       -- (x, y): 64 bytes and the next 64
local parts = data.split(windows, opt.smoke and {64, 32, #windows - 96} or {0.95, 0.05}, 0)
print(("%s: %d training and %d validation windows"):format(tostring(corpus), #parts[1], #parts[2]))

local model = models.gpt{vocab = 256, d_model = 128, heads = 4, layers = 2, seq_len = 64, ff = 512}
print(model)
local train = data.DataLoader(parts[1], {batch_size = 32, shuffle = true, seed = 0})
local optimizer = optim.AdamW(model:parameters(), {lr = 2e-3, weight_decay = 0.01})
local steps = opt.epochs * #train
local history = tide.fit(model, {
  train = train,
  val = data.DataLoader(parts[2], {batch_size = 64}),
  loss = function(logits, y) return nn.F.cross_entropy(logits:view(-1, 256), y:view(-1)) end,
  optimizer = optimizer,                                -- 100 warmup steps, then cosine decay
  scheduler = optim.LinearWarmup(optimizer, {warmup_steps = math.min(100, steps),
    after = optim.CosineAnnealingLR(optimizer, {T_max = math.max(1, steps - 100), eta_min = 1e-4})}),
  clip_grad = 1,
  epochs = opt.epochs,
  plot = opt.plot,
})

tide.manual_seed(1)
local prompt = corpus:encode("The meaning of life is")
local text = corpus:decode(model:generate(prompt, opt.smoke and 16 or 300, {temperature = 0.8, top_k = 40}))
print("sample:\n" .. text)
local loss = history.val_loss[#history.val_loss]
print(("validation loss after %d epoch(s): %.3f nats per byte (loss curve: %s)"):format(
      opt.epochs, loss, opt.plot))
if not opt.smoke and loss >= 1.9 then
  error(("expected a validation loss below 1.9, got %.3f"):format(loss), 0)
end
