-- stdlib/tide/optim/init.lua: what `require "tide.optim"` returns (the global `optim` of tide
-- programs): the optimizers SGD, Adam, AdamW, RMSprop, Adagrad and the learning-rate schedulers.
local adam = require "tide.optim.adam"
local Optimizer = require "tide.optim.optimizer"

local optim = {
  SGD = require "tide.optim.sgd",
  Adam = adam.Adam,
  AdamW = adam.AdamW,
  RMSprop = require "tide.optim.rmsprop",
  Adagrad = require "tide.optim.adagrad",
  Optimizer = Optimizer.methods,
  is_optimizer = Optimizer.is_optimizer,
}
for name, class in pairs(require "tide.optim.schedulers") do optim[name] = class end

return optim
