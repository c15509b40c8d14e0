-- bench/train.lua: the tide side of peer_train.py's throughput mode: same models, batches,
-- optimizers, step counts and RESULT line. A step is: fetch a batch from in-memory tensors
-- (seeded shuffle), forward, loss, backward, optimizer step, read the loss as a number.
-- Usage: tide --threads 2 bench/train.lua WORKLOAD [--steps N] [--warmup N] [--seed S]
--        [--loader 1] [--fit 1] (cnn, mlp: data.DataLoader batches; the steps run by tide.fit)
--        [--ddp 1] (under mpirun: dist.DataParallel, the batch split over the ranks, each rank
--        its own shuffle; rank 1 reports the job's samples/s: peer_ddp.py's tide side)
--        [--dp 1] (cnn, mlp: DP-SGD through tide.privacy, noise 1, clip 1, fixed batches of 64;
--        bench/peer_dp.py is its peer; named train_<wl>_dp)
-- The RESULT line also gives flop_per_step (6 FLOPs per MAC of tide.summary.macs, doc/fit.md's
-- convention) and gflops, the rate the timed steps reached: scripts/bench.py's peak_fraction.
local B = dofile(((arg[0]):match("^(.*)/") or ".") .. "/common.lua")
local nn, optim, data = require "tide.nn", require "tide.optim", require "tide.data"

local BATCH = {mlp = 64, cnn = 64, lstm = 64, autoencoder = 64, transformer = 32}
local STEPS = {mlp = 2000, cnn = 300, lstm = 200, autoencoder = 1000, transformer = 100}
local WARMUP = {mlp = 50, cnn = 20, lstm = 20, autoencoder = 50, transformer = 10}
local SEQ, VOCAB = 64, 256

local wl = arg[1]
if not BATCH[wl] then
  error("usage: train.lua mlp|cnn|lstm|autoencoder|transformer [--steps N]", 0)
end
local given = {}
for i = 2, #arg - 1, 2 do given[arg[i]:gsub("^%-%-", "")] = tonumber(arg[i + 1]) end
local dp = given.dp == 1  -- peer_dp.py's step counts: a DP step costs the peer more
local opt = {steps = dp and ({mlp = 1000, cnn = 150})[wl] or STEPS[wl],
             warmup = dp and ({mlp = 30, cnn = 10})[wl] or WARMUP[wl], seed = 0}
for k, v in pairs(given) do opt[k] = v end
local dist, rank, size = nil, 1, 1
if opt.ddp == 1 then
  dist = tide.dist
  rank, size = dist.init()
  BATCH[wl] = BATCH[wl] // size
end
tide.manual_seed(opt.seed + rank - 1)

local LSTMClassifier = nn.Module:extend("LSTMClassifier")
function LSTMClassifier:init()
  self.lstm = nn.LSTM(28, 128, {num_layers = 2, batch_first = true})
  self.fc = nn.Linear(128, 10)
end
function LSTMClassifier:forward(x)
  local out = self.lstm(x:view(-1, 28, 28))   -- B x 28 x 128
  return self.fc(out:select(2, -1))           -- last step: B x 128 -> B x 10
end

local CharTransformer = nn.Module:extend("CharTransformer")
function CharTransformer:init()
  self.tok = nn.Embedding(VOCAB, 128)
  self.pos = nn.Embedding(SEQ, 128)
  self.layers = nn.ModuleList{
    nn.TransformerEncoderLayer(128, 4, {dim_feedforward = 512, dropout = 0, activation = "relu"}),
    nn.TransformerEncoderLayer(128, 4, {dim_feedforward = 512, dropout = 0, activation = "relu"})}
  self.head = nn.Linear(128, VOCAB)
  self.positions = tide.arange(1, SEQ):long()
end
function CharTransformer:forward(idx)
  local h = self.tok(idx) + self.pos(self.positions)   -- B x T x 128
  for _, layer in ipairs(self.layers) do h = layer(h, {causal = true}) end
  return self.head(h)                                  -- B x T x 256
end

