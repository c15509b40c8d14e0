-- stdlib/tide/plot/attribution.lua: plot.attribution, images beside (or under) their attribution
-- heat maps. Both become RGB panels here (a diverging map centred on zero: blue below, white at
-- zero, red above, scaled by each example's largest |attribution|), and plot.image draws the
-- panels as one grid, so the gnuplot side is the image grid's.
local tide = require "tide"
local G = require "tide.plot.gnuplot"

local KNOWN = {path = true, file = true, overlay = true, alpha = true, nrow = true, title = true,
               width = true, height = true, padding = true, scale = true}

local function shape(t) return tide.is_tensor(t) and table.concat(t.shape, "x") or type(t) end

-- t as N x C x H x W float64 (H x W and C x H x W are one example)
local function batch(fname, what, t)
  if not tide.is_tensor(t) or t.ndim < 2 or t.ndim > 4 then
    G.fail("%s: expected %s as H x W, C x H x W or N x C x H x W, got %s", fname, what, shape(t))
  end
  local x = t:detach():to("float64")
  if x.ndim == 2 then x = x:view(1, 1, x:size(1), x:size(2)) end
  if x.ndim == 3 then x = x:unsqueeze(1) end
  return x
end

-- v in [-1, 1] (N x 1 x H x W) as RGB: white at 0, red towards 1, blue towards -1
local function diverging(v)
  local pos, neg = v:clamp(0, 1), (-v):clamp(0, 1)
  return tide.cat({1 - neg, 1 - v:abs(), 1 - pos}, 2)
end

local A = {}

-- the RGB panels (P x 3 x H x W in [0, 1]) and panels per example, for x, attr and options o
function A.panels(x, attr, o)
  local fname = "plot.attribution"
  if type(o) ~= "table" then G.fail("%s: options must be a table, got %s", fname, type(o)) end
  for k in pairs(o) do
    if not KNOWN[k] then G.fail("%s: unknown option '%s'", fname, tostring(k)) end
  end
  local img = batch(fname, "x", x)
  local n, h, w = img:size(1), img:size(3), img:size(4)
  if img:size(2) ~= 1 and img:size(2) ~= 3 then
    G.fail("%s: x must have 1 or 3 channels, got shape %s", fname, shape(x))
  end
  local list = tide.is_tensor(attr) and {attr} or attr
  if type(list) ~= "table" or #list == 0 then
    G.fail("%s: expected attributions as a tensor or a list of tensors, got %s", fname, type(attr))
  end
  local scale = o.scale or "example"
  if scale ~= "example" and scale ~= "batch" then
    G.fail("%s: scale must be \"example\" or \"batch\", got %s", fname, tostring(scale))
  end
  local alpha = o.alpha or 0.6
  if type(alpha) ~= "number" or alpha < 0 or alpha > 1 then
    G.fail("%s: alpha must be a number in [0, 1], got %s", fname, tostring(alpha))
  end
  local flat = img:reshape(n, -1)                              -- each image to [0, 1]
  local lo, hi = flat:min(2):view(n, 1, 1, 1), flat:max(2):view(n, 1, 1, 1)
  img = (img - lo) / (hi - lo):clamp(1e-30, math.huge)
  if img:size(2) == 1 then img = img:expand(n, 3, h, w) end
  local cols = o.overlay and {} or {img}
  for i, t in ipairs(list) do
    local a = batch(fname, "attributions", t)
    if a:size(1) ~= n or a:size(3) ~= h or a:size(4) ~= w then
      G.fail("%s: attributions%s of shape %s do not match x of shape %s (same N, H and W)",
             fname, #list > 1 and (" " .. i) or "", shape(t), shape(x))
    end
    local heat = a:sum(2, true)                                -- N x 1 x H x W
    local m = heat:abs():reshape(n, -1):max(2):view(n, 1, 1, 1)
    if scale == "batch" then m = m:max() end
    local v = heat / m:clamp(1e-30, math.huge)
    local k = v:abs() * alpha
    cols[#cols + 1] = o.overlay and img * (1 - k) + diverging(v) * k or diverging(v)
  end
  return tide.stack(cols, 2):view(n * #cols, 3, h, w), #cols, n
end

-- plot.attribution(x, attributions, {path=, overlay=false, alpha=0.6, nrow=, title=,
-- scale="example"}): a grid, one entry per example: the image and its heat map side by side (a
-- heat map per tensor when attributions is a list), or heat maps blended over the image
-- (overlay = true)
function A.plot(x, attr, o)
  local fname = "plot.attribution"
  o = o or {}
  local panels, per, n = A.panels(x, attr, o)
  local nrow = o.nrow or math.max(1, math.min(n, 8 // per))
  if math.type(nrow) ~= "integer" or nrow < 1 then
    G.fail("%s: nrow must be a positive integer, got %s", fname, tostring(nrow))
  end
  -- a file gets whole screen pixels per image pixel, about 1080 on its longer side: a row of
  -- panels is wide and short, and plot.image's 720 would leave no room for the title
  local pad, h, w = o.padding or 2, panels:size(3), panels:size(4)
  local gw, gh = nrow * per * (w + pad) + pad, (n + nrow - 1) // nrow * (h + pad) + pad
  local s = math.max(1, 1080 // math.max(gw, gh))
  local file = o.path or o.file
  return require("tide.plot").image(panels, {file = file, title = o.title,
    nrow = nrow * per, padding = pad, pad_value = 1,
    width = o.width or (file and gw * s or nil),
    height = o.height or (file and gh * s + (o.title and 36 or 0) or nil)})
end

return A
