-- stdlib/tide/nn/init.lua: the nn table that `require "tide.nn"` returns: Module and Parameter,
-- the containers, the layers and nn.init. Each file listed below returns a table of exports.
local nn = {}

for _, file in ipairs({"module", "containers", "layers", "conv", "norm", "loss", "rnn"}) do
  for k, v in pairs(require("tide.nn." .. file)) do nn[k] = v end
end
for k, v in pairs(require "tide.nn.attention") do nn[k] = v end
for k, v in pairs(require "tide.nn.transformer") do nn[k] = v end
nn.init = require "tide.nn.init_fns"
nn.F = require "tide.nn.functional"
nn.utils = require "tide.nn_utils"

return nn
