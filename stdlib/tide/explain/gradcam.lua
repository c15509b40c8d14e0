-- stdlib/tide/explain/gradcam.lua: Grad-CAM (Selvaraju et al. 2017). A forward hook on `layer`
-- keeps its activation A (N x K x h x w); the gradient of the target score with respect to A,
-- averaged over h and w, weighs A's K maps: cam = relu(sum_k mean_hw(dS/dA_k) * A_k), then
-- bilinearly upsampled to x's spatial size (N x 1 x H x W).
local tide = require "tide"
local C = require "tide.explain.common"

local KNOWN = {layer = true, relu = true, upsample = true}

-- the out x n matrix of bilinear interpolation from n to out points (PyTorch's interpolate with
-- align_corners = false: source position (i + 0.5) * n / out - 0.5, clamped at 0)
local function bilinear(out, n)
  local m = tide.zeros(out, n, {dtype = "float64"})
  for i = 1, out do
    local src = math.max((i - 0.5) * n / out - 0.5, 0)
    local i0 = math.floor(src)
    local i1, l = math.min(i0 + 1, n - 1), src - i0
    m[{i, i0 + 1}] = m[{i, i0 + 1}] + (1 - l)
    m[{i, i1 + 1}] = m[{i, i1 + 1}] + l
  end
  return m
end

return function(model, x, target, o)
  local fname = "explain.gradcam"
  local t
  o, x, t = C.begin(fname, KNOWN, model, x, target, o)
  local layer = o.layer
  if type(layer) ~= "table" or type(layer.register_forward_hook) ~= "function" then
    error(fname .. ": option layer must be a module of the model (e.g. model[1]), got "
          .. type(layer), 2)
  end
  local act
  local h = layer:register_forward_hook(function(_, _, out) act = out end)
  local ok, out = pcall(model, x:detach())
  h:remove()
  if not ok then error(out, 0) end
  local n = x:size(1)
  local score = C.pick(fname, out, t, n, true):sum()
  if not tide.is_tensor(act) then
    error(fname .. ": the layer did not run in the model's forward (is it part of the model?)", 2)
  end
  if act.ndim ~= 4 then
    error(fname .. ": the layer's output must be N x K x h x w maps, got " .. C.shape(act), 2)
  end
  if not act.requires_grad then
    error(fname .. ": the layer's output does not require grad (frozen model under no_grad?)", 2)
  end
  local g = tide.autograd.grad(score, {act}, {allow_unused = true})[1]
  if not g then error(fname .. ": the target score does not depend on the layer's output", 2) end
  local weights = g:mean(4, true):mean(3, true)               -- N x K x 1 x 1
  local cam = (weights * act:detach()):sum(2)                 -- N x h x w
  if o.relu ~= false then cam = cam:relu() end
  if o.upsample == false or x.ndim < 4 then return cam:unsqueeze(2) end
  local hh, ww = x:size(x.ndim - 1), x:size(x.ndim)
  local ry = bilinear(hh, cam:size(2)):to(cam.dtype)
  local rx = bilinear(ww, cam:size(3)):to(cam.dtype)
  return ry:matmul(cam):matmul(rx:t()):unsqueeze(2)           -- N x 1 x H x W
end
