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

return tide
