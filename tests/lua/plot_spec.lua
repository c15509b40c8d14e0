-- tests/lua/plot_spec.lua: tide.plot (doc/plot.md) drawing with the gnuplot installed by
-- scripts/deps.txt: files of the requested terminal and size, text pages that show the data,
-- the numbers plot computes itself (histogram counts, grid layout), live plots, and errors.
local tide = require "tide"
local plot = require "tide.plot"
local G = require "tide.plot.gnuplot"
local H = require "helpers"

local BUILD = os.getenv("TIDE_BUILD") or "build"
local TIDE = BUILD .. "/tide"

local q = H.q

local function tmp(ext)
  local n = os.tmpname()
  os.remove(n)
  return n .. ext
end

local slurp = H.slurp

-- runs f(...) with io.output() going to /dev/null (the pages plot writes to the terminal)
local function quiet(f, ...)
  local null = assert(io.open("/dev/null", "w"))
  io.output(null)
  local r = table.pack(pcall(f, ...))
  io.output(io.stdout)
  null:close()
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

-- a PNG's width and height from its IHDR chunk (bytes 17-24, big-endian)
local function png_size(s)
  assert(s:sub(1, 8) == "\137PNG\r\n\26\n", "not a PNG")
  assert(s:sub(13, 16) == "IHDR")
  local w, h = (">I4I4"):unpack(s, 17)
  return w, h
end

