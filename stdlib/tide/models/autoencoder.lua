-- stdlib/tide/models/autoencoder.lua: the seed's fully connected autoencoder, input-400-300-code
-- and mirrored back, ReLU after every layer but the last, a Sigmoid output (pixels in [0, 1]).
-- The reconstruction comes back in the input's shape.
local nn = require "tide.nn"
local U = require "tide.models.util"

local AE = nn.Module:extend("Autoencoder")
function AE:init(o)
  self.encoder = nn.Sequential(nn.Flatten(),            -- N x input
    nn.Linear(o.input, 400), nn.ReLU(), nn.Linear(400, 300), nn.ReLU(),
    nn.Linear(300, o.code), nn.ReLU())                  -- N x code
  self.decoder = nn.Sequential(
    nn.Linear(o.code, 300), nn.ReLU(), nn.Linear(300, 400), nn.ReLU(),
    nn.Linear(400, o.input), nn.Sigmoid())              -- N x input
end
function AE:forward(x) return self.decoder(self.encoder(x)):view(x.shape) end

return function(o)
  return AE(U.options("models.autoencoder", o, {code = {64, "int"}, input = {784, "int"}}))
end
