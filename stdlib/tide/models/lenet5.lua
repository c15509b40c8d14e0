-- stdlib/tide/models/lenet5.lua: LeNet-5 for 1 x 28 x 28 images, in its common modern form
-- (ReLU and max pooling; the first conv pads by 2 so 28 x 28 inputs give LeNet's 5 x 5 maps).
local nn = require "tide.nn"
local U = require "tide.models.util"

return function(o)
  o = U.options("models.lenet5", o, {classes = {10, "int"}})
  return nn.Sequential(
    nn.Conv2d(1, 6, 5, {padding = 2}), nn.ReLU(), nn.MaxPool2d(2),   -- N x 6 x 14 x 14
    nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),                 -- N x 16 x 5 x 5
    nn.Flatten(),                                                    -- N x 400
    nn.Linear(400, 120), nn.ReLU(),                                  -- N x 120
    nn.Linear(120, 84), nn.ReLU(),                                   -- N x 84
    nn.Linear(84, o.classes))                                        -- N x classes
end
