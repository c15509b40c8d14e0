-- stdlib/tide/data/mnist.lua: data.mnist and data.fashion_mnist, the IDX files of the MNIST
-- layout (train-images-idx3-ubyte[.gz] ...). Images stay uint8 in memory (47 MB for 60000,
-- not 188 MB of float32) and become float32 in [0, 1] per batch, inside the same gather.
local tide = require "tide"
local dataset = require "tide.data.dataset"

local M = {}

local FILES = {
  train = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
  test = {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"},
}
M.FASHION_ROOT = "/usr/share/datasets/fashion-mnist"
M.FASHION_CLASSES = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                     "Sneaker", "Bag", "Ankle boot"}

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function find(root, name, fn, hint)
  for _, p in ipairs({root .. "/" .. name .. ".gz", root .. "/" .. name}) do
    if exists(p) then return p end
  end
  error(string.format("%s: %s/%s.gz not found (nor %s without .gz)%s", fn, root, name, name,
                      hint), 3)
end

-- uint8 pixels to float32 in [0, 1]: per batch (and per example for ds[i])
local function to_unit(x) return x:float():div_(255) end

local function load(o, fn, default_root, hint, nclasses)
  o = o or {}
  if type(o) ~= "table" then error(fn .. ": expected an options table {split=, root=}", 3) end
  for k in pairs(o) do
    if k ~= "split" and k ~= "root" and k ~= "limit" then
      error(string.format("%s: unknown option '%s' (expected split, root, limit)", fn,
                          tostring(k)), 3)
    end
  end
  local limit = o.limit
  if limit ~= nil and (math.type(limit) ~= "integer" or limit < 1) then
    error(string.format("%s: limit must be a positive integer, got %s", fn, tostring(limit)), 3)
  end
  local split = o.split or "train"
  if not FILES[split] then
    error(string.format("%s: split must be \"train\" or \"test\", got %s", fn, tostring(split)), 3)
  end
  local root = o.root or default_root
  if not root then error(fn .. ": give root = the directory holding the IDX files", 3) end
  local xpath = find(root, FILES[split][1], fn, hint)
  local ypath = find(root, FILES[split][2], fn, hint)
  local x, y = tide._data.idx(xpath), tide._data.idx(ypath)
  if x.dtype ~= "uint8" or x:dim() ~= 3 or y.dtype ~= "uint8" or y:dim() ~= 1
     or y:size(1) ~= x:size(1) then
    error(string.format("%s: expected uint8 images N x H x W and N uint8 labels, got %s %s (%s) "
                        .. "and %s %s (%s)", fn, x.dtype, table.concat(x.shape, "x"), xpath,
                        y.dtype, table.concat(y.shape, "x"), ypath), 3)
  end
  if limit and limit < x:size(1) then -- copies, so that the rest of the file is freed
    x, y = x:narrow(1, 1, limit):clone(), y:narrow(1, 1, limit):clone()
  end
  if y:numel() > 0 and y:max():item() >= nclasses then -- class 201 of 10 would go unnoticed
    local at = y:ge(nclasses):argmax():item()             -- the first one
    error(string.format("%s: %s: label %d of example %d is outside the %d classes 0..%d", fn,
                        ypath, y[at], at, nclasses, nclasses - 1), 3)
  end
  local images = x:view(x:size(1), 1, x:size(2), x:size(3))    -- N x 1 x H x W
  local labels = y:long():add_(1)                              -- 1-based classes
  return dataset.backed({_tensors = {images, labels}, _post = {to_unit}, _name = fn,
                         split = split, root = root})
end

-- data.fashion_mnist{split = "train" | "test", root = , limit = }
function M.fashion_mnist(o)
  local ds = load(o, "fashion_mnist", M.FASHION_ROOT,
                  " (install it with: sudo apt install dataset-fashion-mnist)", #M.FASHION_CLASSES)
  ds.classes = M.FASHION_CLASSES
  return ds
end

-- data.mnist{root = , split = , limit = }: the same layout from any directory.
function M.mnist(o)
  local ds = load(o, "mnist", nil, "", 10)
  ds.classes = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
  return ds
end

return M
