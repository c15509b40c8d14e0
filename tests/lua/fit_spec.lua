-- tests/lua/fit_spec.lua: tide.metrics against hand-counted values; tide.fit (learning, history,
-- train/eval switching, callbacks, schedulers, clipping, plots, errors, checkpoint + resume bit
-- for bit) and tide.evaluate; the progress display into a pipe and on a terminal
-- (tests/ptyrun.py), both through a $TIDE_BUILD/tide subprocess.
local tide = require "tide"
local nn = require "tide.nn"
local optim = require "tide.optim"
local H = require "helpers"

local BUILD = os.getenv("TIDE_BUILD") or "build"
local TIDE = BUILD .. "/tide"
local PYTHON = io.open("/usr/bin/python3", "r") and "/usr/bin/python3" or "python3"

local q = H.q
local function L(v) return tide.tensor(v, {dtype = "int64"}) end

local tmpname = H.tmpname

-- The smallest loader tide.fit accepts: batches of bs rows (reshuffled each epoch from tide's
-- generator when shuffle is set), #loader batches.
local LOADER = [[
local function loader(x, y, bs, shuffle)
  local n = x:size(1)
  return setmetatable({}, {__len = function() return (n + bs - 1) // bs end, __index = {
    iter = function()
      local i, p = 0, shuffle and tide.randperm(n)
      local xs, ys = p and x:index(1, p) or x, p and y:index(1, p) or y
      return function()
        if i >= n then return nil end
        local len = math.min(bs, n - i)
        i = i + len
        return xs:narrow(1, i - len + 1, len), ys:narrow(1, i - len + 1, len)
      end
    end}})
end
]]
local loader = load(LOADER .. "return loader", "=loader", "t",
                    setmetatable({tide = tide}, {__index = _G}))()

-- n points in 2-D, class 1 left of the y axis and class 2 right of it
local function blobs(n, seed)
  tide.manual_seed(seed or 1)
  local x = tide.randn(n, 2)
  return x, x:select(2, 1):gt(0):long() + 1
end

local function mlp()
  return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
end

