-- stdlib/tide/explain/smoothgrad.lua: SmoothGrad (Smilkov et al. 2017): the gradient averaged
-- over `samples` copies of x with Gaussian noise, all copies in one batched forward and backward.
local tide = require "tide"
local C = require "tide.explain.common"

local KNOWN = {samples = true, stdev = true, times_input = true, batch_size = true, seed = true}

return function(model, x, target, o)
  local fname = "explain.smoothgrad"
  local t
  o, x, t = C.begin(fname, KNOWN, model, x, target, o)
  local k = C.posint(fname, o, "samples", 25)
  local n, xs = x:size(1), x:detach()
  local sd = o.stdev
  if sd ~= nil and (type(sd) ~= "number" or sd < 0) then
    error(fname .. ": stdev must be a number >= 0, got " .. tostring(sd), 2)
  end
  local shape = {n}
  for i = 2, x.ndim do shape[i] = 1 end
  if sd == nil then -- 15% of each example's value range, the paper's noise level
    local flat = xs:reshape(n, -1)
    sd = ((flat:max(2) - flat:min(2)) * 0.15):view(shape)
  end
  local noisy = C.seeded(o.seed, function()
    local rep = xs:unsqueeze(1):expand(k, table.unpack(x.shape))
    return (rep + tide.randn(k, table.unpack(x.shape)):to(x.dtype) * sd)
           :reshape(k * n, table.unpack(x.shape, 2))
  end)
  local g = C.gradient(fname, model, noisy, C.tile(t, k), C.posint(fname, o, "batch_size"))
  g = g:view(k, table.unpack(x.shape)):mean(1)
  if o.times_input then g = g * xs end
  return g
end
