-- stdlib/tide/explain/perturb.lua: attributions by removing parts of the input, shared by
-- occlusion and feature_ablation. masks is P x D (D = elements of one example), 1 where
-- perturbation p replaces x by the baseline. Every (perturbation, example) pair is one row of a
-- batched model call; element e gets the mean score drop over the perturbations covering it:
--   attr[b][e] = sum_p (f(x_b) - f(x_b with mask p removed)) * M[p][e] / sum_p M[p][e]
local tide = require "tide"
local C = require "tide.explain.common"

local P = {}

function P.ablate(fname, model, x, target, masks, baseline, batch_size)
  local n, shape = x:size(1), x.shape
  local d = x:numel() // n
  local xf, bf = x:detach():reshape(1, n, d), baseline:reshape(1, n, d)
  local fx = C.scores(fname, model, x:detach(), target)
  local np = masks:size(1)
  local m = masks:to(x.dtype)
  local per = math.max(1, (batch_size or C.ROWS) // n) -- perturbations per model call
  local drops = {}
  for p = 1, np, per do
    local k = math.min(per, np - p + 1)
    local mk = m:narrow(1, p, k):view(k, 1, d)
    local rows = (xf * (1 - mk) + bf * mk):view(k * n, table.unpack(shape, 2))
    local s = C.scores(fname, model, rows, C.tile(target, k)):view(k, n)
    drops[#drops + 1] = fx:view(1, n) - s
  end
  local drop = tide.cat(drops, 1):to("float64")                         -- P x N
  local count = masks:sum(1):clamp(1, math.huge)                        -- D
  local attr = drop:t():matmul(masks:to("float64")) / count             -- N x D
  return attr:to(x.dtype):view(table.unpack(shape))
end

return P