local function mlp(sizes, last_relu)
  local layers = {}
  for i = 1, #sizes - 1 do
    layers[#layers + 1] = nn.Linear(sizes[i], sizes[i + 1])
    if i < #sizes - 1 or last_relu then layers[#layers + 1] = nn.ReLU() end
  end
  return nn.Sequential(layers)
end

local function make()
  local m, o
  if wl == "mlp" then
    m = mlp{784, 512, 256, 10}
    o = optim.SGD(m:parameters(), {lr = 0.05, momentum = 0.9})
  elseif wl == "cnn" then
    m = nn.Sequential{
      nn.Conv2d(1, 32, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),   -- 32x14x14
      nn.Conv2d(32, 64, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),  -- 64x7x7
      nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10)}
    o = optim.SGD(m:parameters(), {lr = 0.01, momentum = 0.9})
  elseif wl == "lstm" then
    m = LSTMClassifier()
    o = optim.Adam(m:parameters(), {lr = 1e-3})
  elseif wl == "autoencoder" then
    m = mlp{784, 400, 300, 64, 300, 400, 784}
    o = optim.Adam(m:parameters(), {lr = 1e-3})
  else
    m = CharTransformer()
    o = optim.AdamW(m:parameters(), {lr = 3e-4})
  end
  return m, o
end

