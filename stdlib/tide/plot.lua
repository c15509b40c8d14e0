-- stdlib/tide/plot.lua: plots drawn by gnuplot (doc/plot.md): line plots, scatter plots,
-- histograms, training curves, heat maps and image grids, and a live plot that redraws during
-- training. Data goes inline to gnuplot; the process side is plot/gnuplot.lua, images image.lua.
local tide = require "tide"
local G = require "tide.plot.gnuplot"
local image = require "tide.plot.image"

local plot = {}
local fail = G.fail

local COMMON = {title = true, xlabel = true, ylabel = true, logx = true, logy = true, file = true,
                width = true, height = true, xrange = true, yrange = true}

-- checks the option keys of o (a table whose array part may hold series)
local function options(fname, o, allowed)
  if type(o) ~= "table" then fail("%s: expected a table of options, got %s", fname, type(o)) end
  for k in pairs(o) do
    if math.type(k) ~= "integer" and not (allowed[k] or COMMON[k]) then
      fail("%s: unknown option '%s'", fname, tostring(k))
    end
  end
  return o
end

local function isfinite(v) return v == v and v ~= math.huge and v ~= -math.huge end

local function shape(t) return t.ndim == 0 and "scalar" or table.concat(t.shape, "x") end

-- a 1-D tensor (any dtype) or a table of numbers as a Lua list of numbers
local function values(fname, what, v)
  if tide.is_tensor(v) then
    if v.ndim ~= 1 then fail("%s: %s must be a 1-D tensor, got shape %s", fname, what, shape(v)) end
    return v:detach():to("float64"):totable()
  end
  if type(v) ~= "table" then
    fail("%s: %s must be a tensor or a table of numbers, got %s", fname, what, type(v))
  end
  for i = 1, #v do
    if type(v[i]) ~= "number" then
      fail("%s: %s[%d] is a %s, expected a number", fname, what, i, type(v[i]))
    end
  end
  return v
end

