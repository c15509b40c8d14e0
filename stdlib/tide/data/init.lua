-- stdlib/tide/data/init.lua: what `require "tide.data"` returns (the global `data` of tide
-- programs): datasets (TensorDataset, mnist, fashion_mnist, csv, text), data.split, and the
-- DataLoader. Each concept lives in a file of its own beside this one.
local tide = require "tide"
local dataset = require "tide.data.dataset"
local mnist = require "tide.data.mnist"
local text = require "tide.data.text"

local data = {
  TensorDataset = dataset.TensorDataset,
  split = dataset.split,
  DataLoader = require "tide.data.loader",
  mnist = mnist.mnist,
  fashion_mnist = mnist.fashion_mnist,
  csv = require "tide.data.csv",
  text = text.text,
  fortunes = text.fortunes,
}

-- data.idx(path): any IDX file, gzipped or not, to a tensor (uint8 stays uint8; int8, int16
-- and int32 become int64; float32 and float64 stay). In C: vm/data.c, tensor/io/idx.c.
data.idx = tide._data.idx

return data
