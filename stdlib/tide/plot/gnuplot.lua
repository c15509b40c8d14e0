-- stdlib/tide/plot/gnuplot.lua: talking to gnuplot for tide.plot: whether it is installed, which
-- terminal a plot goes to (a file's extension, a window, or text in the terminal), quoting,
-- inline data, running one script to completion, and keeping one process open (plot.live).
local tide = require "tide"

local G = {}

local INSTALL = "plot: gnuplot not found; install it with: sudo apt install gnuplot-nox"

-- Raises msg (formatted with the rest) at the first caller outside tide.plot: its files call
-- one another at varying depths, so a fixed error level would point into them.
function G.fail(msg, ...)
  if select("#", ...) > 0 then msg = msg:format(...) end
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if not info then level = 0 break end
    if not info.source:find("tide/plot[%./]") then break end
    level = level + 1
  end
  error(msg, level)
end

local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Raises the install hint when gnuplot is not on PATH (asked again until it is found).
local found = false
function G.check()
  if not found then
    found = os.execute("command -v gnuplot >/dev/null 2>&1") == true
    if not found then error(INSTALL, 0) end
  end
end

-- gnuplot's terminals, asked once (`print GPVAL_TERMINALS` is one line; `set terminal` pages)
local terminals
local function has_terminal(name)
  if not terminals then
    terminals = {}
    local p = io.popen("gnuplot -e 'print GPVAL_TERMINALS' 2>&1 </dev/null")
    for w in p:read("a"):gmatch("%S+") do terminals[w] = true end
    p:close()
  end
  return terminals[name]
end

-- A gnuplot string literal for any Lua string. Single quotes, because gnuplot runs `backquoted`
-- text as a shell command inside double quotes; newlines are joined in as "\n"; other control
-- characters are dropped (a form feed would split a text page, see G.run).
function G.quote(s)
  local parts = {}
  for line in (tostring(s) .. "\n"):gmatch("([^\n]*)\n") do
    parts[#parts + 1] = "'" .. line:gsub("%c", ""):gsub("'", "''") .. "'"
  end
  return table.concat(parts, '."\\n".')
end

-- one number as gnuplot reads it
function G.num(v)
  if math.type(v) == "integer" then return tostring(v) end
  return ("%.10g"):format(v)
end

-- a datablock named $name from rows of text
function G.datablock(name, rows)
  return ("$%s << EOD\n%s\nEOD"):format(name, table.concat(rows, "\n"))
end

-- the terminal's size in characters: COLUMNS/LINES, else the tty's, else 79x24
local function ttysize()
  local w, h = tonumber(os.getenv("COLUMNS")), tonumber(os.getenv("LINES"))
  if not (w and h) and tide._isatty(1) then
    local p = io.popen("stty size </dev/tty 2>/dev/null")
    local rows, cols = p:read("a"):match("(%d+)%s+(%d+)")
    p:close()
    h, w = h or tonumber(rows), w or tonumber(cols)
  end
  w, h = w or 80, h or 25
  return math.max(w - 1, 20), math.max(h - 1, 8) -- leave a column and the prompt's line free
end

local function dim(fname, o, key, default)
  local v = o[key]
  if v == nil then return default end
  if math.type(v) ~= "integer" or v < 1 then
    G.fail("%s: %s must be a positive integer, got %s", fname, key, tostring(v))
  end
  return v
end

local FILE_TERMS = {png = "pngcairo", svg = "svg", pdf = "pdfcairo"}

-- Where a plot goes: {mode = "file"|"window"|"notebook"|"text", term = "set terminal ...", path = file}.
-- o.file's extension picks the terminal; without a file, a window when a display exists and
-- gnuplot has a window terminal (gnuplot-nox has none), else the dumb terminal sized to the tty;
-- in a Jupyter kernel's cell (doc/jupyter.md), a PNG shown in the notebook.
-- size = {w, h} is the default file size in pixels; image asks for colour text (dumb draws no
-- image in black and white).
function G.target(fname, o, size, image)
  local k = package.loaded["tide.kernel"]
  if o.file == nil and k and k.active() then -- a Jupyter cell: a PNG in the notebook
    local w, h = dim(fname, o, "width", size[1]), dim(fname, o, "height", size[2])
    return {mode = "notebook", term = ("set terminal pngcairo size %d,%d noenhanced"):format(w, h)}
  end
  if o.file ~= nil then
    if type(o.file) ~= "string" or o.file == "" then
      G.fail("%s: file must be a path string, got %s", fname, tostring(o.file))
    end
    local ext = (o.file:match("%.([^./]+)$") or ""):lower()
    if not FILE_TERMS[ext] then
      local what = ext == "" and "no file extension" or ("unknown file extension '." .. ext .. "'")
      G.fail("%s: %s in '%s' (expected .png, .svg or .pdf)", fname, what, o.file)
    end
    local w, h = dim(fname, o, "width", size[1]), dim(fname, o, "height", size[2])
    local sz = ext == "pdf" and ("size %gin,%gin"):format(w / 72, h / 72) -- pdf: points
                            or ("size %d,%d"):format(w, h)
    local extra = ext == "svg" and " background rgb 'white'" or ""
    return {mode = "file", path = o.file,
            term = ("set terminal %s %s noenhanced%s"):format(FILE_TERMS[ext], sz, extra)}
  end
  G.check()
  if os.getenv("DISPLAY") or os.getenv("WAYLAND_DISPLAY") then
    for _, t in ipairs{"qt", "wxt", "x11"} do
      if has_terminal(t) then
        return {mode = "window", term = "set terminal " .. t .. " noenhanced"}
      end
    end
  end
  local cw, ch = ttysize()
  local w, h = dim(fname, o, "width", cw), dim(fname, o, "height", ch)
  local colour = image and " ansirgb" or (tide._isatty(1) and " ansi" or "")
  return {mode = "text", term = ("set terminal dumb size %d,%d noenhanced%s"):format(w, h, colour)}
end

-- "line 12: unrecognized plot type", and the offending command, from gnuplot's messages
local function message(text, script)
  local lines = {}
  for l in text:gmatch("[^\n]+") do
    if not l:match("^%s*%^%s*$") then lines[#lines + 1] = l end
  end
  for i, l in ipairs(lines) do
    local what = l:match("line %d+: (.*)$")
    if what and not what:lower():match("^warning") then
      local cmd = i > 1 and lines[i - 1]:match("^%s*(.-)%s*$")
      return what .. (cmd and (" (in: " .. cmd .. ")") or "")
    end
  end
  return (table.concat(lines, "; "):gsub(script:gsub("%p", "%%%0"), "script"))
end

-- Runs a script file to completion. Returns the text pages on stdout, or raises.
-- Design: io.popen is one-way, and both the script and gnuplot's replies must cross, so the
-- script goes in a temporary file (data inline as datablocks; the file is removed on every
-- path) and stdout and stderr come back merged through one pipe. One pipe is enough: gnuplot
-- writes a plot's messages (unbuffered) before it flushes the page, and every dumb page starts
-- with a form feed, so what comes before the first \f is messages; the exit status says whether
-- they were an error (then the Lua error carries gnuplot's message) or warnings (dropped).
-- popen's close waits for gnuplot, so a file is complete when this returns.
local function exec(fname, script)
  local path = os.tmpname()
  local ok, out, code = pcall(function()
    local f = assert(io.open(path, "w"))
    f:write(script, "\n")
    f:close()
    local p = io.popen(("gnuplot %s 2>&1 </dev/null"):format(shq(path)))
    local text = p:read("a")
    local _, _, status = p:close()
    return text, status
  end)
  os.remove(path)
  if not ok then error(out, 0) end
  local ff = out:find("\f", 1, true)
  if code ~= 0 then
    G.fail("%s: gnuplot: %s", fname, message(ff and out:sub(1, ff - 1) or out, path))
  end
  return ff and out:sub(ff):gsub("\f", "") or ""
end

-- Draws body on a notebook target as a PNG display of the running cell; id and update name
-- the display a live plot replaces frame after frame.
function G.notebook(fname, t, body, id, update)
  local base = os.tmpname()
  local path = base .. ".png"
  local ok, err = pcall(exec, fname, table.concat({t.term, "set output " .. G.quote(path), body,
    "unset output"}, "\n"))
  local f = ok and io.open(path, "rb")
  local png = f and f:read("a")
  if f then f:close() end
  os.remove(path)
  os.remove(base)
  if not ok then error(err, 0) end
  package.loaded["tide.kernel"].display({["image/png"] = png or "", ["text/plain"] = "<plot>"}, id, update)
end

-- Draws `body` (gnuplot commands after the terminal) on target t. Returns the path for a file,
-- the text page (also written to io.output()) for the terminal, true for a window or a notebook.
function G.run(fname, t, body)
  G.check()
  if t.mode == "notebook" then
    G.notebook(fname, t, body)
    G.shown = true -- shown already: the cell's result is not echoed
    return true
  elseif t.mode == "file" then
    local out = "set output " .. G.quote(t.path)
    exec(fname, table.concat({t.term, out, body, "unset output"}, "\n"))
    return t.path
  elseif t.mode == "window" then
    -- errors first, drawn where they cost nothing; then the window, in the background so a
    -- window helper holding gnuplot's streams can never block the REPL
    exec(fname, "set terminal dumb\nset output '/dev/null'\n" .. body)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(t.term, "\n", body, "\n")
    f:close()
    path = shq(path)
    os.execute(("(gnuplot -persist %s; rm -f %s) </dev/null >/dev/null 2>&1 &"):format(path, path))
    return true
  end
  local page = exec(fname, t.term .. "\n" .. body)
  io.write(page)
  io.flush()
  G.shown = page -- the REPL does not echo this return value (repl.lua's show)
  return page
end

---- one process kept open (plot.live) ------------------------------------------------------

local Proc = {}
Proc.__index = Proc

-- Starts gnuplot reading commands from a pipe. Its stderr goes to a small capture file (the
-- pipe is write-only), checked on each send and at close; its stdout is tide's (text pages
-- print as they come). `cat` drains the pipe if gnuplot exits at an error, so a write never
-- meets a closed pipe (SIGPIPE would end tide).
local Shown = {}
Shown.__index = Shown
local displays = 0

function G.spawn(t)
  G.check()
  if t.mode == "notebook" then -- a live plot in a notebook: one display, updated per frame
    displays = displays + 1
    return setmetatable({t = t, id = "tide-plot-" .. displays, frames = 0}, Shown)
  end
  local err = os.tmpname()
  local cmd = ("gnuplot%s 2>%s%s; s=$?; cat >/dev/null; exit $s"):format(
    t.mode == "window" and " -persist" or "", shq(err), t.mode == "text" and "" or " >/dev/null")
  local p = io.popen(cmd, "w")
  if not p then
    os.remove(err)
    G.fail("plot.live: could not start gnuplot")
  end
  p:setvbuf("full")
  return setmetatable({p = p, err = err}, Proc)
end

-- gnuplot's error so far, or nil (warnings do not count)
function Proc:error()
  local f = io.open(self.err, "r")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  for l in text:gmatch("[^\n]+") do
    local what = l:match("line %d+: (.*)$")
    if what and not what:lower():match("^warning") then return message(text, self.err) end
  end
end

function Proc:send(fname, script)
  local e = self:error()
  if e then
    self:close()
    G.fail("%s: gnuplot: %s", fname, e)
  end
  self.p:write(script, "\n")
  self.p:flush()
end

-- Ends gnuplot (waiting for it: no zombie, a file complete) and removes the capture file.
-- Returns gnuplot's error, if any.
function Proc:close()
  local e
  if self.p then
    self.p:write("exit\n")
    local _, _, code = self.p:close()
    self.p = nil
    e = self:error() or (code ~= 0 and ("exit status " .. tostring(code)) or nil)
    os.remove(self.err)
  end
  return e
end

function Shown:send(fname, script)
  G.notebook(fname, self.t, script, self.id, self.frames > 0)
  self.frames = self.frames + 1
end

function Shown.close() return nil end

Proc.__gc = function(self) if io.type(self.p) == "file" then pcall(Proc.close, self) end end

return G