-- "x y" rows for gnuplot, leaving out points that are not finite (or not positive on a log axis)
local function rows(x, y, logx, logy)
  local out = {}
  for i = 1, #y do
    local a, b = x[i], y[i]
    if isfinite(a) and isfinite(b) and not (logx and a <= 0) and not (logy and b <= 0) then
      out[#out + 1] = G.num(a) .. " " .. G.num(b)
    end
  end
  return out
end

local function checkstyle(fname, what, s)
  if s ~= nil and (type(s) ~= "string" or s:find("[`;@$\n\\]")) then
    fail("%s: %s style must be gnuplot style words such as 'linespoints', got %s",
         fname, what, type(s) == "string" and ("'" .. s .. "'") or type(s))
  end
  return s
end

-- checks that series i is a table with only the fields in known (form: how one is written)
local function check_series(fname, i, s, known, form)
  if type(s) ~= "table" or tide.is_tensor(s) then
    fail("%s: series %d must be a table %s, got %s", fname, i, form, type(s))
  end
  for k in pairs(s) do
    if not known[k] then fail("%s: series %d: unknown field '%s'", fname, i, tostring(k)) end
  end
end

-- {y=, x=, title=, style=} checked and turned into {rows=, title=, style=}
local SERIES = {y = true, x = true, title = true, style = true}
local function series(fname, i, s, o, style)
  local what = "series " .. i
  check_series(fname, i, s, SERIES, "{y=, x=, title=, style=}")
  if s.y == nil then fail("%s: %s has no y", fname, what) end
  local y = values(fname, what .. " y", s.y)
  local x = s.x ~= nil and values(fname, what .. " x", s.x)
  if #y == 0 then fail("%s: %s is empty", fname, what) end
  if x and #x ~= #y then fail("%s: %s: x has %d values, y has %d", fname, what, #x, #y) end
  if not x then
    x = {}
    for j = 1, #y do x[j] = j end
  end
  return {rows = rows(x, y, o.logx, o.logy), title = s.title,
          style = checkstyle(fname, what, s.style) or style}
end

local function range(fname, key, r)
  if r == nil then return nil end
  local function ok(v) return v == nil or (type(v) == "number" and isfinite(v)) end
  if type(r) ~= "table" or not (ok(r[1]) and ok(r[2])) then
    fail("%s: %s must be {lo, hi} (either may be nil), got %s", fname, key, tostring(r))
  end
  return ("set %s [%s:%s]"):format(key, r[1] and G.num(r[1]) or "*", r[2] and G.num(r[2]) or "*")
end

-- matplotlib's colours for the series, in order
local TAB10 = {}
for i, c in ipairs{"1f77b4", "ff7f0e", "2ca02c", "d62728", "9467bd", "8c564b", "e377c2", "7f7f7f",
                   "bcbd22", "17becf"} do
  TAB10[i] = ("set linetype %d lc rgb '#%s'"):format(i, c)
end
TAB10 = table.concat(TAB10, "\n") .. "\nset linetype cycle 10"

-- the commands every chart starts with: labels, log axes, ranges, grid, colours
local function header(fname, o, t)
  local h = {"set encoding utf8"}
  for _, k in ipairs{"title", "xlabel", "ylabel"} do
    if o[k] ~= nil then h[#h + 1] = ("set %s %s"):format(k, G.quote(o[k])) end
  end
  if o.logx then h[#h + 1] = "set logscale x" end
  if o.logy then h[#h + 1] = "set logscale y" end
  h[#h + 1] = range(fname, "xrange", o.xrange)
  h[#h + 1] = range(fname, "yrange", o.yrange)
  if t.mode ~= "text" then h[#h + 1] = "set grid back lt 1 lw 1 lc rgb '#e5e5e5'" end
  h[#h + 1] = TAB10
  h[#h + 1] = "set key top right"
  return h
end

-- Appends to h a datablock per series {rows=, title=, style=, axes=} and returns the plot
-- command, or nil when no series has a point.
local function plotcmd(h, list)
  local plots = {}
  for i, s in ipairs(list) do
    if #s.rows > 0 then
      h[#h + 1] = G.datablock("d" .. i, s.rows)
      plots[#plots + 1] = ("$d%d using 1:2%s with %s %s"):format(i,
        s.axes and (" axes " .. s.axes) or "", s.style,
        s.title and ("title " .. G.quote(s.title)) or "notitle")
    end
  end
  return #plots > 0 and "plot " .. table.concat(plots, ", \\\n  ") or nil
end

local function draw(fname, t, h, list)
  local cmd = plotcmd(h, list)
  if not cmd then fail("%s: no finite values to plot", fname) end
  h[#h + 1] = cmd
  return G.run(fname, t, table.concat(h, "\n"))
end

local function chart(fname, o, style)
  options(fname, o, {})
  local t = G.target(fname, o, {640, 480})
  local list = {}
  for i, s in ipairs(o) do list[i] = series(fname, i, s, o, style) end
  if #list == 0 then fail("%s: no series given (expected {y=...} tables)", fname) end
  return draw(fname, t, header(fname, o, t), list)
end

-- plot.lines{title=, xlabel=, ylabel=, logx=, logy=, xrange=, yrange=, file=, width=, height=,
-- {y=, x=, title=, style=}, ...}: the file path, or the text page drawn in the terminal
function plot.lines(o) return chart("plot.lines", o, "lines lw 1.5") end

-- plot.scatter{...}: as plot.lines, drawn with points
function plot.scatter(o) return chart("plot.scatter", o, "points pt 7 ps 0.6") end

-- counts and bin edges (bins + 1): equal-width bins over [lo, hi] (default the data's finite
-- min and max; the last bin includes hi, numpy's rule). Values outside the range and values
-- that are not finite are not counted.
local function histogram(fname, t, o)
  local v = tide.is_tensor(t) and t:detach():to("float64"):reshape(-1):totable()
                               or values(fname, "data", t)
  local bins = o.bins or 10
  if math.type(bins) ~= "integer" or bins < 1 then
    fail("%s: bins must be a positive integer, got %s", fname, tostring(bins))
  end
  local lo, hi = math.huge, -math.huge
  if o.range then
    local r = o.range
    if type(r) ~= "table" or type(r[1]) ~= "number" or type(r[2]) ~= "number"
       or not (isfinite(r[1]) and isfinite(r[2]) and r[1] <= r[2]) then
      fail("%s: range must be {lo, hi} with lo <= hi", fname)
    end
    lo, hi = r[1], r[2]
  else
    for _, x in ipairs(v) do
      if isfinite(x) then lo, hi = math.min(lo, x), math.max(hi, x) end
    end
    if lo > hi then fail("%s: no finite values to count", fname) end
  end
  if lo == hi then lo, hi = lo - 0.5, hi + 0.5 end
  local counts, edges, w = {}, {}, (hi - lo) / bins
  for i = 1, bins do counts[i] = 0 end
  for i = 0, bins do edges[i + 1] = lo + i * w end
  edges[bins + 1] = hi
  for _, x in ipairs(v) do
    if x >= lo and x <= hi then
      local i = math.min(math.floor((x - lo) / w) + 1, bins)
      counts[i] = counts[i] + 1
    end
  end
  return counts, edges
end

local HIST = {bins = true, range = true}

-- plot.histogram(t, {bins=10, range={lo, hi}}): the counts and edges plot.hist draws
function plot.histogram(t, o)
  return histogram("plot.histogram", t, options("plot.histogram", o or {}, HIST))
end

-- plot.hist(t, {bins=, range=, title=, xlabel=, ylabel=, file=, ...}): a bar per bin of
-- plot.histogram's counts; the file path or the text page
function plot.hist(t, o)
  o = options("plot.hist", o or {}, HIST)
  local counts, edges = histogram("plot.hist", t, o)
  local tg = G.target("plot.hist", o, {640, 480})
  local h = header("plot.hist", o, tg)
  if o.ylabel == nil then h[#h + 1] = "set ylabel 'count'" end
  h[#h + 1] = "set style fill solid 0.6 border -1\nset yrange [0:*]"
  local r = {}
  for i, c in ipairs(counts) do
    local a, b = edges[i], edges[i + 1]
    r[i] = ("%s %d %s"):format(G.num((a + b) / 2), c, G.num(b - a)) -- centre, count, width
  end
  h[#h + 1] = G.datablock("h", r)
  h[#h + 1] = "plot $h using 1:2:3 with boxes notitle"
  return G.run("plot.hist", tg, table.concat(h, "\n"))
end

-- plot.loss(history, {file=, title=, logy=, ...}): tide.fit's history on one axis of epochs:
-- per-step train loss (at fractional epochs), per-epoch train and validation loss, and
-- train and validation accuracy on the right axis. Missing fields are left out.
local CURVES = {
  {"step_loss", "train (step)", "lines lc rgb '#9ecae1'"},
  {"train_loss", "train", "linespoints lw 2 pt 7 ps 0.8 lc rgb '#1f77b4'"},
  {"val_loss", "val", "linespoints lw 2 pt 5 ps 0.8 lc rgb '#ff7f0e'"},
  {"train_accuracy", "train accuracy", "linespoints lw 2 pt 8 ps 0.9 lc rgb '#98df8a'", "x1y2"},
  {"val_accuracy", "val accuracy", "linespoints lw 2 pt 9 ps 0.9 lc rgb '#2ca02c'", "x1y2"},
  {"_cost", "cost", "linespoints lw 2 dt 2 pt 4 ps 0.8 lc rgb '#7f7f7f'", "x1y2"},
}

-- the costs tide.fit records per epoch that plot.loss can draw, cumulated, on the right axis
local COST = {flops = "FLOPs", energy_j = "energy (J)", co2e_g = "CO2e (g)",
              core_seconds = "core-seconds", time = "seconds"}

function plot.loss(history, o)
  o = options("plot.loss", o or {}, {cost = true})
  if type(history) ~= "table" then
    fail("plot.loss: expected a history table (from tide.fit), got %s", type(history))
  end
  local f, epochs = {}, 0
  for _, c in ipairs(CURVES) do
    local k = c[1]
    if history[k] ~= nil then
      f[k] = values("plot.loss", "history." .. k, history[k])
      if k ~= "step_loss" then epochs = math.max(epochs, #f[k]) end
    end
  end
  local ep, list = {}, {}
  for e = 1, epochs do ep[e] = e end
  local cost = o.cost == true and "flops" or o.cost
  if cost ~= nil and not COST[cost] then
    fail("plot.loss: cost must be true or one of flops, energy_j, co2e_g, core_seconds, time; " ..
         "got %s", tostring(cost))
  end
  if cost then -- the right axis is the cost's: accuracy curves are left out
    f.train_accuracy, f.val_accuracy = nil, nil
    if history[cost] == nil then
      fail("plot.loss: history has no %s (a tide.fit history records it)", cost)
    end
    local v, sum = values("plot.loss", "history." .. cost, history[cost]), {}
    for e = 1, #v do sum[e] = (sum[e - 1] or 0) + v[e] end
    f._cost, epochs = sum, math.max(epochs, #sum)
  end
  for e = #ep + 1, epochs do ep[e] = e end
  for _, c in ipairs(CURVES) do
    local y, x = f[c[1]], ep
    if y and #y > 0 then
      if c[1] == "step_loss" then -- step j of s ends at j/s of the run
        x = {}
        for j = 1, #y do x[j] = epochs > 0 and j * epochs / #y or j end
      end
      list[#list + 1] = {rows = rows(x, y, false, o.logy and not c[4]), style = c[3],
        title = c[1] == "_cost" and "cumulative " .. COST[cost] or c[2], axes = c[4]}
    end
  end
  if #list == 0 then
    fail("plot.loss: history has no train_loss, step_loss, val_loss or accuracy")
  end
  local t = G.target("plot.loss", o, {640, 480})
  local h = header("plot.loss", o, t)
  if o.xlabel == nil then h[#h + 1] = epochs > 0 and "set xlabel 'epoch'" or "set xlabel 'step'" end
  if o.ylabel == nil then h[#h + 1] = "set ylabel 'loss'" end
  if f.val_accuracy or f.train_accuracy then -- loss falls, accuracy rises: the middle is free
    h[#h + 1] = "set y2label 'accuracy'\nset y2tics\nset ytics nomirror\nset key center right"
  elseif cost then
    h[#h + 1] = ("set y2label %s\nset y2tics\nset ytics nomirror\nset y2range [0:*]\n" ..
                 "set key center right"):format(G.quote("cumulative " .. COST[cost]))
  end
  if o.xrange == nil and epochs > 0 then h[#h + 1] = ("set xrange [0:%d]"):format(epochs) end
  return draw("plot.loss", t, h, list)
end

-- plot.bars{labels = {...}, {y=, lo=, hi=, title=}, ..., title=, ylabel=, file=, ...}: clustered
-- bars, one cluster per label and one bar per series, with error bars where a series has lo, hi
local BARS = {y = true, lo = true, hi = true, title = true}
function plot.bars(o)
  local fname = "plot.bars"
  options(fname, o, {labels = true})
  local labels = o.labels
  if type(labels) ~= "table" or #labels == 0 then
    fail("%s: labels must be a list of names, one per cluster", fname)
  end
  if #o == 0 then fail("%s: no series given (expected {y=...} tables)", fname) end
  local errors = false
  for i, s in ipairs(o) do
    check_series(fname, i, s, BARS, "{y=, lo=, hi=, title=}")
    errors = errors or s.lo ~= nil or s.hi ~= nil
  end
  local t = G.target(fname, o, {640, 480})
  local h = header(fname, o, t)
  h[#h + 1] = "set style data histogram\nset style fill solid 0.7 border -1\nset xtics nomirror"
  h[#h + 1] = errors and "set style histogram errorbars gap 1 lw 1" or
              "set style histogram clustered gap 1"
  if o.yrange == nil then h[#h + 1] = "set yrange [0:*]" end
  local plots = {}
  for i, s in ipairs(o) do
    local what = "series " .. i
    local y = values(fname, what .. " y", s.y)
    local lo = s.lo ~= nil and values(fname, what .. " lo", s.lo) or y
    local hi = s.hi ~= nil and values(fname, what .. " hi", s.hi) or y
    if #y ~= #labels or #lo ~= #y or #hi ~= #y then
      fail("%s: %s has %d values (lo %d, hi %d) for %d labels", fname, what, #y, #lo, #hi,
           #labels)
    end
    local r = {}
    for j = 1, #y do -- a value that is not finite draws no bar
      local function v(x) return isfinite(x) and G.num(x) or "NaN" end
      r[j] = ('"%s" %s %s %s'):format(tostring(labels[j]):gsub('[%c"\\]', ""), v(y[j]), v(lo[j]),
                                      v(hi[j]))
    end
    h[#h + 1] = G.datablock("b" .. i, r)
    plots[i] = ("$b%d using %s%s %s"):format(i, errors and "2:3:4" or "2",
      i == 1 and ":xtic(1)" or "", s.title and ("title " .. G.quote(s.title)) or "notitle")
  end
  h[#h + 1] = "plot " .. table.concat(plots, ", \\\n  ")
  return G.run(fname, t, table.concat(h, "\n"))
end

plot.make_grid = image.make_grid
plot.attribution = require("tide.plot.attribution").plot

-- plot.image(t, {file=, title=, palette=, range=, nrow=, padding=, pad_value=, width=, height=}):
-- a 2-D tensor as a heat map; N x H x W, N x 1 x H x W or N x 3 x H x W as a grid of images
function plot.image(t, o)
  o = options("plot.image", o or {}, image.OPTIONS)
  local tg = G.target("plot.image", o, image.size(t, o), true)
  return G.run("plot.image", tg, image.script(t, o, header("plot.image", o, tg)))
end

---- plot.live ---------------------------------------------------------------------------------

local Live = {}
Live.__index = Live
Live.__name = "tide.plot.Live"

-- plot.live{title=, xlabel=, ylabel=, logy=, file=, width=, height=, interval=1}: one gnuplot
-- kept open; :add(series, x, y) appends a point and redraws at most every interval seconds,
-- :close() draws the last frame, ends gnuplot and returns the file path (or nil)
function plot.live(o)
  o = options("plot.live", o or {}, {interval = true})
  local iv = o.interval
  if iv ~= nil and (type(iv) ~= "number" or iv < 0 or iv ~= iv) then
    fail("plot.live: interval must be a number of seconds >= 0, got %s", tostring(o.interval))
  end
  local t = G.target("plot.live", o, {640, 480})
  local self = setmetatable({o = o, t = t, names = {}, data = {}, last = -math.huge,
                             interval = o.interval or 1}, Live)
  self.proc = G.spawn(t)
  return self
end

function Live:draw()
  local h = header("plot.live", self.o, self.t)
  if not self.started then table.insert(h, 1, self.t.term) end
  if self.t.mode == "text" and tide._isatty(1) then
    h[#h + 1] = "set print '-'\nprint \"\\033[H\\033[2J\"" -- redraw in place
  end
  local list = {}
  for i, name in ipairs(self.names) do
    local d = self.data[name]
    list[i] = {rows = rows(d.x, d.y, self.o.logx, self.o.logy), title = name,
               style = "lines lw 1.5"}
  end
  local cmd = plotcmd(h, list)
  if not cmd then return end
  if self.t.mode == "file" then h[#h + 1] = "set output " .. G.quote(self.t.path) end
  h[#h + 1] = cmd
  if self.t.mode == "file" then h[#h + 1] = "unset output" end -- the file is whole after each frame
  self.proc:send("plot.live", table.concat(h, "\n"))
  self.started, self.last = true, tide._clock()
end

local function number(v, what)
  if tide.is_tensor(v) and v:numel() == 1 then return v:item() end
  if type(v) ~= "number" then
    fail("plot.live: add expects %s to be a number, got %s", what, type(v))
  end
  return v
end

-- lp:add(series, x, y), or lp:add(series, y) with x counting the series' points
function Live:add(name, x, y)
  if not self.proc then fail("plot.live: add on a closed live plot") end
  if type(name) ~= "string" then
    fail("plot.live: add expects a series name string first, got %s", type(name))
  end
  local d = self.data[name]
  if not d then
    d = {x = {}, y = {}}
    self.data[name] = d
    self.names[#self.names + 1] = name
  end
  if y == nil then x, y = #d.y + 1, x end
  d.x[#d.x + 1], d.y[#d.y + 1] = number(x, "x"), number(y, "y")
  if tide._clock() - self.last >= self.interval then self:draw() end
  return self
end

function Live:close()
  if not self.proc then return self.t.path end
  local ok, err = pcall(self.draw, self)
  local e = self.proc:close()
  self.proc = nil
  if not ok then error(err, 0) end
  if e then fail("plot.live: gnuplot: %s", e) end
  return self.t.path
end

Live.__close = function(self) if self.proc then pcall(Live.close, self) end end
Live.__gc = Live.__close

return plot
