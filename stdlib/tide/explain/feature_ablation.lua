-- stdlib/tide/explain/feature_ablation.lua: feature ablation for tabular inputs: each feature
-- (or group of elements with the same id in `features`) is replaced by the baseline in turn,
-- and its attribution is the drop of the target score; all ablations in batched model calls.
local C = require "tide.explain.common"
local P = require "tide.explain.perturb"

local KNOWN = {baseline = true, features = true, batch_size = true}

return function(model, x, target, o)
  local fname = "explain.feature_ablation"
  local t
  o, x, t = C.begin(fname, KNOWN, model, x, target, o)
  local base = C.baseline(fname, x:detach(), o.baseline or 0)
  return P.ablate(fname, model, x, t, C.groups(fname, x, o.features), base,
                  C.posint(fname, o, "batch_size"))
end
