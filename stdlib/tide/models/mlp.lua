-- stdlib/tide/models/mlp.lua: a multilayer perceptron, models.mlp{784, 512, 256, 10}: Flatten,
-- then Linear layers of the listed sizes with an activation (and dropout) between them.
local nn = require "tide.nn"
local U = require "tide.models.util"

local ACT = {relu = nn.ReLU, gelu = nn.GELU, tanh = nn.Tanh, sigmoid = nn.Sigmoid, silu = nn.SiLU}

return function(o)
  o = U.options("models.mlp", o, {
    dropout = {0, "prob"}, activation = {"relu", {"relu", "gelu", "tanh", "sigmoid", "silu"}},
  }, true)
  if #o < 2 then
    error("models.mlp: expected at least two sizes, e.g. models.mlp{784, 128, 10}", 2)
  end
  local layers = {nn.Flatten()}                          -- N x ... -> N x o[1]
  for i = 1, #o - 1 do
    layers[#layers + 1] = nn.Linear(o[i], o[i + 1])      -- N x o[i] -> N x o[i+1]
    if i < #o - 1 then
      layers[#layers + 1] = ACT[o.activation]()
      if o.dropout > 0 then layers[#layers + 1] = nn.Dropout(o.dropout) end
    end
  end
  return nn.Sequential(layers)
end
