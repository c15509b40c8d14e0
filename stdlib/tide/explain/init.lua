-- stdlib/tide/explain/init.lua: tide.explain, attribution methods for a batch and its target
-- classes (doc/explain.md). Each method is its own file, loaded on first use.
local FILES = {"saliency", "integrated_gradients", "smoothgrad", "occlusion", "feature_ablation",
               "gradcam", "kernel_shap", "lime"}
local known = {}
for _, f in ipairs(FILES) do known[f] = "tide.explain." .. f end

return setmetatable({}, {__index = function(t, k)
  if not known[k] then return nil end
  local fn = require(known[k])
  rawset(t, k, fn)
  return fn
end})
