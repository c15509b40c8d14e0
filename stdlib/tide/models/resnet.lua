-- stdlib/tide/models/resnet.lua: the CIFAR-style ResNet of He et al. (depth 6n+2: a 3x3 stem of
-- 16 channels, three stages of n BasicBlocks with 16, 32, 64 channels, the last two starting with
-- stride 2, global average pooling, Linear) for 28 x 28 and 32 x 32 inputs. Where a block changes
-- the shape its shortcut is a 1x1 conv + BatchNorm (torchvision's `downsample`); the names follow
-- torchvision's ResNet (conv1, bn1, layer1.1.conv1, ..., fc).
local nn = require "tide.nn"
local U = require "tide.models.util"

local Block = nn.Module:extend("BasicBlock")
function Block:init(cin, cout, stride)
  self.conv1 = nn.Conv2d(cin, cout, 3, {stride = stride, padding = 1, bias = false})
  self.bn1 = nn.BatchNorm2d(cout)
  self.conv2 = nn.Conv2d(cout, cout, 3, {padding = 1, bias = false})
  self.bn2 = nn.BatchNorm2d(cout)
  if stride ~= 1 or cin ~= cout then
    self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, {stride = stride, bias = false}),
                                    nn.BatchNorm2d(cout))
  end
end
function Block:forward(x)                               -- N x cin x H x W -> N x cout x H/s x W/s
  local y = self.bn2(self.conv2(self.bn1(self.conv1(x)):relu()))
  return (y + (self.downsample and self.downsample(x) or x)):relu()
end

local ResNet = nn.Module:extend("ResNet")
function ResNet:init(o)
  self.conv1 = nn.Conv2d(o.channels, 16, 3, {padding = 1, bias = false})
  self.bn1 = nn.BatchNorm2d(16)
  local cin = 16
  for i, cout in ipairs({16, 32, 64}) do
    local blocks = {}
    for b = 1, (o.depth - 2) // 6 do
      blocks[b] = Block(cin, cout, (b == 1 and i > 1) and 2 or 1)
      cin = cout
    end
    self["layer" .. i] = nn.Sequential(blocks)
  end
  self.avgpool = nn.AdaptiveAvgPool2d(1)
  self.fc = nn.Linear(64, o.classes)
end
function ResNet:forward(x)                              -- x: N x C x H x W
  x = self.bn1(self.conv1(x)):relu()                    -- N x 16 x H x W
  x = self.layer3(self.layer2(self.layer1(x)))          -- N x 64 x H/4 x W/4
  return self.fc(self.avgpool(x):flatten(2))            -- N x 64 -> N x classes
end

return function(o)
  o = U.options("models.resnet", o, {depth = {20, "int"}, channels = {1, "int"}, classes = {10, "int"}})
  if o.depth < 8 or (o.depth - 2) % 6 ~= 0 then
    error(("models.resnet: option 'depth' must be 6n+2 (8, 14, 20, 32, 44, 56, ...), got %d")
          :format(o.depth), 2)
  end
  return ResNet(o)
end
