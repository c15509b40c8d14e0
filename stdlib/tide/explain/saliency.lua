-- stdlib/tide/explain/saliency.lua: the gradient of the target score with respect to the input
-- (Simonyan et al. 2014), or gradient x input; one forward and one backward for the batch.
local C = require "tide.explain.common"

local KNOWN = {times_input = true, abs = true, batch_size = true}

return function(model, x, target, o)
  local fname = "explain.saliency"
  local t
  o, x, t = C.begin(fname, KNOWN, model, x, target, o)
  local g = C.gradient(fname, model, x, t, C.posint(fname, o, "batch_size"))
  if o.abs then g = g:abs() end
  if o.times_input then g = g * x:detach() end
  return g
end
