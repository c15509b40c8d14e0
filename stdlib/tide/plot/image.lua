-- stdlib/tide/plot/image.lua: plot.image's half: make_grid (torchvision's layout: images row
-- by row, nrow per row, padding between), palettes, and the gnuplot script for a heat map
-- (H x W) or an image grid (N x H x W, N x 1 x H x W, N x 3 x H x W).
local tide = require "tide"
local G = require "tide.plot.gnuplot"

local I = {}
local fail = G.fail

I.OPTIONS = {palette = true, range = true, nrow = true, padding = true, pad_value = true}

local PALETTES = {
  gray = "set palette gray",
  viridis = "set palette defined (0 '#440154', 0.25 '#3b528b', 0.5 '#21918c', 0.75 '#5ec962', "
            .. "1 '#fde725')",
  hot = "set palette defined (0 'black', 0.4 'red', 0.8 'yellow', 1 'white')",
  coolwarm = "set palette defined (0 '#3b4cc0', 0.5 '#dddddd', 1 '#b40426')",
}

local function shape(t) return t.ndim == 0 and "scalar" or table.concat(t.shape, "x") end

-- images as N x C x H x W (C = 1 or 3), or an error naming fname
local function batch(fname, t)
  if not tide.is_tensor(t) or (t.ndim ~= 3 and t.ndim ~= 4) then
    fail("%s: expected N x H x W or N x C x H x W images (C = 1 or 3), got %s",
         fname, tide.is_tensor(t) and ("shape " .. shape(t)) or type(t))
  end
  local x = t.ndim == 3 and t:unsqueeze(2) or t
  if x:size(2) ~= 1 and x:size(2) ~= 3 then
    fail("%s: expected 1 or 3 channels (N x C x H x W), got shape %s", fname, shape(t))
  end
  if x:numel() == 0 then fail("%s: no images (shape %s)", fname, shape(t)) end
  return x
end

local function int_opt(fname, o, k, default, min)
  local v = o[k]
  if v == nil then return default end
  if math.type(v) ~= "integer" or v < min then
    fail("%s: %s must be an integer >= %d, got %s", fname, k, min, tostring(v))
  end
  return v
end

-- columns, rows, padding and the grid's height and width for x (N x C x H x W)
local function layout(fname, x, o)
  local n, h, w = x:size(1), x:size(3), x:size(4)
  local p = int_opt(fname, o, "padding", 2, 0)
  local cols = math.min(int_opt(fname, o, "nrow", 8, 1), n)
  local rows = (n + cols - 1) // cols
  return cols, rows, p, rows * (h + p) + p, cols * (w + p) + p
end

local function grid(fname, t, o)
  local x = batch(fname, t):detach()
  local cols, _, p, gh, gw = layout(fname, x, o)
  local pad = o.pad_value or 0
  if type(pad) ~= "number" then fail("%s: pad_value must be a number, got %s", fname, type(pad)) end
  local h, w = x:size(3), x:size(4)
  local dtype = x.dtype == "bool" and "float32" or x.dtype
  local g = tide.full({x:size(2), gh, gw}, pad, {dtype = dtype})
  for k = 0, x:size(1) - 1 do
    local r, c = k // cols, k % cols
    local cell = g:narrow(2, r * (h + p) + p + 1, h):narrow(3, c * (w + p) + p + 1, w)
    cell:copy_(x:select(1, k + 1))
  end
  return g
end

-- plot.make_grid(t, {nrow=8, padding=2, pad_value=0}): the images of t (N x H x W or
-- N x C x H x W, C = 1 or 3) in one C x H' x W' tensor, nrow images per row, row by row
function I.make_grid(t, o)
  o = o or {}
  if type(o) ~= "table" then fail("plot.make_grid: options must be a table, got %s", type(o)) end
  for k in pairs(o) do
    if k ~= "nrow" and k ~= "padding" and k ~= "pad_value" then
      fail("plot.make_grid: unknown option '%s'", tostring(k))
    end
  end
  return grid("plot.make_grid", t, o)
end

