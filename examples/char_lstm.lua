-- examples/char_lstm.lua: a character-level LSTM language model (byte embedding 64, one LSTM
-- layer of 256, a Linear to 256 byte logits) learns English from Debian's fortunes
-- (/usr/share/games/fortunes, data.fortunes) with tide.fit, one epoch of 64-byte windows; then
-- samples text byte by byte, carrying the LSTM state. Expected: a validation loss below 2.0
-- nats per byte (5.55 is chance), in a few minutes on 2 cores; ends with an error otherwise.
-- The loss curve goes to build/char_lstm_loss.png.
-- Usage: tide examples/char_lstm.lua [--epochs N] [--plot PATH] [--smoke]
local opt = tide.args{epochs = 1, plot = "build/char_lstm_loss.png", smoke = false}
if opt.smoke then opt.epochs = 1 end

local CharLSTM = nn.Module:extend("CharLSTM")
function CharLSTM:init(hidden)
  self.emb = nn.Embedding(256, 64)
  self.lstm = nn.LSTM(64, hidden, {batch_first = true})
  self.head = nn.Linear(hidden, 256)
end
function CharLSTM:forward(idx, state)          -- idx: B x T byte ids -> B x T x 256, state
  local out, s = self.lstm(self.emb(idx), state)
  return self.head(out), s
end

tide.manual_seed(0)
local corpus = data.fortunes()
local windows = corpus:dataset(64)                       -- (x, y): 64 bytes and the next 64
local parts = data.split(windows, opt.smoke and {64, 32, #windows - 96} or {0.95, 0.05}, 0)
print(("%s: %d training and %d validation windows"):format(tostring(corpus), #parts[1], #parts[2]))

local model = CharLSTM(256)
print(model)
local history = tide.fit(model, {
  train = data.DataLoader(parts[1], {batch_size = 32, shuffle = true, seed = 0}),
  val = data.DataLoader(parts[2], {batch_size = 64}),
  loss = function(logits, y) return nn.F.cross_entropy(logits:view(-1, 256), y:view(-1)) end,
  optimizer = optim.Adam(model:parameters(), {lr = 3e-3}),
  clip_grad = 1,
  epochs = opt.epochs,
  plot = opt.plot,
})

-- Sampling: the prompt sets the state, then each drawn byte is fed back in.
local function draw(logits, temperature)       -- an id from softmax(logits / temperature)
  local cdf = (logits / temperature):softmax(1):cumsum(1)
  return math.min(cdf:lt(tide.rand(1):item()):sum():item() + 1, 256)
end
tide.manual_seed(1)
model:eval()
local ids = {}
tide.no_grad(function()
  local logits, state = model(corpus:encode("The meaning of life is"):view(1, -1))
  for n = 1, opt.smoke and 16 or 300 do
    ids[n] = draw(logits[1][logits:size(2)], 0.8)
    logits, state = model(tide.tensor({{ids[n]}}, {dtype = "int64"}), state)
  end
end)
print("sample:\nThe meaning of life is" .. corpus:decode(tide.tensor(ids, {dtype = "int64"})))
local loss = history.val_loss[#history.val_loss]
print(("validation loss after %d epoch(s): %.3f nats per byte (loss curve: %s)"):format(
      opt.epochs, loss, opt.plot))
if not opt.smoke and loss >= 2.0 then
  error(("expected a validation loss below 2.0, got %.3f"):format(loss), 0)
end