describe("tide.metrics (fit_spec)", function()
  local m = tide.metrics
  local logits = tide.tensor({{2, 1, 0}, {0, 3, 1}, {1, 0, 5}, {4, 0, 0}}) -- argmax 1 2 3 1

  it("accuracy takes scores (argmax over the last dim) or class indices", function()
    assert.equal(0.5, m.accuracy(logits, L{1, 2, 2, 3}))
    assert.equal(1, m.accuracy(logits, L{1, 2, 3, 1}))
    assert.equal(2 / 3, m.accuracy(L{1, 2, 3}, L{1, 2, 2}))
    -- a batch of sequences: B x T x C scores against B x T targets
    local seq = tide.stack({logits, logits}, 1)
    assert.equal(0.75, m.accuracy(seq, L{{1, 2, 2, 3}, {1, 2, 3, 1}}))
  end)

  it("confusion_matrix counts rows = true class, columns = predicted (int64)", function()
    local cm = m.confusion_matrix(L{1, 2, 3, 1, 2, 2}, L{1, 2, 2, 3, 2, 1}, 3)
    assert.equal("int64", cm.dtype)
    assert.same({{1, 1, 0}, {0, 2, 1}, {1, 0, 0}}, cm:totable())
    assert.same({{1, 0, 0}, {0, 1, 1}, {1, 0, 0}}, m.confusion_matrix(logits, L{1, 2, 2, 3}):totable())
    -- num_classes defaults to the largest class seen
    assert.same({{1, 0}, {1, 1}}, m.confusion_matrix(L{1, 1, 2}, L{1, 2, 2}):totable())
    assert.same({4, 4}, m.confusion_matrix(L{1}, L{1}, 4).shape)
  end)

  it("confusion_matrix of many examples equals the counts of a Lua loop", function()
    tide.manual_seed(3)
    local n, c = 5000, 7
    local pred, target = tide.randint(1, c, {n}), tide.randint(1, c, {n})
    local want, p, t = {}, pred:totable(), target:totable()
    for i = 1, c do want[i] = {} for j = 1, c do want[i][j] = 0 end end
    for i = 1, n do want[t[i]][p[i]] = want[t[i]][p[i]] + 1 end
    assert.same(want, m.confusion_matrix(pred, target, c):totable())
  end)

  it("group_accuracy gives each group's accuracy and size", function()
    local acc, count = m.group_accuracy(L{1, 2, 3, 1, 2}, L{1, 2, 2, 3, 2}, L{1, 1, 3, 3, 3})
    assert.same({[1] = 1, [3] = 1 / 3}, acc)   -- group 2 has no examples
    assert.same({[1] = 2, [3] = 3}, count)
    acc = m.group_accuracy(logits, L{1, 2, 2, 3}, L{2, 2, 1, 1})
    assert.same({0, 1}, acc)
  end)

  it("rejects misuse with messages naming the function", function()
    H.err("metrics.accuracy: predictions of shape 4 do not match the target 3", m.accuracy,
          logits, L{1, 2, 3})
    H.err("metrics.accuracy: target must hold class indices 1..C (int64), got float32",
          m.accuracy, logits, tide.tensor{1, 2, 3, 1})
    H.err("metrics.accuracy: float predictions of shape 2 need one more dimension",
          m.accuracy, tide.tensor{1, 2}, L{1, 2})
    H.err("metrics.accuracy: no examples", m.accuracy, tide.zeros(0, 3), tide.zeros(0, {dtype = "int64"}))
    H.err("metrics.confusion_matrix: target holds 3, outside 1..2", m.confusion_matrix,
          L{1, 2, 2}, L{1, 2, 3}, 2)
    H.err("metrics.confusion_matrix: predictions holds 0, outside 1..3", m.confusion_matrix,
          L{0, 2, 2}, L{1, 2, 3})
    H.err("metrics.confusion_matrix: num_classes must be a positive integer, got 2.5",
          m.confusion_matrix, L{1}, L{1}, 2.5)
    H.err("metrics.group_accuracy: groups must be an int64 tensor", m.group_accuracy,
          L{1}, L{1}, {1})
    H.err("metrics.group_accuracy: 1 group ids for 2 examples", m.group_accuracy,
          L{1, 2}, L{1, 2}, L{1})
    H.err("metrics.group_accuracy: groups holds 0, outside 1..G", m.group_accuracy,
          L{1, 2}, L{1, 2}, L{0, 1})
  end)
end)