-- the default file size in pixels: a heat map 640x480; a grid at a whole number of pixels per
-- image pixel, about 720 wide or high
function I.size(t, o)
  if not tide.is_tensor(t) or t.ndim < 3 then return {640, 480} end
  local ok, x = pcall(batch, "plot.image", t)
  if not ok then return {640, 480} end
  local _, _, _, gh, gw = layout("plot.image", x, o)
  local s = math.max(1, 720 // math.max(gh, gw))
  return {gw * s, gh * s + (o.title and 36 or 0)}
end

local function num(v) return v == v and v ~= math.huge and v ~= -math.huge and G.num(v) or "NaN" end

local function matrix(m)
  local r = {}
  for i, row in ipairs(m) do
    for j, v in ipairs(row) do row[j] = num(v) end
    r[i] = table.concat(row, " ")
  end
  return r
end

local function palette(fname, o, default)
  local name = o.palette or default
  if not PALETTES[name] then
    local known = {}
    for k in pairs(PALETTES) do known[#known + 1] = k end
    table.sort(known)
    fail("%s: unknown palette '%s' (expected %s)", fname, tostring(name), table.concat(known, ", "))
  end
  return PALETTES[name]
end

local function cbrange(fname, o)
  local r = o.range
  if r == nil then return nil end
  if type(r) ~= "table" or type(r[1]) ~= "number" or type(r[2]) ~= "number"
     or r[1] >= r[2] or r[1] ~= r[1] or r[2] ~= r[2] then
    fail("%s: range must be {lo, hi} with lo < hi (the values at the palette's ends)", fname)
  end
  return ("set cbrange [%s:%s]"):format(G.num(r[1]), G.num(r[2]))
end

-- The gnuplot commands after h (plot.lua's header) that draw t.
function I.script(t, o, h)
  local fname = "plot.image"
  if tide.is_tensor(t) and t.ndim == 2 then
    local rows, cols = t:size(1), t:size(2)
    if rows == 0 or cols == 0 then fail("%s: empty image (shape %s)", fname, shape(t)) end
    h[#h + 1] = palette(fname, o, "viridis")
    h[#h + 1] = cbrange(fname, o)
    h[#h + 1] = ("set xrange [0.5:%d.5]\nset yrange [%d.5:0.5]"):format(cols, rows) -- row 1 on top
    if rows <= 4 * cols and cols <= 4 * rows then h[#h + 1] = "set size ratio -1" end
    h[#h + 1] = "set tics out nomirror\nunset grid"
    h[#h + 1] = G.datablock("img", matrix(t:detach():to("float64"):totable()))
    h[#h + 1] = "plot $img matrix using ($1+1):($2+1):3 with image notitle"
    return table.concat(h, "\n")
  end
  if not tide.is_tensor(t) or (t.ndim ~= 3 and t.ndim ~= 4) then
    fail("%s: expected a 2-D tensor (heat map) or N x H x W / N x C x H x W images, got %s",
         fname, tide.is_tensor(t) and ("shape " .. shape(t)) or type(t))
  end
  local g = grid(fname, t, o)
  local gh, gw = g:size(2), g:size(3)
  h[#h + 1] = "unset border\nunset tics\nunset grid\nunset colorbox\nset size ratio -1"
  h[#h + 1] = ("set xrange [-0.5:%d.5]\nset yrange [%d.5:-0.5]"):format(gw - 1, gh - 1)
  h[#h + 1] = "set lmargin at screen 0\nset rmargin at screen 1\nset bmargin at screen 0"
  h[#h + 1] = o.title and "set tmargin 2" or "set tmargin at screen 1"
  if g:size(1) == 1 then
    h[#h + 1] = palette(fname, o, "gray")
    h[#h + 1] = cbrange(fname, o)
    h[#h + 1] = G.datablock("img", matrix(g:select(1, 1):to("float64"):totable()))
    h[#h + 1] = "plot $img matrix with image notitle"
  else
    local max = g.dtype == "uint8" and 255 or 1
    local c = g:to("float64"):clamp(0, max):totable()
    local r = {}
    for y = 1, gh do
      for x = 1, gw do
        r[#r + 1] = ("%d %d %s %s %s"):format(x - 1, y - 1, num(c[1][y][x]), num(c[2][y][x]),
                                              num(c[3][y][x]))
      end
    end
    h[#h + 1] = ("set rgbmax %d"):format(max)
    h[#h + 1] = G.datablock("img", r)
    h[#h + 1] = "plot $img using 1:2:3:4:5 with rgbimage notitle"
  end
  return table.concat(h, "\n")
end

return I