-- Batches: Fashion-MNIST kept as the uint8 it is stored in (47 MB; data.fashion_mnist and the
-- DataLoader do the same), each batch gathered then made float32 in [0, 1], labels 1..10,
-- reshuffled each epoch (drop_last); or random SEQ+1-byte windows of the licence texts for the
-- transformer. (The peer holds the images as float32, 188 MB: its choice, not the workload's.)
local function image_batches(bs)
  local root = os.getenv("FMNIST_DIR") or "/usr/share/datasets/fashion-mnist"
  local x = data.idx(root .. "/train-images-idx3-ubyte.gz"):view(-1, 784)
  local y = data.idx(root .. "/train-labels-idx1-ubyte.gz"):long():add_(1)
  local n, perm, pos = x:size(1), nil, math.huge
  if wl == "cnn" then x = x:view(-1, 1, 28, 28) end
  return function()
    if pos + bs - 1 > n then perm, pos = tide.randperm(n), 1 end
    local idx = perm:narrow(1, pos, bs)
    pos = pos + bs
    return x:index(1, idx):float():div_(255), y:index(1, idx)
  end
end

local function text_batches(bs)
  local p = io.popen("find /usr/share/common-licenses -maxdepth 1 -type f ! -name '.*'"
                     .. " | LC_ALL=C sort")
  local parts = {}
  for path in p:lines() do
    local f = assert(io.open(path, "rb"))
    parts[#parts + 1] = f:read("a")
    f:close()
  end
  p:close()
  local corpus = data.text(table.concat(parts))
  local ids = corpus:encode(table.concat(parts))       -- int64 token ids, one per byte
  local offsets = tide.arange(0, SEQ):long()            -- 0..SEQ: windows of SEQ+1
  return function()
    local starts = tide.randint(1, ids:size(1) - SEQ, {bs, 1})
    local w = ids:index(1, (starts + offsets):view(-1)):view(bs, SEQ + 1)
    return w:narrow(2, 1, SEQ), w:narrow(2, 2, SEQ)
  end
end

-- --loader 1: batches from data.DataLoader over data.fashion_mnist (uint8 kept, float per batch)
-- instead of index() on float tensors; the cnn's issue-5 overhead check. Endless: new epochs.
local function loader_batches(bs)
  local ds = data.fashion_mnist({root = os.getenv("FMNIST_DIR")})
  local loader = data.DataLoader(ds, {batch_size = bs, shuffle = true, drop_last = true,
                                      seed = opt.seed})
  local it
  return function()
    local x, y
    if it then x, y = it() end
    if not x then it = loader:iter(); x, y = it() end
    if wl ~= "cnn" then x = x:view(bs, -1) end
    return x, y
  end, loader
end

local next_batch, loader
if wl == "transformer" then next_batch = text_batches(BATCH[wl])
elseif opt.loader == 1 or opt.fit == 1 then next_batch, loader = loader_batches(BATCH[wl])
else next_batch = image_batches(BATCH[wl]) end
local model, optimizer = make()
local bare = model  -- before any wrapper: what tide.summary.macs counts
if dist then model = dist.DataParallel(model) end -- optimizer holds the same tensors
model:train()
if dp then -- the same in-memory batches; the loader gives make_private its sizes only
  assert(wl == "cnn" or wl == "mlp", "--dp 1 is for cnn and mlp")
  local ds = data.fashion_mnist({root = os.getenv("FMNIST_DIR")})
  model, optimizer = tide.privacy.make_private(model, optimizer,
    data.DataLoader(ds, {batch_size = BATCH[wl]}),
    {noise_multiplier = 1, max_grad_norm = 1, poisson = false, seed = opt.seed})
end

local function step()
  local xb, yb = next_batch()
  optimizer:zero_grad()
  local out, loss = model(xb), nil
  if wl == "autoencoder" then
    loss = nn.F.mse_loss(out, xb)
  elseif wl == "transformer" then
    loss = nn.F.cross_entropy(out:reshape(-1, VOCAB), yb:reshape(-1))
  else
    loss = nn.F.cross_entropy(out, yb)
  end
  loss:backward()
  optimizer:step()
  return loss:item()
end

local tail, sum, t0, dt, cpu0 = {}, 0, nil, nil, os.clock()
if opt.fit == 1 then -- --fit 1: the same steps through tide.fit (cnn/mlp), timed from its on_step
  assert(wl == "cnn" or wl == "mlp", "--fit 1 is for cnn and mlp")
  local done = 0
  tide.fit(model, {train = loader, optimizer = optimizer, loss = nn.F.cross_entropy,
    epochs = 1000, progress = false, on_step = function(s)
      done = done + 1
      if done == opt.warmup then cpu0, t0 = os.clock(), B.now() end
      local i = done - opt.warmup
      if i > opt.steps - 20 then tail[#tail + 1] = s.loss; sum = sum + s.loss end
      return i < opt.steps
    end})
  dt = B.now() - t0
else
  for _ = 1, opt.warmup do step() end
  if dist then dist.barrier() end
  cpu0, t0 = os.clock(), B.now()
  for i = 1, opt.steps do
    local l = step()
    if i > opt.steps - 20 then tail[#tail + 1] = l; sum = sum + l end
  end
  if dist then dist.barrier() end
  dt = B.now() - t0
end
for _, l in ipairs(tail) do
  if l ~= l or math.abs(l) == math.huge then error(wl .. ": non-finite loss " .. l, 0) end
end
-- CPU seconds of the timed steps, all threads and ranks: what a step costs on a shared machine
local cpu = tide.tensor({os.clock() - cpu0}, {dtype = "float64"})
if dist then dist.allreduce(cpu, "sum") end
local per_step = (wl == "transformer" and BATCH[wl] * SEQ or BATCH[wl]) * size
local unit = wl == "transformer" and "tokens/s" or "samples/s"
if rank > 1 then return end
-- FLOPs per step by doc/fit.md's convention: 6 per MAC of one example (a sequence for the
-- transformer), counted after the timed steps so the count costs them nothing
local example = ({mlp = {784}, cnn = {1, 28, 28}, lstm = {784}, autoencoder = {784},
                  transformer = {SEQ}})[wl]
local macs = tide.summary.macs(bare, example, {dtype = wl == "transformer" and "int64" or nil})
local flop_per_step = 6 * macs * BATCH[wl] * size
B.result("train_" .. wl .. (dp and "_dp" or ""), opt.steps * per_step / dt, unit,
  {steps = opt.steps, warmup = opt.warmup, batch = BATCH[wl] * size, ranks = size,
   params = model:num_parameters(), cpu_s = string.format("%.2f", cpu[1]),
   ms_per_step = string.format("%.3f", 1000 * dt / opt.steps), flop_per_step = flop_per_step,
   gflops = string.format("%.2f", flop_per_step * opt.steps / dt / 1e9),
   loss_last20 = string.format("%.4f", sum / #tail)})
