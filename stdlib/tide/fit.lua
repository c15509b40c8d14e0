-- stdlib/tide/fit.lua: tide.fit, the training loop of doc/fit.md: epochs of batches with a
-- progress display, validation and metrics, schedulers stepped per epoch or per batch, gradient
-- clipping, callbacks, loss plots, and checkpoints that resume bit for bit; and tide.evaluate,
-- one pass over a loader without gradients.
local tide = require "tide"
local nn = require "tide.nn"
local optim = require "tide.optim"
local metrics = require "tide.metrics"
local progress = require "tide.progress"
local world = require "tide.world" -- the ranks of a distributed run (doc/dist.md)

local M = {}

local OPTIONS = {"train", "val", "loss", "optimizer", "scheduler", "scheduler_step", "epochs",
                 "metrics", "clip_grad", "plot", "checkpoint", "resume", "progress", "on_step",
                 "on_epoch", "groups", "cost"}
local SCALAR = {accuracy = true} -- the metrics.* that map (output, target) to a batch mean

local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__call ~= nil
end

local function has(obj, name) -- obj[name] is a function (obj may be anything)
  local ok, f = pcall(function() return obj[name] end)
  return ok and type(f) == "function"
end

local function class_name(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__name") or nil
end

-- A loss value (a one-element tensor or a number) as a number.
local function scalar(fn, l)
  if type(l) == "number" then return l end
  if not tide.is_tensor(l) or l:numel() ~= 1 then
    error(("%s: the loss must return a scalar tensor, got %s"):format(fn,
      tide.is_tensor(l) and "a tensor of shape " .. table.concat(l.shape, "x") ..
      " (use reduction = \"mean\")" or type(l)), 0)
  end
  return l:item()
end

local function batch_size(x, y)
  local t = tide.is_tensor(y) and y:dim() > 0 and y or x
  return tide.is_tensor(t) and t:dim() > 0 and t:size(1) or 1
end

-- checks a loader (level: where errors point)
local function check_loader(fn, what, loader, level)
  if not has(loader, "iter") then
    error(("%s: %s must be a loader (for x, y in loader:iter()), got %s"):format(fn, what,
          type(loader)), level + 1)
  end
  local ok, n = pcall(function() return #loader end)
  if not ok or math.type(n) ~= "integer" then
    error(("%s: %s must answer #loader (batches per epoch)"):format(fn, what), level + 1)
  end
  return n
end

-- Metric functions and names (in order) from {"accuracy", name = fn(output, target)}; nil gives
-- accuracy for a classification loss (the default cross-entropy, CrossEntropyLoss, NLLLoss).
local function metric_fns(fn, list, loss, level)
  if list == nil then
    local cls = class_name(loss)
    list = (loss == nil or cls == "CrossEntropyLoss" or cls == "NLLLoss") and {"accuracy"} or {}
  end
  if type(list) ~= "table" then
    error(fn .. ": metrics must be a list such as {\"accuracy\"}, got " .. type(list), level + 1)
  end
  local fns, names, named = {}, {}, {}
  for k, v in pairs(list) do
    if math.type(k) == "integer" and type(v) == "string" and SCALAR[v] then
      fns[v] = metrics[v]
    elseif type(k) == "string" and callable(v) then
      fns[k], named[#named + 1] = v, k
    else
      error(("%s: metrics: unknown metric %s (known: accuracy; or name = function(output, " ..
             "target) returning the batch mean)"):format(fn, tostring(v)), level + 1)
    end
  end
  for _, v in ipairs(list) do names[#names + 1] = v end
  table.sort(named)
  for _, k in ipairs(named) do names[#names + 1] = k end
  return fns, names
end

-- One pass without gradients in eval mode: {loss =, <metric> =}, means over examples.
local function run_eval(fn, model, loader, lossf, fns, names)
  local was = model.training
  local n, sum, msum = 0, 0, {}
  for _, name in ipairs(names) do msum[name] = 0 end
  model:eval()
  local ok, err = pcall(tide.no_grad, function()
    for x, y in loader:iter() do
      local out, b = model(x), batch_size(x, y)
      if lossf then sum = sum + scalar(fn, lossf(out, y)) * b end
      for _, name in ipairs(names) do msum[name] = msum[name] + fns[name](out, y) * b end
      n = n + b
    end
  end)
  model:train(was)
  if not ok then error(err, 0) end
  n, sum = world.reduce(n, sum, msum, names)
  if n == 0 then error(fn .. ": the loader yielded no batches", 0) end
  local r = {loss = lossf and sum / n or nil}
  for _, name in ipairs(names) do r[name] = msum[name] / n end
  return r, n
end

local function check_model(fn, model, level)
  if not (callable(model) and has(model, "parameters") and has(model, "train")) then
    error(fn .. ": expected a model (an nn.Module), got " .. type(model), level + 1)
  end
end

-- tide.evaluate(model, loader, {loss = nn.CrossEntropyLoss() or false, metrics = ...})
function M.evaluate(model, loader, opts)
  local fn = "tide.evaluate"
  check_model(fn, model, 2)
  check_loader(fn, "loader", loader, 2)
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "loss" and k ~= "metrics" then
      error(fn .. ": unknown option '" .. tostring(k) .. "' (known: loss, metrics)", 2)
    end
  end
  local lossf = opts.loss
  if lossf ~= nil and lossf ~= false and not callable(lossf) then
    error(fn .. ": loss must be a loss module or function (or false), got " .. type(lossf), 2)
  end
  local fns, names = metric_fns(fn, opts.metrics, lossf or nil, 2)
  if lossf == nil then lossf = nn.CrossEntropyLoss() end
  local ok, r = pcall(run_eval, fn, model, loader, lossf or nil, fns, names)
  if not ok then error(r, 2) end
  return r
end

---- tide.fit: options ---------------------------------------------------------------------

local function unknown_option(k)
  local msg = "tide.fit: unknown option '" .. tostring(k) .. "'"
  for _, name in ipairs(OPTIONS) do
    if type(k) == "string" and #k > 2 and (name:find(k, 1, true) or k:find(name, 1, true)) then
      return msg .. " (did you mean '" .. name .. "'?)"
    end
  end
  return msg .. " (known: " .. table.concat(OPTIONS, ", ") .. ")"
end

local function check_optimizer(opt, model)
  if opt == nil then return optim.Adam(model:parameters(), {lr = 1e-3}) end
  if type(opt) == "table" and opt.defaults and opt.name and not opt.param_groups then
    error(("tide.fit: optimizer is the class optim.%s, not an optimizer: build it on the " ..
           "model's parameters, optim.%s(model:parameters(), {lr = ...})"):format(opt.name,
           opt.name), 4)
  end
  if not (optim.is_optimizer(opt) or has(opt, "step") and has(opt, "zero_grad")) then
    error("tide.fit: optimizer must be an optimizer such as optim.Adam(model:parameters()), " ..
          "got " .. type(opt), 4)
  end
  local groups = optim.is_optimizer(opt) and opt.param_groups
  if groups then
    local mine, shared = {}, false
    for _, p in ipairs(model:parameters()) do mine[p] = true end
    for _, g in ipairs(groups) do
      for _, p in ipairs(g.params) do shared = shared or mine[p] == true end
    end
    if not shared then
      error("tide.fit: the optimizer holds none of the model's parameters (build it from " ..
            "model:parameters())", 4)
    end
  end
  return opt
end

-- The options, checked, with their defaults (doc/fit.md).
local function options(model, opts)
  check_model("tide.fit", model, 3)
  if type(opts) ~= "table" then
    error("tide.fit: expected an options table {train = loader, epochs = n, ...}, got " ..
          type(opts), 3)
  end
  local known = {}
  for _, k in ipairs(OPTIONS) do known[k] = true end
  for k in pairs(opts) do
    if not known[k] then error(unknown_option(k), 3) end
  end
  local function bad(k, want)
    error(("tide.fit: %s must be %s, got %s"):format(k, want, tostring(opts[k])), 4)
  end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  if o.train == nil then error("tide.fit: the train loader is required (train = loader)", 3) end
  if check_loader("tide.fit", "train", o.train, 3) == 0 then
    error("tide.fit: the train loader is empty (#train == 0)", 3)
  end
  if o.val ~= nil then check_loader("tide.fit", "val", o.val, 3) end
  o.epochs = o.epochs or 1
  if math.type(o.epochs) ~= "integer" or o.epochs < 1 then bad("epochs", "a positive integer") end
  if o.loss ~= nil and not callable(o.loss) then bad("loss", "a loss module or function") end
  o.metric_fns, o.names = metric_fns("tide.fit", o.metrics, o.loss, 3)
  o.loss = o.loss or nn.CrossEntropyLoss()
  o.optimizer = check_optimizer(o.optimizer, model)
  local s = o.scheduler
  if s ~= nil and not has(s, "step") then bad("scheduler", "a scheduler (optim.StepLR...)") end
  if o.scheduler_step == nil then
    o.scheduler_step = class_name(s) == "optim.LinearWarmup" and "batch" or "epoch"
  elseif o.scheduler_step ~= "epoch" and o.scheduler_step ~= "batch" then
    bad("scheduler_step", "\"epoch\" or \"batch\"")
  end
  local c = o.clip_grad
  if c ~= nil and (type(c) ~= "number" or c ~= c or c <= 0) then
    bad("clip_grad", "a positive number (the max gradient norm)")
  end
  if o.plot ~= nil and type(o.plot) ~= "boolean" and type(o.plot) ~= "string" then
    bad("plot", "a file name or true")
  end
  if o.checkpoint ~= nil and type(o.checkpoint) ~= "string" then bad("checkpoint", "a path") end
  if o.resume ~= nil and type(o.resume) ~= "boolean" then bad("resume", "a boolean") end
  if o.resume and not o.checkpoint then
    error("tide.fit: resume = true needs checkpoint = path (the file to resume from)", 3)
  end
  if o.progress == nil then o.progress = true end
  if type(o.progress) ~= "boolean" then bad("progress", "a boolean") end
  for _, k in ipairs({"on_step", "on_epoch"}) do
    if o[k] ~= nil and not callable(o[k]) then bad(k, "a function") end
  end
  if o.groups ~= nil then require("tide.fairness.report").check(o.groups) end
  o.cost = require("tide.cost").meter(o.cost)
  o.params = model:parameters()
  return o
end

---- tide.fit: checkpoints and plots -------------------------------------------------------

local function checkpoint_module()
  local ok, ck = pcall(function() return tide.checkpoint end)
  if not ok or type(ck) ~= "table" then
    error("tide.fit: checkpoint = path needs tide.checkpoint, which did not load: " ..
          tostring(ck), 0)
  end
  return ck
end

-- History lists become float64 tensors in the file (numbers survive bit for bit).
local function pack(history)
  local t = {}
  for k, v in pairs(history) do
    if type(v) == "table" then
      if #v > 0 then t[k] = tide.tensor(v, {dtype = "float64"}) end
    else
      t[k] = v
    end
  end
  return t
end

local function unpack_history(saved, history)
  for k, v in pairs(saved or {}) do
    if tide.is_tensor(v) then history[k] = v:reshape(-1):totable()
    else history[k] = tonumber(v) or v end
  end
  return history
end

local function save(o, model, history)
  checkpoint_module().save(o.checkpoint, {model = model, optimizer = o.optimizer,
    scheduler = o.scheduler, epoch = history.epochs, step = history.steps, rng = true,
    extra = {history = pack(history)}})
end

-- Restores model, optimizer, scheduler and random state from o.checkpoint when the file exists;
-- returns the epoch to start from.
local function resume(o, model, history)
  local f = io.open(o.checkpoint, "rb")
  if not f then return 1 end
  f:close()
  local ok, epoch, _, extra = pcall(checkpoint_module().load, o.checkpoint, {model = model,
    optimizer = o.optimizer, scheduler = o.scheduler})
  if not ok or not math.tointeger(epoch) then
    error("tide.fit: cannot resume from " .. o.checkpoint .. ": " .. (ok and "it holds no " ..
          "epoch (was it written by tide.fit?)" or tostring(epoch):gsub("^[^\n]-:%d+: ", "")), 0)
  end
  unpack_history(extra and extra.history, history)
  return math.tointeger(epoch) + 1
end

local function plot_loss(history, file)
  local ok, plot = pcall(require, "tide.plot")
  if not ok then error("tide.fit: plot needs tide.plot, which did not load: " .. plot, 0) end
  plot.loss(history, file and {file = file} or nil)
end

---- tide.fit: the loop --------------------------------------------------------------------

local function fmt(v) return ("%.4f"):format(v) end

-- A DP optimizer (tide.privacy) reports epsilon; with a target it is a budget that the next
-- step must not exceed.
local function privacy_of(opt)
  local ok, p = pcall(function() return opt.privacy end)
  return ok and type(p) == "table" and p or nil
end
local function over_budget(opt)
  local p = privacy_of(opt)
  return p and p.target_epsilon and opt:epsilon(p.delta, p.steps + 1) > p.target_epsilon
end

-- One epoch of training; returns its mean loss, metric means and whether a callback stopped.
local function train_epoch(o, model, history, epoch, bar)
  local loader, batches, opt = o.train, #o.train, o.optimizer
  local sum, n, msum, i, stop = 0, 0, {}, 0, false
  for _, name in ipairs(o.names) do msum[name] = 0 end
  if has(loader, "set_epoch") then loader:set_epoch(epoch) end
  model:train()
  if bar then bar:start(epoch, batches) end
  for x, y in loader:iter() do
    if over_budget(opt) then stop = true; break end
    i = i + 1
    opt:zero_grad()
    local out = model(x)
    local l = o.loss(out, y)
    local lv = scalar("tide.fit", l)
    l:backward()
    local gnorm = o.clip_grad and nn.utils.clip_grad_norm_(o.params, o.clip_grad):item()
    local lr = opt.lr
    opt:step()
    if o.scheduler and o.scheduler_step == "batch" then o.scheduler:step(lv) end
    local b = batch_size(x, y)
    if o.cost then o.cost:batch(model, x, b) end
    history.steps = history.steps + 1
    history.step_loss[history.steps] = lv
    if b > 0 then -- DP-SGD's Poisson batches may be empty
      sum, n = sum + lv * b, n + b
      for _, name in ipairs(o.names) do
        msum[name] = msum[name] + o.metric_fns[name](out:detach(), y) * b
      end
    end
    if bar then bar:update(i, lv, b) end
    if o.on_step and o.on_step({epoch = epoch, step = history.steps, batch = i,
        batches = batches, loss = lv, lr = lr, grad_norm = gnorm or nil, history = history,
        model = model, optimizer = opt}) == false then
      stop = true
      break
    end
  end
  if i == 0 and not stop then error("tide.fit: the train loader yielded no batches", 0) end
  n, sum = world.reduce(n, sum, msum, o.names)
  if n == 0 then return 0 / 0, msum, stop end
  for _, name in ipairs(o.names) do msum[name] = msum[name] / n end
  return sum / n, msum, stop
end

local function new_history(o)
  local h = {epochs = 0, steps = 0, train_loss = {}, step_loss = {}, lr = {}, time = {}}
  for _, name in ipairs(o.names) do h["train_" .. name] = {} end
  if o.val then
    h.val_loss = {}
    for _, name in ipairs(o.names) do h["val_" .. name] = {} end
  end
  return h
end

local function fit(model, o)
  local history, start = new_history(o), 1
  if o.resume then start = resume(o, model, history) end
  world.check_same(start, "tide.fit: the ranks would resume from different epochs: the " ..
                   "checkpoint must be visible to every rank (a shared directory)")
  local main = world.is_main() -- only rank 1 prints, plots and writes the checkpoint
  local bar = o.progress and main and progress.new({epochs = o.epochs})
  for epoch = start, o.epochs do
    local t0, lr, nval = tide._clock(), o.optimizer.lr, 0
    if o.cost then o.cost:start() end
    local loss, means, stop = train_epoch(o, model, history, epoch, bar)
    local line = {("epoch %d/%d"):format(epoch, o.epochs), "train_loss " .. fmt(loss)}
    history.train_loss[epoch], history.lr[epoch] = loss, lr
    for _, name in ipairs(o.names) do
      history["train_" .. name][epoch] = means[name]
      line[#line + 1] = ("train_%s %s"):format(name, fmt(means[name]))
    end
    local watched = loss
    if o.val then
      local r, n = run_eval("tide.fit", model, o.val, o.loss, o.metric_fns, o.names)
      nval = n
      history.val_loss[epoch], watched = r.loss, r.loss
      line[#line + 1] = "val_loss " .. fmt(r.loss)
      for _, name in ipairs(o.names) do
        history["val_" .. name][epoch] = r[name]
        line[#line + 1] = ("val_%s %s"):format(name, fmt(r[name]))
      end
    end
    if o.groups then -- group metrics and disparities (doc/fairness.md)
      line[#line + 1] = require("tide.fairness.report").track(o.groups, model, history, epoch)
    end
    if o.scheduler and o.scheduler_step == "epoch" then o.scheduler:step(watched) end
    local dp = privacy_of(o.optimizer)
    if dp then
      history.epsilon = history.epsilon or {}
      history.epsilon[epoch] = o.optimizer:epsilon(dp.delta)
      line[#line + 1] = ("epsilon %.3g"):format(history.epsilon[epoch])
      stop = stop or over_budget(o.optimizer)
    end
    history.epochs, history.time[epoch] = epoch, tide._clock() - t0
    if o.cost then o.cost:epoch(history, epoch, nval) end
    line[#line + 1] = ("%.1f s"):format(history.time[epoch])
    if bar then bar:finish(table.concat(line, "  ")) end
    if o.on_epoch and o.on_epoch({epoch = epoch, epochs = o.epochs, train_loss = loss,
        val_loss = history.val_loss and history.val_loss[epoch], history = history,
        model = model, optimizer = o.optimizer}) == false then
      stop = true
    end
    if o.checkpoint and main then save(o, model, history) end
    if type(o.plot) == "string" and main then plot_loss(history, o.plot) end
    if stop then break end
  end
  if o.cost and history.epochs > 0 then
    local line = o.cost:total(history)
    if o.progress and main then io.stdout:write(line, "\n") end
  end
  if o.plot == true and main then plot_loss(history) end
  return history
end

-- tide.fit(model, {train = loader, ...}) -> history (doc/fit.md)
function M.fit(model, opts)
  return fit(model, options(model, opts))
end

return M
