-- stdlib/tide/explain/occlusion.lua: Occlusion (Zeiler and Fergus 2014): a window slides over
-- each example with a stride; each element's attribution is the mean drop of the target score
-- when the windows covering it are replaced by the baseline (perturb.lua does the batching).
local tide = require "tide"
local C = require "tide.explain.common"
local P = require "tide.explain.perturb"

local KNOWN = {window = true, stride = true, baseline = true, batch_size = true}

-- a number or a list for the trailing dims of one example; missing leading dims span the whole
-- dim (a window of {4, 4} on 3 x 28 x 28 images covers all 3 channels)
local function sizes(fname, key, v, dims, default)
  if v == nil then v = default end
  if math.type(v) == "integer" then v = #dims >= 2 and {v, v} or {v} end
  if type(v) ~= "table" or #v == 0 or #v > #dims then
    error(("%s: %s must be a positive integer or a list of at most %d (one example's dims %s)")
          :format(fname, key, #dims, table.concat(dims, "x")), 3)
  end
  local r = {}
  for i = 1, #dims do
    local j = i - (#dims - #v)
    local s = j >= 1 and v[j] or (key == "window" and dims[i] or 1)
    if math.type(s) ~= "integer" or s < 1 or (key == "window" and s > dims[i]) then
      error(("%s: %s %s does not fit one example's dims %s (positive integers, a window no "
             .. "larger than the dim)"):format(fname, key, table.concat(v, "x"),
             table.concat(dims, "x")), 3)
    end
    r[i] = s
  end
  return r
end

-- one mask per window position, row-major over the positions
local function windows(dims, win, stride)
  local counts, total = {}, 1
  for i = 1, #dims do
    counts[i] = (dims[i] - win[i]) // stride[i] + 1
    total = total * counts[i]
  end
  local m = tide.zeros(total, table.unpack(dims))
  for p = 0, total - 1 do
    local cell, rest = m[p + 1], p
    for i = #dims, 1, -1 do
      local pos = rest % counts[i]
      rest = rest // counts[i]
      cell = cell:narrow(i, pos * stride[i] + 1, win[i])
    end
    cell:fill_(1)
  end
  return m:view(total, -1)
end

return function(model, x, target, o)
  local fname = "explain.occlusion"
  local t
  o, x, t = C.begin(fname, KNOWN, model, x, target, o)
  local dims = {table.unpack(x.shape, 2)}
  if o.window == nil then error(fname .. ": the window option is required ({h, w} or a number)", 2) end
  local win = sizes(fname, "window", o.window, dims)
  local stride = sizes(fname, "stride", o.stride, dims, 1)
  local base = C.baseline(fname, x:detach(), o.baseline or 0)
  return P.ablate(fname, model, x, t, windows(dims, win, stride), base,
                  C.posint(fname, o, "batch_size"))
end