describe("tide.fit", function()
  it("learns a separable problem and fills the history", function()
    local x, y = blobs(200)
    local model = mlp()
    local h = tide.fit(model, {train = loader(x, y, 20), val = loader(x, y, 50), epochs = 4,
      optimizer = optim.Adam(model:parameters(), {lr = 0.05}), progress = false})
    assert.equal(4, h.epochs)
    assert.equal(40, h.steps)
    assert.equal(40, #h.step_loss)
    for _, k in ipairs({"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "time"}) do
      assert.equal(4, #h[k], k)
    end
    assert.same({0.05, 0.05, 0.05, 0.05}, h.lr)
    assert.is_true(h.val_accuracy[4] >= 0.97)
    assert.is_true(h.train_loss[4] < h.train_loss[1] / 3)
    -- the epoch mean is the batch-size weighted mean of its steps (equal batches here)
    local s = 0
    for i = 31, 40 do s = s + h.step_loss[i] end
    assert.is_true(math.abs(h.train_loss[4] - s / 10) < 1e-12)
    local r = tide.evaluate(model, loader(x, y, 64))
    assert.equal(h.val_accuracy[4], r.accuracy)
    assert.is_true(math.abs(h.val_loss[4] - r.loss) < 1e-6)
  end)

  it("defaults: Adam(lr 1e-3), cross-entropy, accuracy, one epoch; no val keys without val", function()
    local x, y = blobs(40)
    local model = mlp()
    local h = tide.fit(model, {train = loader(x, y, 10), progress = false})
    assert.equal(1, h.epochs)
    assert.same({1e-3}, h.lr)
    assert.equal(1, #h.train_accuracy)
    assert.is_nil(h.val_loss)
    assert.is_nil(h.val_accuracy)
    -- another loss: no default metric; custom metrics by name
    local reg = nn.Linear(2, 1)
    h = tide.fit(reg, {train = loader(x, y:float():view(-1, 1), 10), loss = nn.MSELoss(),
      metrics = {mae = function(out, t) return (out - t):abs():mean():item() end},
      val = loader(x, y:float():view(-1, 1), 40), progress = false})
    assert.is_nil(h.train_accuracy)
    assert.equal(1, #h.val_mae)
    assert.equal(1, #h.train_mae)
  end)

  it("trains in train mode with gradients and validates in eval mode without them", function()
    local seen = {}
    local Probe = nn.Module:extend("Probe")
    function Probe:init() self.fc = nn.Linear(2, 2) end
    function Probe:forward(x)
      seen[#seen + 1] = {self.training, tide.is_grad_enabled()}
      return self.fc(x)
    end
    local x, y = blobs(8)
    local model = Probe()
    tide.fit(model, {train = loader(x, y, 4), val = loader(x, y, 8), epochs = 1, progress = false,
                     cost = false})   -- cost counts MACs with one more forward (cost_spec.lua)
    assert.same({{true, true}, {true, true}, {false, false}}, seen)
    assert.is_true(model.training)
    model:eval()
    tide.evaluate(model, loader(x, y, 8))
    assert.is_false(model.training) -- evaluate restores the mode it found
    assert.is_true(tide.is_grad_enabled())
  end)

  it("calls on_step and on_epoch; returning false stops early", function()
    local x, y = blobs(40)
    local steps, epochs = {}, {}
    local model = mlp()
    local h = tide.fit(model, {train = loader(x, y, 10), val = loader(x, y, 40), epochs = 5,
      progress = false,
      on_step = function(info) steps[#steps + 1] = info end,
      on_epoch = function(info)
        epochs[#epochs + 1] = info
        if info.epoch == 2 then return false end
      end})
    assert.equal(2, h.epochs)
    assert.equal(8, #steps)
    local s = steps[6]
    assert.equal(2, s.epoch)
    assert.equal(6, s.step)
    assert.equal(2, s.batch)
    assert.equal(4, s.batches)
    assert.equal(h.step_loss[6], s.loss)
    assert.equal(1e-3, s.lr)
    assert.equal(h, s.history)
    assert.equal(model, s.model)
    assert.equal(2, #epochs)
    assert.equal(h.train_loss[2], epochs[2].train_loss)
    assert.equal(h.val_loss[2], epochs[2].val_loss)
    -- on_step false ends the epoch there (it still validates) and then training
    h = tide.fit(model, {train = loader(x, y, 10), val = loader(x, y, 40), epochs = 3,
      progress = false, on_step = function(info) return info.step < 3 end})
    assert.equal(3, h.steps)
    assert.equal(1, h.epochs)
    assert.equal(1, #h.val_loss)
  end)

  it("steps schedulers per epoch, LinearWarmup per batch, ReduceLROnPlateau on val_loss", function()
    local x, y = blobs(40)
    local model = mlp()
    local opt = optim.SGD(model:parameters(), {lr = 0.1})
    local h = tide.fit(model, {train = loader(x, y, 10), epochs = 3, optimizer = opt,
      scheduler = optim.StepLR(opt, {step_size = 1, gamma = 0.5}), progress = false})
    assert.same({0.1, 0.05, 0.025}, h.lr)
    assert.equal(0.0125, opt.lr)

    opt = optim.SGD(model:parameters(), {lr = 0.1})
    local lrs = {}
    tide.fit(model, {train = loader(x, y, 10), epochs = 2, optimizer = opt,
      scheduler = optim.LinearWarmup(opt, {warmup_steps = 4}), progress = false,
      on_step = function(info) lrs[#lrs + 1] = info.lr end})
    for i, v in ipairs({0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.1, 0.1}) do
      assert.is_true(math.abs(lrs[i] - v) < 1e-12, i)
    end

    -- a scheduler that records what it is given: the epoch's val_loss (else train_loss)
    local got = {}
    local rec = {step = function(_, metric) got[#got + 1] = metric end}
    h = tide.fit(model, {train = loader(x, y, 10), val = loader(x, y, 20), epochs = 2,
      scheduler = rec, progress = false})
    assert.same(h.val_loss, got)
    got = {}
    h = tide.fit(model, {train = loader(x, y, 10), epochs = 1, scheduler = rec,
      scheduler_step = "batch", progress = false})
    assert.same(h.step_loss, got)

    opt = optim.SGD(model:parameters(), {lr = 0.1})
    h = tide.fit(model, {train = loader(x, y, 10), val = loader(x, y, 40), epochs = 4,
      optimizer = opt, progress = false,
      scheduler = optim.ReduceLROnPlateau(opt, {patience = 0, factor = 0.5, threshold = 10})})
    assert.same({0.1, 0.05, 0.025, 0.0125}, h.lr) -- never 10x better: halved every epoch
  end)

  it("clips the gradient norm with clip_grad", function()
    local x, y = blobs(20)
    local model = mlp()
    local before = {}
    for i, p in ipairs(model:parameters()) do before[i] = p:clone() end
    local norms = {}
    tide.fit(model, {train = loader(x, y, 20), optimizer = optim.SGD(model:parameters(), {lr = 1}),
      clip_grad = 1e-3, progress = false,
      on_step = function(info) norms[#norms + 1] = info.grad_norm end})
    assert.is_true(norms[1] > 1e-2) -- the unclipped norm is reported
    local moved = 0
    for i, p in ipairs(model:parameters()) do moved = moved + ((p - before[i]) ^ 2):sum():item() end
    assert.is_true(math.abs(math.sqrt(moved) - 1e-3) < 1e-5, tostring(math.sqrt(moved)))
  end)

  it("calls plot.loss every epoch with plot = path, once at the end with plot = true", function()
    local calls = {}
    local saved = package.loaded["tide.plot"]
    package.loaded["tide.plot"] = {loss = function(h, o) calls[#calls + 1] = {h.epochs, o} end}
    local x, y = blobs(20)
    local ok, err = pcall(function()
      tide.fit(mlp(), {train = loader(x, y, 10), epochs = 2, plot = "/tmp/x.png", progress = false})
      tide.fit(mlp(), {train = loader(x, y, 10), epochs = 2, plot = true, progress = false})
    end)
    package.loaded["tide.plot"] = saved
    assert(ok, err)
    assert.same({{1, {file = "/tmp/x.png"}}, {2, {file = "/tmp/x.png"}}, {2}}, calls)
  end)

  it("writes the loss curves to a file through tide.plot", function()
    local path = tmpname() .. ".png"
    local x, y = blobs(20)
    tide.fit(mlp(), {train = loader(x, y, 10), val = loader(x, y, 20), epochs = 2, plot = path,
                     progress = false})
    local f = assert(io.open(path, "rb"))
    assert.equal("\137PNG", f:read(4))
    f:close()
    os.remove(path)
  end)

  it("rejects bad options with errors naming tide.fit", function()
    local x, y = blobs(20)
    local model, tl = mlp(), loader(x, y, 10)
    H.err("tide.fit: unknown option 'epoch' (did you mean 'epochs'?)", tide.fit, model,
          {train = tl, epoch = 3})
    H.err("tide.fit: the train loader is required (train = loader)", tide.fit, model, {epochs = 1})
    H.err("tide.fit: expected an options table", tide.fit, model)
    H.err("tide.fit: expected a model (an nn.Module), got nil", tide.fit, nil, {train = tl})
    H.err("tide.fit: train must be a loader (for x, y in loader:iter()), got table", tide.fit,
          model, {train = {x, y}})
    H.err("tide.fit: the train loader is empty", tide.fit, model, {train = loader(x:narrow(1, 1, 0), y, 4)})
    H.err("tide.fit: optimizer is the class optim.Adam, not an optimizer", tide.fit, model,
          {train = tl, optimizer = optim.Adam})
    H.err("tide.fit: the optimizer holds none of the model's parameters", tide.fit, model,
          {train = tl, optimizer = optim.SGD(mlp():parameters(), {lr = 0.1})})
    H.err("tide.fit: optimizer must be an optimizer", tide.fit, model, {train = tl, optimizer = 0.1})
    H.err("tide.fit: epochs must be a positive integer, got 0", tide.fit, model, {train = tl, epochs = 0})
    H.err("tide.fit: clip_grad must be a positive number", tide.fit, model, {train = tl, clip_grad = -1})
    H.err("tide.fit: scheduler_step must be \"epoch\" or \"batch\"", tide.fit, model,
          {train = tl, scheduler_step = "step"})
    H.err("tide.fit: resume = true needs checkpoint = path", tide.fit, model, {train = tl, resume = true})
    H.err("tide.fit: metrics: unknown metric f1", tide.fit, model, {train = tl, metrics = {"f1"}})
    H.err("tide.fit: the loss must return a scalar tensor, got a tensor of shape 10", tide.fit,
          model, {train = tl, loss = nn.CrossEntropyLoss({reduction = "none"}), progress = false})
    H.err("tide.evaluate: unknown option 'metric'", tide.evaluate, model, tl, {metric = {}})
    H.err("tide.evaluate: loader must be a loader", tide.evaluate, model, nil)
  end)

  -- Trains for `epochs` with dropout, a shuffling loader, Adam and StepLR, checkpointing to
  -- path when given; the model and loader are built after manual_seed(seed).
  local function run(make_loader, epochs, path, seed)
    local x, y = blobs(64, 5)
    tide.manual_seed(seed)
    local model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 2))
    local opt = optim.Adam(model:parameters(), {lr = 0.01})
    local ran = {}
    local h = tide.fit(model, {train = make_loader(x, y), val = loader(x, y, 64),
      epochs = epochs, optimizer = opt, scheduler = optim.StepLR(opt, {step_size = 1, gamma = 0.7}),
      checkpoint = path, resume = path and true, progress = false,
      on_epoch = function(info) ran[#ran + 1] = info.epoch end})
    return h, ran
  end

  local function check_resume(make_loader)
    local path = tmpname() .. ".safetensors"
    local full = run(make_loader, 4, nil, 7)
    local _, ran = run(make_loader, 2, path, 7)     -- no file yet: epochs 1, 2, saved after each
    assert.same({1, 2}, ran)
    -- another seed: other initial weights and random stream, all replaced by the checkpoint's
    local resumed, ran2 = run(make_loader, 4, path, 99)
    os.remove(path)
    assert.same({3, 4}, ran2)
    assert.equal(4, resumed.epochs)
    assert.equal(full.steps, resumed.steps)
    for _, k in ipairs({"step_loss", "train_loss", "val_loss", "val_accuracy", "lr"}) do
      assert.same(full[k], resumed[k], k)
    end
    local differs = run(make_loader, 4, nil, 99)    -- the comparison can tell runs apart
    assert.are_not.same(full.step_loss, differs.step_loss)
  end

  it("resumes from a checkpoint with the losses of an uninterrupted run, bit for bit", function()
    check_resume(function(x, y) return loader(x, y, 16, true) end)
  end)

  it("refuses to resume from a checkpoint without the optimizer or the epoch", function()
    local path = tmpname() .. ".safetensors"
    local x, y = blobs(8)
    local model = mlp()
    tide.checkpoint.save(path, {model = model})
    H.err("tide.fit: cannot resume from " .. path .. ": checkpoint.load: " .. path ..
          " holds no optimizer state", tide.fit, model, {train = loader(x, y, 4),
          checkpoint = path, resume = true, progress = false})
    tide.checkpoint.save(path, {model = model, optimizer = optim.Adam(model:parameters())})
    H.err("it holds no epoch (was it written by tide.fit?)", tide.fit, model,
          {train = loader(x, y, 4), checkpoint = path, resume = true, progress = false})
    os.remove(path)
  end)

  it("resumes a data.DataLoader at the same epoch of its shuffle", function()
    local data = require "tide.data"
    check_resume(function(x, y)
      return data.DataLoader(data.TensorDataset(x, y), {batch_size = 16, shuffle = true, seed = 3})
    end)
  end)

  it("trains from data.DataLoader and data.TensorDataset", function()
    local data = require "tide.data"
    local x, y = blobs(200)
    local ds = data.TensorDataset(x, y)
    local model = mlp()
    local h = tide.fit(model, {
      train = data.DataLoader(ds, {batch_size = 20, shuffle = true, seed = 1}),
      val = data.DataLoader(ds, {batch_size = 64}), epochs = 4,
      optimizer = optim.Adam(model:parameters(), {lr = 0.05}), progress = false})
    assert.equal(40, h.steps)
    assert.is_true(h.val_accuracy[4] >= 0.97)
    local r = tide.evaluate(model, data.DataLoader(ds, {batch_size = 200}))
    assert.equal(h.val_accuracy[4], r.accuracy)
  end)
end)

-- runs a tide script (LOADER and blobs prepended) with stdout into a pipe
local function run_script(body)
  local path = tmpname() .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(LOADER, body)
  f:close()
  local p = io.popen(TIDE .. " " .. q(path) .. " 2>&1")
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code, path
end

local SCRIPT = [[
tide.manual_seed(1)
local x = tide.randn(200, 2)
local y = x:select(2, 1):gt(0):long() + 1
local model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
tide.fit(model, {train = loader(x, y, 10), val = loader(x, y, 100), epochs = 2})
]]

describe("tide.fit progress", function()
  it("into a pipe: a line every 10% of an epoch and a summary per epoch", function()
    local out, code, path = run_script(SCRIPT)
    os.remove(path)
    assert.equal(0, code, out)
    local lines = {}
    for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal(21, #lines, out)         -- 9 progress lines (20 batches, every 2nd) + summary
    assert.matches("^cost: ", lines[21])  -- per epoch, and the closing line
    assert.matches("^epoch 1/2  batch 2/20  loss %d%.%d%d%d%d  %d+ samples/s$", lines[1])
    assert.matches("^epoch 1/2  batch 18/20  loss ", lines[9])
    assert.matches("^epoch 1/2  train_loss %d%.%d%d%d%d  train_accuracy %d%.%d%d%d%d  " ..
                   "val_loss %d%.%d%d%d%d  val_accuracy %d%.%d%d%d%d  %d+%.%d s$", lines[10])
    assert.matches("^epoch 2/2  train_loss ", lines[20])
    assert.is_nil(out:find("\r", 1, true))
  end)

  it("is silent with progress = false", function()
    local out, code, path = run_script((SCRIPT:gsub("epochs = 2", "epochs = 2, progress = false")))
    os.remove(path)
    assert.equal(0, code, out)
    assert.equal("", out)
  end)

  it("on a terminal: one line redrawn in place with a bar, rate and ETA", function()
    local path = tmpname() .. ".lua"
    local f = assert(io.open(path, "w"))
    f:write(LOADER, SCRIPT)
    f:close()
    local p = io.popen(("TERM=xterm %s tests/ptyrun.py %s %s -- %s %s 2>&1"):format(PYTHON,
      q("expect:epoch 1/2 \\[=+>? *\\] \\d+/20  loss \\d\\.\\d{4}  \\d+/s  ETA \\d+:\\d\\d"),
      q("expect:epoch 2/2  train_loss \\d\\.\\d{4}  train_accuracy .*  \\d+\\.\\d s\\n"),
      q(TIDE), q(path)))
    local out = p:read("a")
    local _, _, code = p:close()
    os.remove(path)
    assert.equal(0, code, out)
    -- \r and the erase-line escape are cleaned from the transcript: the bar and the summary
    -- that replaced it share one line, and no per-batch lines were written
    assert.matches("ETA %d+:%d%depoch 1/2  train_loss", out)
    assert.is_nil(out:find("batch", 1, true))
  end)

  it("tide.fit, tide.evaluate and tide.metrics load on first use, not at startup", function()
    local p = io.popen(TIDE .. " -e " .. q("print(rawget(tide, 'fit'), package.loaded['tide.nn'], " ..
      "package.loaded['tide.fit']); print(type(tide.fit), type(tide.evaluate), " ..
      "type(tide.metrics.accuracy))"))
    local out = p:read("a")
    p:close()
    assert.equal("nil\tnil\tnil\nfunction\tfunction\tfunction\n", out)
  end)
end)
