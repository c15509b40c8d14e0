-- stdlib/tide/models/cnn.lua: the seed CNN for 1 x 28 x 28 images (Fashion-MNIST):
-- Conv(1,32,3,p1)-ReLU-MaxPool2-Conv(32,64,3,p1)-ReLU-MaxPool2-Flatten-Linear(3136,128)-ReLU-
-- Linear(128,classes), with BatchNorm2d after each conv and Dropout before the last Linear on
-- request. One flat nn.Sequential, so its state dict has PyTorch's nn.Sequential names.
local nn = require "tide.nn"
local U = require "tide.models.util"

return function(o)
  o = U.options("models.cnn", o, {
    batchnorm = {false, "bool"}, dropout = {0, "prob"}, classes = {10, "int"},
  })
  local layers = {}
  local function add(m) layers[#layers + 1] = m end
  for _, c in ipairs({{1, 32}, {32, 64}}) do             -- H x W: 28 -> 14 -> 7
    add(nn.Conv2d(c[1], c[2], 3, {padding = 1}))         -- N x c2 x H x W
    if o.batchnorm then add(nn.BatchNorm2d(c[2])) end
    add(nn.ReLU())
    add(nn.MaxPool2d(2))                                 -- N x c2 x H/2 x W/2
  end
  add(nn.Flatten())                                      -- N x 3136
  add(nn.Linear(64 * 7 * 7, 128))                        -- N x 128
  add(nn.ReLU())
  if o.dropout > 0 then add(nn.Dropout(o.dropout)) end
  add(nn.Linear(128, o.classes))                         -- N x classes
  return nn.Sequential(layers)
end
