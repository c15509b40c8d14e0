-- stdlib/tide/help.lua: help(x) and the parser of doc/*.md entries ("### sig · sig" headings,
-- text to the next heading; doc/README.md). Functions and tables are named by searching the
-- tide, tide.Tensor and loaded stdlib tables. `help` is a callable table: help.text(x) returns
-- what help(x) prints.
local help = {}

local SEP = " \u{B7} " -- between the signatures of one heading

---- finding doc/ --------------------------------------------------------------------------

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

-- The directory holding README.md: $TIDE_DOC, else beside the stdlib this file came from
-- (<checkout>/stdlib/tide -> <checkout>/doc; PREFIX/share/lua/5.4/tide -> PREFIX/share/doc/tide),
-- else beside the tide program (registry "tide.exedir", set by vm/main.c).
function help.docdir()
  local cands = {os.getenv("TIDE_DOC")}
  local src = debug.getinfo(1, "S").source
  local dirs = {src:match("^@(.*)/tide/help%.lua$")}
  local found = package.searchpath("tide", package.path)
  dirs[#dirs + 1] = found and found:match("^(.*)/tide/init%.lua$")
  for _, d in ipairs(dirs) do
    cands[#cands + 1] = d .. "/../doc"
    cands[#cands + 1] = d .. "/../../doc/tide"
  end
  local exe = debug.getregistry()["tide.exedir"]
  if type(exe) == "string" then
    cands[#cands + 1] = exe .. "/../doc"
    cands[#cands + 1] = exe .. "/../share/doc/tide"
  end
  for _, d in ipairs(cands) do
    if d ~= "" and exists(d .. "/README.md") then return d end
  end
  return nil
end

---- parsing --------------------------------------------------------------------------------

local function short(name) return name:match("[^%.:]+$") end

-- "t:exp() · tide.exp(t)" -> {"t:exp()", "tide.exp(t)"}, {"t:exp", "tide.exp"}
local function signatures(title)
  local sigs, names = {}, {}
  title = title:gsub("`", "")
  for sig in (title .. SEP):gmatch("(.-)" .. SEP) do
    sig = sig:match("^%s*(.-)%s*$")
    if sig ~= "" then
      sigs[#sigs + 1] = sig
      local name = sig:match("^[%a_][%w_%.:]*")
      if name then names[#names + 1] = name:gsub("[%.:]$", "") end
    end
  end
  return sigs, names
end

-- One page's text -> {title=, intro=, entries={...}, sections={...}}. An entry is
-- {sigs=, names=, body=, page=}; code fences do not end it, so '#' lines in examples are safe.
function help.parse(text, page)
  local doc = {page = page, intro = {}, entries = {}, sections = {}}
  local cur, fence = doc.intro, false
  for line in (text:gsub("\r", "") .. "\n"):gmatch("(.-)\n") do
    if line:match("^%s*```") then fence = not fence end
    local hashes, title = line:match("^(#+)%s+(.-)%s*$")
    if hashes and not fence then
      if #hashes == 1 then
        doc.title, cur = title, doc.intro
      elseif #hashes == 2 then
        local s = {title = title, body = {}, page = page}
        doc.sections[#doc.sections + 1] = s
        cur = s.body
      else
        local sigs, names = signatures(title)
        local e = {sigs = sigs, names = names, body = {}, page = page}
        doc.entries[#doc.entries + 1] = e
        cur = e.body
      end
    else
      cur[#cur + 1] = line
    end
  end
  return doc
end

local db -- the parsed docs, built on the first help() call

-- pages named in README.md's table, in its order: {file=, what=}
local function pages(readme)
  local out = {}
  for line in readme:gmatch("[^\n]+") do
    local file, what = line:match("^|%s*%[[^%]]*%]%(([%w_%-]+%.md)%)%s*|%s*(.-)%s*|")
    if file then out[#out + 1] = {file = file, what = what} end
  end
  return out
end

local function readall(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function help.load(dir)
  dir = dir or help.docdir()
  db = {dir = dir, pages = {}, docs = {}, byname = {}, byshort = {}, sections = {}}
  local readme = dir and readall(dir .. "/README.md")
  if not readme then return db end
  for _, p in ipairs(pages(readme)) do
    local text = readall(dir .. "/" .. p.file)
    if text then
      local doc = help.parse(text, p.file)
      doc.what = p.what
      db.pages[#db.pages + 1] = p
      db.docs[p.file:gsub("%.md$", "")] = doc
      for _, e in ipairs(doc.entries) do
        for _, n in ipairs(e.names) do
          db.byname[n] = db.byname[n] or e
          local s = short(n)
          db.byshort[s] = db.byshort[s] or {}
          local list = db.byshort[s]
          if list[#list] ~= e then list[#list + 1] = e end
        end
      end
      for _, s in ipairs(doc.sections) do
        db.sections[s.title:lower():gsub("^the ", "")] = s
      end
    end
  end
  return db
end

local function getdb() return db or help.load() end

---- rendering ------------------------------------------------------------------------------

local function trim(lines)
  local a, b = 1, #lines
  while a <= b and lines[a]:match("^%s*$") do a = a + 1 end
  while b >= a and lines[b]:match("^%s*$") do b = b - 1 end
  return table.move(lines, a, b, 1, {})
end

-- prose as is, code indented by four, fences dropped
local function body(lines)
  local out, fence = {}, false
  for _, l in ipairs(trim(lines)) do
    if l:match("^%s*```") then fence = not fence
    else out[#out + 1] = fence and "    " .. l or l end
  end
  return table.concat(out, "\n")
end

local function render(e)
  return table.concat(e.sigs, SEP) .. "    (doc/" .. e.page .. ")\n" .. body(e.body)
end

local function columns(names)
  local out, line = {}, " "
  for _, n in ipairs(names) do
    if #line + #n + 2 > 78 then out[#out + 1], line = line, " " end
    line = line .. " " .. n
  end
  out[#out + 1] = line
  return table.concat(out, "\n")
end

local function page_text(doc)
  local sigs = {}
  for _, e in ipairs(doc.entries) do sigs[#sigs + 1] = table.concat(e.sigs, SEP) end
  local intro = body(doc.intro)
  return ("%s    (doc/%s)\n%s%s\nentries:\n  %s"):format(doc.title or doc.page, doc.page, intro,
    intro == "" and "" or "\n", #sigs > 0 and table.concat(sigs, "\n  ") or "(none yet)")
end

-- a module's documented names: everything under prefix ("tide." or "t:")
local function module_text(label, prefix, t)
  local d, names = getdb(), {}
  for n in pairs(d.byname) do
    if n:sub(1, #prefix) == prefix then names[#names + 1] = n end
  end
  table.sort(names)
  local extra = {}
  if type(t) == "table" then
    for k in pairs(t) do
      if type(k) == "string" and not k:match("^_") and not d.byname[prefix .. k] then
        extra[#extra + 1] = prefix .. k
      end
    end
    table.sort(extra)
  end
  local s = ("%s: %d documented names; help(name) shows one.\n%s"):format(label, #names,
    columns(names))
  if #extra > 0 then s = s .. "\nwithout an entry yet:\n" .. columns(extra) end
  return s
end

local function topics()
  local d = getdb()
  local out = {"help(x) shows the documentation of a function, method, module or page:",
    '  help(tide.zeros)   help("exp")   help("t:view")   help(tide)   help("math")', ""}
  if not d.dir then
    out[#out + 1] = "(the doc/ directory was not found; set TIDE_DOC to its path)"
    return table.concat(out, "\n")
  end
  out[#out + 1] = "pages:"
  for _, p in ipairs(d.pages) do
    out[#out + 1] = ("  %-10s %s"):format(p.file:gsub("%.md$", ""), p.what)
  end
  return table.concat(out, "\n")
end

---- lookup ---------------------------------------------------------------------------------

local function levenshtein(a, b)
  if math.abs(#a - #b) > 3 then return 99 end
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = {[0] = i}
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

local function suggest(q)
  local d, scored, seen = getdb(), {}, {}
  local ql = q:lower()
  local function consider(n)
    if seen[n] then return end
    seen[n] = true
    local dist = levenshtein(ql, n:lower())
    if dist > math.max(1, #q // 3) and not n:lower():find(ql, 1, true) then return end
    scored[#scored + 1] = {n, dist}
  end
  for n in pairs(d.byname) do consider(n) end
  for n in pairs(d.byshort) do consider(n) end
  for n in pairs(d.docs) do consider(n) end
  local tide = package.loaded.tide
  if type(tide) == "table" then -- functions without an entry yet still have a doc line
    for k, v in pairs(tide) do
      if type(k) == "string" and type(v) == "function" and not k:match("^_") then consider(k) end
    end
  end
  table.sort(scored, function(x, y) return x[2] < y[2] or (x[2] == y[2] and x[1] < y[1]) end)
  local out = {}
  for i = 1, math.min(8, #scored) do out[i] = scored[i][1] end
  return out
end

local function unknown(what, q, note)
  local s = ("help: no entry for %s."):format(what)
  local sug = q and suggest(q) or {}
  if #sug > 0 then s = s .. " Did you mean: " .. table.concat(sug, ", ") .. "?" end
  if note then s = s .. "\n" .. note end
  local ops = (package.loaded.tide or {})._ops
  local op = q and short(q)
  if type(ops) == "table" and op and ops[op] then
    s = ("%s\n%s: %s (from the op table)"):format(s, op, ops[op])
  end
  return s .. '\nhelp() lists the pages.'
end

local function entries_text(list)
  local out = {}
  for i, e in ipairs(list) do out[i] = render(e) end
  return table.concat(out, "\n\n")
end

local ROOTS = {"tide", "nn", "optim", "data", "plot", "models"}

local function root_table(name)
  return package.loaded[name == "tide" and "tide" or "tide." .. name]
end

-- the dotted names under which v is reachable: tide.x, tide.sub.x, t:x, nn.x, a global
local function names_of(v)
  local out = {}
  for _, r in ipairs(ROOTS) do
    local t = root_table(r)
    if type(t) == "table" then
      if t == v then out[#out + 1] = r end
      for k, x in pairs(t) do
        if type(k) == "string" then
          if x == v then out[#out + 1] = r .. "." .. k end
          if type(x) == "table" and k ~= "Tensor" and not k:match("^_") then
            for k2, y in pairs(x) do
              if y == v and type(k2) == "string" then out[#out + 1] = r .. "." .. k .. "." .. k2 end
            end
          end
        end
      end
    end
  end
  local tide = package.loaded.tide
  local methods = type(tide) == "table" and rawget(tide, "Tensor")
  if type(methods) == "table" then
    if v == methods then out[#out + 1] = "Tensor" end
    for k, f in pairs(methods) do
      if f == v and type(k) == "string" then out[#out + 1] = "t:" .. k end
    end
  end
  for k, x in pairs(_G) do
    if x == v and type(k) == "string" then out[#out + 1] = k end
  end
  return out
end

local function by_name(name)
  local d = getdb()
  if d.byname[name] then return render(d.byname[name]) end
  if name == "Tensor" then
    return module_text("Tensor methods", "t:", rawget(package.loaded.tide or {}, "Tensor"))
  end
  for _, r in ipairs(ROOTS) do
    if name == r then return module_text(r, r .. ".", root_table(r)) end
  end
  if d.docs[name] then return page_text(d.docs[name]) end
  return nil
end

local function text_for_string(q)
  local d = getdb()
  q = q:match("^%s*(.-)%s*$")
  if q == "" then return topics() end
  local direct = by_name(q)
  if direct then return direct end
  local norm = q:gsub("^tide%.Tensor[%.:]", "t:"):gsub("^Tensor[%.:]", "t:"):gsub("^t%.", "t:")
  direct = by_name(norm)
  if direct then return direct end
  local page = q:gsub("%.md$", "")
  if d.docs[page] then return page_text(d.docs[page]) end
  local sec = d.sections[q:lower():gsub("^the ", "")]
  if sec then return ("%s    (doc/%s)\n%s"):format(sec.title, sec.page, body(sec.body)) end
  local list = d.byshort[short(norm)]
  if list and (norm == short(norm) or norm:match("^t:")) then return entries_text(list) end
  return unknown("'" .. q .. "'", short(norm))
end

local function is_tensor(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__name") == "tide.Tensor"
end

local function text_for_value(v)
  if is_tensor(v) then return by_name("Tensor") end
  local names = names_of(v)
  if #names == 0 and type(v) ~= "function" then -- an object: try its class
    local mt = getmetatable(v)
    if type(mt) == "table" then
      if type(mt.__name) == "string" then
        local n = mt.__name:gsub("^tide%.", "")
        return by_name("nn." .. n) or by_name(n) or unknown("a " .. mt.__name, n)
      end
      if type(mt.__index) == "table" then names = names_of(mt.__index) end
    end
  end
  for _, n in ipairs(names) do
    local t = by_name(n)
    if t then return t end
  end
  for _, n in ipairs(names) do
    local list = getdb().byshort[short(n)]
    if list then return entries_text(list) end
  end
  local lua = "It is not part of tide; Lua's own functions are in the Lua 5.4 manual, "
    .. "https://www.lua.org/manual/5.4/"
  if #names > 0 then
    local tidename = names[1]:match("^tide%.") or names[1]:match("^t:") or names[1] == "help"
    return unknown(names[1], names[1], not tidename and lua or nil)
  end
  return unknown("this " .. type(v), nil, lua)
end

-- what help(...) prints
function help.text(...)
  if select("#", ...) == 0 then return topics() end
  local x = ...
  if x == nil then return "help: got nil (a misspelt name?); help() lists the pages." end
  if type(x) == "string" then return text_for_string(x) end
  return text_for_value(x)
end

-- `help` typed alone at the prompt shows the pages instead of a table of functions
return setmetatable(help, {
  __call = function(_, ...)
    io.write(help.text(...), "\n")
    io.flush()
  end,
  __tostring = function() return help.text() end,
})
