-- stdlib/tide/init.lua: the tide module. The C core (tide.core) provides tensors and ops; this
-- file adds the Lua-side API on top and is what `require "tide"` returns.
local tide = require "tide.core"

local Tensor = tide.Tensor

function Tensor:float() return self:to("float32") end
function Tensor:double() return self:to("float64") end
function Tensor:long() return self:to("int64") end
function Tensor:zero_() return self:fill_(0) end

require("tide.autograd")(tide)
require("tide.tensor")(tide)
require("tide.io")(tide) -- save, load, save_npy, load_npy, checkpoint

-- Fields loaded on first use, so `tide -e` starts without nn or optim: tide.fit = the field
-- "fit" of require "tide.fit"; a module alone (no field) is the field's value.
local lazy = {
  fit = {"tide.fit", "fit"},
  evaluate = {"tide.fit", "evaluate"},
  metrics = {"tide.metrics"},
  args = {"tide.args"},
  summary = {"tide.summary"},
  prune = {"tide.prune"},
  explain = {"tide.explain"},
  fairness = {"tide.fairness"},
  privacy = {"tide.privacy"},
  dist = {"tide.dist"}, -- the Open MPI binding (its own C module, vm/dist/)
  quant = {"tide.quant"},
  quantize_per_tensor = {"tide.quant", "quantize_per_tensor"},
  quantize_per_channel = {"tide.quant", "quantize_per_channel"},
  dequantize = {"tide.quant", "dequantize"},
}
setmetatable(tide, {__lazy = lazy, __index = function(t, k)
  local where = lazy[k]
  if not where then return nil end
  local m = require(where[1])
  local v = where[2] and m[where[2]] or m
  rawset(t, k, v)
  return v
end})

return tide