-- '*' marks of a text page by region of the plot frame: ll, ul, lr, ur count the marks in the
-- corner thirds (lower-left, upper-left, ...), all counts every mark inside the frame
local function marks(page, ch)
  local rows = {}
  for l in (page .. "\n"):gmatch("(.-)\n") do rows[#rows + 1] = l end
  local top, bottom
  for i, l in ipairs(rows) do
    if l:find("+-----", 1, true) then top, bottom = top or i, i end
  end
  assert(top and bottom > top, "no plot frame in:\n" .. page)
  local left = rows[top]:find("+", 1, true)
  local right = #rows[top]:match("^(.*%+)")
  local m = {ll = 0, ul = 0, lr = 0, ur = 0, all = 0}
  local h, w = bottom - top, right - left
  for i = top + 1, bottom - 1 do
    for j = left + 1, right - 1 do
      if rows[i]:sub(j, j) == (ch or "*") then
        m.all = m.all + 1
        local up, down = i < top + h / 3, i > bottom - h / 3
        local l, r = j < left + w / 3, j > right - w / 3
        if down and l then m.ll = m.ll + 1 end
        if up and l then m.ul = m.ul + 1 end
        if down and r then m.lr = m.lr + 1 end
        if up and r then m.ur = m.ur + 1 end
      end
    end
  end
  return m
end

-- runs a shell command; returns its stdout and stderr together, and the exit status
local run = H.run

-- this process's descendants as "pid stat comm" lines (the ps pipeline itself left out)
local function descendants()
  local me = tonumber(slurp("/proc/self/stat"):match("^%d+"))
  -- LD_PRELOAD cleared: ps hangs with make check's sanitizer runtime preloaded
  local p = io.popen("LD_PRELOAD= ps -e -o pid=,ppid=,stat=,comm=")
  local procs = {}
  for l in p:lines() do
    local pid, ppid, stat, comm = l:match("^%s*(%d+)%s+(%d+)%s+(%S+)%s+(.-)%s*$")
    procs[#procs + 1] = {pid = tonumber(pid), ppid = tonumber(ppid), stat = stat, comm = comm}
  end
  p:close()
  local mine, found, out = {[me] = true}, true, {}
  while found do
    found = false
    for _, r in ipairs(procs) do
      if mine[r.ppid] and not mine[r.pid] then mine[r.pid], found = true, true end
    end
  end
  for _, r in ipairs(procs) do
    if r.pid ~= me and mine[r.pid] and r.comm ~= "ps" and r.comm ~= "sh" then
      out[#out + 1] = ("%d %s %s"):format(r.pid, r.stat, r.comm)
    end
  end
  return out
end

local rising = {}
for i = 1, 30 do rising[i] = i end

describe("plot files", function()
  it("writes a PNG of the requested size, complete when lines returns", function()
    local path = tmp(".png")
    local x = tide.linspace(0, 6, 100)
    assert.equal(path, plot.lines{file = path, width = 400, height = 300, title = "sin",
      {x = x, y = x:sin(), title = "sin"}, {x = x, y = x:cos(), title = "cos", style = "linespoints"}})
    local s = slurp(path)
    os.remove(path)
    assert.same({400, 300}, {png_size(s)})
    assert.equal("IEND", s:sub(-8, -5))
  end)

  it("writes SVG and PDF by extension", function()
    local svg, pdf = tmp(".svg"), tmp(".PDF")
    plot.lines{file = svg, width = 500, height = 200, {y = rising}}
    plot.scatter{file = pdf, {x = rising, y = rising}}
    local s, p = slurp(svg), slurp(pdf)
    os.remove(svg)
    os.remove(pdf)
    assert.truthy(s:find("<svg", 1, true))
    assert.truthy(s:find('width="500"', 1, true))
    assert.equal("%PDF-", p:sub(1, 5))
    assert.truthy(p:find("%%EOF%s*$"))
  end)

  it("draws histograms, training curves, heat maps and image grids to files", function()
    tide.manual_seed(0)
    local files = {tmp(".png"), tmp(".png"), tmp(".png"), tmp(".png")}
    plot.hist(tide.randn(1000), {bins = 20, file = files[1]})
    plot.loss({train_loss = {1, 0.5, 0.4}, val_loss = {1.1, 0.7, 0.6}, val_accuracy = {0.6, 0.7, 0.8},
               step_loss = {1.5, 1.2, 1, 0.8, 0.6, 0.5}}, {file = files[2], title = "loss"})
    plot.image(tide.randn(6, 9), {file = files[3], palette = "coolwarm"})
    plot.image(tide.rand(10, 1, 28, 28), {file = files[4], nrow = 4})
    for _, f in ipairs(files) do assert.truthy(png_size(slurp(f))) end
    -- a grid: 3 rows of 4 images 28+2 wide plus 2: 122 x 92 pixels, 5 screen pixels each
    assert.same({610, 460}, {png_size(slurp(files[4]))})
    for _, f in ipairs(files) do os.remove(f) end
  end)

  it("leaves no temporary files behind", function()
    local made, tmpname = {}, os.tmpname
    os.tmpname = function() local n = tmpname(); made[#made + 1] = n; return n end -- luacheck: ignore 122
    local ok, err = pcall(function()
      quiet(plot.lines, {{y = rising}})
      pcall(plot.lines, {{y = rising, style = "linez"}})
      local lp = quiet(plot.live, {})
      quiet(lp.add, lp, "a", 1)
      quiet(lp.close, lp)
    end)
    os.tmpname = tmpname -- luacheck: ignore 122
    assert(ok, err)
    assert.is_true(#made >= 3)
    for _, n in ipairs(made) do assert.is_nil(io.open(n), n .. " left behind") end
  end)
end)

describe("plot text pages", function()
  it("draws a rising line from lower left to upper right, with its title", function()
    local page = quiet(plot.lines, {title = "rising", width = 60, height = 20, {y = rising}})
    local m = marks(page)
    assert.truthy(page:find("rising", 1, true))
    assert.is_true(m.ll > 0 and m.ur > 0, page)
    assert.is_true(m.ul == 0 and m.lr == 0, page)
  end)

  it("shows titles literally: quotes, backslashes, backquotes, newlines", function()
    local title = "it's \"q\" a\\b `echo no` $HOME @x_y\nsecond line"
    local page = quiet(plot.lines, {title = title, width = 70, height = 16, {y = {3, 2, 1}, title = "k'ey"}})
    assert.truthy(page:find("it's \"q\" a\\b `echo no` $HOME @x_y", 1, true), page)
    assert.truthy(page:find("second line", 1, true), page)
    assert.truthy(page:find("k'ey", 1, true), page)
  end)

  it("leaves out NaN and inf, and non-positive values on a log axis", function()
    local page = quiet(plot.lines, {width = 60, height = 20, logy = true,
      {y = {1, 0 / 0, 4, math.huge, 16, -1, 0, 64, 128}}})
    local m = marks(page)
    assert.is_true(m.ll > 0 and m.ur > 0, page)
  end)

  it("draws tensors of any dtype, and scatter plots", function()
    local y = tide.arange(1, 30):to("int64")
    local m = marks(quiet(plot.lines, {width = 60, height = 20, {y = y, x = y:to("float32")}}))
    assert.is_true(m.ll > 0 and m.ur > 0 and m.ul == 0)
    local page = quiet(plot.scatter, {width = 60, height = 20, {x = {1, 2, 3}, y = {3, 1, 2}}})
    assert.is_true(marks(page, "+").all + marks(page, "*").all > 0, page)
  end)

  it("returns what it printed", function()
    local f = io.tmpfile()
    io.output(f)
    local ok, page = pcall(plot.lines, {width = 40, height = 12, {y = rising}})
    io.output(io.stdout)
    assert(ok, page)
    f:seek("set")
    assert.equal(page, f:read("a"))
    f:close()
  end)

  it("draws a loss history with missing fields, accuracy on the right axis", function()
    local page = quiet(plot.loss, {val_loss = {1, 0.8, 0.7}, val_accuracy = {0.5, 0.6, 0.9}},
                       {width = 70, height = 20})
    assert.truthy(page:find("epoch", 1, true))
    assert.truthy(page:find("accuracy", 1, true))
    page = quiet(plot.loss, {step_loss = tide.tensor{3, 2, 1}}, {width = 60, height = 16})
    assert.truthy(page:find("step", 1, true))
  end)

  it("draws a heat map in colour text", function()
    local page = quiet(plot.image, tide.rand(4, 5), {width = 50, height = 16})
    assert.truthy(page:find("\27[38;2;", 1, true))
  end)
end)

describe("plot numbers", function()
  it("counts histogram bins (numpy's rule: the last bin includes the maximum)", function()
    local c, e = plot.histogram({1, 2, 2, 3, 3, 3, 4, 0 / 0}, {bins = 3})
    assert.same({1, 2, 4}, c)
    assert.same({1, 2, 3, 4}, e)
    c, e = plot.histogram(tide.tensor({{0, 1}, {9, 10}}, {dtype = "int64"}), {bins = 2, range = {0, 8}})
    assert.same({2, 0}, c)
    assert.same({0, 4, 8}, e)
    c = plot.histogram({5, 5, 5})
    assert.equal(10, #c)
    assert.equal(3, c[6])
    tide.manual_seed(3)
    local x = tide.randn(5000)
    c = plot.histogram(x, {bins = 7})
    local n = 0
    for _, k in ipairs(c) do n = n + k end
    assert.equal(5000, n)
  end)

  it("lays images out as torchvision's make_grid", function()
    local x = tide.rand(10, 1, 28, 28)
    local g = plot.make_grid(x, {nrow = 4})
    assert.same({1, 3 * 30 + 2, 4 * 30 + 2}, g.shape)
    -- image 6 is row 2, column 2
    H.close(g:select(1, 1):narrow(1, 30 + 3, 28):narrow(2, 30 + 3, 28), x[6][1], 0, "image 6")
    assert.equal(0, g[1][1][1])
    assert.equal(0, g[1][92][122])
    g = plot.make_grid(tide.ones(5, 8, 6), {padding = 1, pad_value = -1})
    assert.same({1, 1 * 9 + 1, 5 * 7 + 1}, g.shape)
    assert.equal(-1, g[1][1][1])
    assert.equal(1, g[1][2][2])
    assert.same({3, 2 * 6 + 2, 8 * 6 + 2}, plot.make_grid(tide.rand(9, 3, 4, 4), {nrow = 8}).shape)
  end)
end)

describe("plot.live", function()
  it("redraws in the terminal and leaves no process behind", function()
    local script = tmp(".lua")
    local f = assert(io.open(script, "w"))
    f:write([[
      local lp = plot.live{title = "live demo", width = 60, height = 16, interval = 0}
      for i = 1, 20 do lp:add("train", i, 1 / i); lp:add("val", i, 1.5 / i) end
      print("closed", lp:close())
      local me = io.open("/proc/self/stat"):read("a"):match("^%d+")
      local p = io.popen("LD_PRELOAD= ps -o comm= --ppid " .. me)
      print("children", (p:read("a"):gsub("%s+", " ")))
      p:close()
    ]])
    f:close()
    local out, code = run(TIDE .. " " .. q(script))
    os.remove(script)
    assert.equal(0, code, out)
    assert.truthy(select(2, out:gsub("live demo", "")) >= 2, out) -- a page per redraw
    assert.truthy(out:find("closed\tnil", 1, true), out)
    assert.truthy(out:find("children\tsh%s*$"), out) -- only the shell running ps
    assert.truthy(out:find("val", 1, true))
  end)

  it("writes a file, is complete after close, and leaves no process behind", function()
    local path = tmp(".png")
    local lp = plot.live{file = path, width = 320, height = 200, title = "live"}
    for i = 1, 30 do lp:add("loss", 1 / i) end
    lp:add("acc", 1, 0.5):add("acc", tide.tensor(30), tide.tensor(0.9))
    assert.equal(path, lp:close())
    assert.equal(path, lp:close()) -- twice is harmless
    local s = slurp(path)
    os.remove(path)
    assert.same({320, 200}, {png_size(s)})
    assert.same({}, descendants())
    H.err("plot.live: add on a closed live plot", lp.add, lp, "loss", 1)
  end)

  it("reports gnuplot's error from the open process", function()
    local p = G.spawn({mode = "file"})
    p:send("test", "plot sin(x) with linez")
    local e = p:close()
    assert.truthy(e and e:find("unrecognized plot type", 1, true), tostring(e))
    assert.same({}, descendants())
  end)
end)

describe("plot errors", function()
  it("names the function and the expectation", function()
    H.err("plot.lines: unknown file extension '.jpg' in 'a.jpg' (expected .png, .svg or .pdf)",
          plot.lines, {file = "a.jpg", {y = {1, 2}}})
    H.err("plot.hist: no file extension in 'plot' (expected .png, .svg or .pdf)", plot.hist, {1, 2}, {file = "plot"})
    H.err("plot.lines: series 1 is empty", plot.lines, {{y = {}}})
    H.err("plot.lines: series 2: x has 3 values, y has 2", plot.lines,
          {{y = {1}}, {x = {1, 2, 3}, y = tide.tensor{1, 2}}})
    H.err("plot.lines: no series given", plot.lines, {title = "x"})
    H.err("plot.lines: unknown option 'tilte'", plot.lines, {tilte = "x", {y = {1}}})
    H.err("plot.lines: series 1: unknown field 'z'", plot.lines, {{y = {1}, z = 2}})
    H.err("plot.lines: series 1 y[2] is a string, expected a number", plot.lines, {{y = {1, "2"}}})
    H.err("plot.lines: series 1 y must be a 1-D tensor, got shape 2x2", plot.lines, {{y = tide.ones(2, 2)}})
    H.err("plot.lines: no finite values to plot", plot.lines, {file = tmp(".png"), {y = {0 / 0}}})
    H.err("plot.scatter: series 1 style must be gnuplot style words", plot.scatter,
          {{y = {1}, style = "points`rm x`"}})
    H.err("plot.lines: width must be a positive integer, got 0", plot.lines,
          {file = tmp(".png"), width = 0, {y = {1}}})
    H.err("plot.hist: bins must be a positive integer, got 0", plot.hist, {1}, {bins = 0})
    H.err("plot.loss: history has no train_loss", plot.loss, {lr = {0.1}})
    H.err("plot.image: expected a 2-D tensor (heat map) or N x H x W", plot.image, tide.ones(3))
    H.err("plot.make_grid: expected 1 or 3 channels", plot.make_grid, tide.ones(2, 2, 4, 4))
    H.err("plot.image: unknown palette 'jet'", plot.image, tide.ones(2, 2), {palette = "jet"})
    H.err("plot.live: add expects a series name string first", function()
      local lp = plot.live{file = tmp(".png")}
      local _, e = pcall(lp.add, lp, 1, 2)
      lp:close()
      error(e)
    end)
  end)

  it("surfaces gnuplot's own error message", function()
    H.err("plot.lines: gnuplot: unrecognized plot type (in: plot $d1 using 1:2 with linez",
          plot.lines, {file = tmp(".png"), {y = {1, 2}, style = "linez"}})
    H.err("plot.lines: gnuplot: unrecognized plot type", quiet, plot.lines, {{y = {1, 2}, style = "linez"}})
  end)

  it("says how to install gnuplot when it is not on PATH", function()
    local out, code = run("PATH= " .. TIDE .. " -e " .. q("plot.lines{{y = {1, 2}}}"))
    assert.equal(1, code)
    assert.truthy(out:find("plot: gnuplot not found; install it with: sudo apt install gnuplot-nox", 1, true), out)
  end)

  local terms = run("gnuplot -e 'print GPVAL_TERMINALS' </dev/null")
  local window = terms:find("%f[%w]qt%f[%W]") or terms:find("wxt") or terms:find("x11")
  ;(window and pending or it)("draws text when a display is set but gnuplot has no window terminal", function()
    local out, code = run("DISPLAY=:99 " .. TIDE .. " -e " .. q("plot.lines{title = 'shown', {y = {1, 2}}}"))
    assert.equal(0, code, out)
    assert.truthy(out:find("shown", 1, true), out)
  end)
end)
