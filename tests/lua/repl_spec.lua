-- tests/lua/repl_spec.lua: the REPL through a real pseudo-terminal (tests/ptyrun.py drives
-- $TIDE_BUILD/tide), and the Lua half (stdlib/tide/repl.lua: printing, completion) directly.
local H = require "helpers"
local BUILD = os.getenv("TIDE_BUILD") or "build"
local TIDE = BUILD .. "/tide"

local q = H.q
local tmpdir = H.tmpdir
local slurp = H.slurp

-- Debian's python3 (a python3 earlier in PATH may be a slow version-manager shim)
local PYTHON = io.open("/usr/bin/python3", "r") and "/usr/bin/python3" or "python3"

-- Plays steps (ptyrun.py's send:/expect:/sleep:/eof) against a fresh tide with HOME=home;
-- returns the transcript and ptyrun's status (0: every expect matched and tide exited 0).
local function session(steps, home)
  local owned = not home
  home = home or tmpdir()
  local args = {}
  for i, s in ipairs(steps) do args[i] = q(s) end
  local p = io.popen(("HOME=%s TERM=xterm %s tests/ptyrun.py %s -- %s 2>&1"):format(
    q(home), PYTHON, table.concat(args, " "), q(TIDE)))
  local out = p:read("a")
  local _, _, code = p:close()
  if owned then os.execute("rm -rf " .. q(home)) end
  return out, code
end

-- expect steps: X(text) waits for text at the end of the output so far, F(text) for text
-- anywhere after the previous match (ptyrun.py takes Python regexes; these escape them)
local function rx(text) return (text:gsub("[%.%^%$%*%+%?%(%)%[%]{}|\\]", "\\%0")) end
local function X(text) return "expect:" .. rx(text) .. "$" end
local function F(text) return "expect:" .. rx(text) end
local PROMPT = X("\n> ")

describe("the REPL on a terminal", function()
  it("prints expression values: numbers, several values, tables, tensors", function()
    local out, code = session({PROMPT,
      "send:1 + 2\n", X("\n3\n> "),
      "send:=2 * 21\n", X("\n42\n> "),
      "send:return 1, 'a', nil\n", X("\n1\ta\tnil\n> "),
      "send:{1, 2, a = 3, b = {4}, c = {}}\n", X("\n{1, 2, a = 3, b = {...}, c = {}}\n> "),
      "send:tide.ones(2, 3)\n", X("[float32 tensor 2x3]\n> "),
      "send:print('x')\n", X("\nx\n> "), -- a call returning nothing prints nothing more
      "eof"})
    assert.equal(0, code, out)
  end)

  it("continues an unfinished statement on the next line", function()
    local out, code = session({PROMPT,
      "send:for i = 1, 3 do\n", X("\n>> "),
      "send:print(i * 10)\n", X("\n>> "),
      "send:end\n", X("\n10\n20\n30\n> "),
      "send:s = [[a\n", X(">> "), "send:b]]\n", PROMPT,
      "send:#s\n", X("\n3\n> "),
      "eof"})
    assert.equal(0, code, out)
  end)

  it("reports an error with a short traceback and keeps the session's state", function()
    local out, code = session({PROMPT,
      "send:x = 5\n", PROMPT,
      "send:error('boom')\n", X("stdin:1: boom\n> "),
      "send:function f() local t = nil; return t.k end\n", PROMPT,
      "send:f()\n", X("attempt to index a nil value (local 't')\nstack traceback:\n"
        .. "\tstdin:1: in function 'f'\n> "),
      "send:x\n", X("\n5\n> "),
      "eof"})
    assert.equal(0, code, out)
    assert.not_matches("%[C%]: in %?", out)
  end)

  it("warns that locals do not survive across lines", function()
    local out, code = session({PROMPT, "send:local z = 1\n",
      F("locals do not survive across lines"), PROMPT, "eof"})
    assert.equal(0, code, out)
  end)

  it("interrupts a Lua loop with Ctrl-C and keeps the globals", function()
    local out, code = session({PROMPT,
      "send:x = 42\n", PROMPT,
      "send:while true do end\n", "sleep:0.5", "send:\\x03",
      "expect@3:interrupted!", PROMPT,
      "send:x\n", X("\n42\n> "),
      "eof"})
    assert.equal(0, code, out)
  end)

  it("interrupts a long C kernel with Ctrl-C and resets the flag for the next statement", function()
    -- one call of 1.6e11 additions (minutes): only the kernel's own polling can stop it fast
    local out, code = session({PROMPT,
      "send:y = 7\n", PROMPT,
      "send:s = tide.ones(1, 1):expand(10000000, 16384):sum(2)\n", "sleep:1", "send:\\x03",
      "expect@4:interrupted!", PROMPT,
      "send:y, s\n", X("\n7\tnil\n> "),
      "send:tide.ones(1000, 1000):sum():item()\n", "expect:\\n1000000(\\.0)?\\n> $",
      "eof"})
    assert.equal(0, code, out)
  end)

  it("clears the line, and an unfinished statement, on Ctrl-C at the prompt", function()
    local out, code = session({PROMPT,
      "send:abc", X("abc"), "send:\\x03", X("^C\n> "),
      "send:for i = 1, 2 do\n", X(">> "), "send:\\x03", X("^C\n> "),
      "send:3 * 3\n", X("\n9\n> "),
      "eof"})
    assert.equal(0, code, out)
    assert.not_matches("abc", out:match("%^C(.*)$"))
  end)

  it("lets a Ctrl-C typed ahead of more keys clear the line first", function()
    -- a parallel op first: OpenMP's idle workers must not swallow the signal
    local out, code = session({PROMPT,
      "send:tide.rand(1000000):sum():item() > 0\n", X("\ntrue\n> "),
      "send:abc", X("abc"), "send:\x031 + 1\n", X("^C\n> 1 + 1\n2\n> "),
      "eof"})
    assert.equal(0, code, out)
  end)

  it("completes tide.ze<TAB> to tide.zeros, and tensor methods", function()
    local out, code = session({PROMPT,
      "send:tide.ze\t", X("tide.zeros"),
      "send:(3)\n", X("[float32 tensor 3]\n> "),
      "send:t = tide.ones(2)\n", PROMPT,
      "send:t:resha\t", X("t:reshape("),
      "send:2, 1)\n", X("[float32 tensor 2x1]\n> "),
      "eof"})
    assert.equal(0, code, out)
  end)

  it("honours _PROMPT and _PROMPT2", function()
    local out, code = session({PROMPT,
      "send:_PROMPT = 'tide> '; _PROMPT2 = '...> '\n", X("\ntide> "),
      "send:do\n", X("\n...> "), "send:end\n", X("\ntide> "),
      "eof"})
    assert.equal(0, code, out)
  end)

  it("writes whole statements to $HOME/.tide_history and recalls them next time", function()
    local home = tmpdir()
    local out, code = session({PROMPT,
      "send:x = 1\n", PROMPT,
      "send:for i = 1, 2 do\n", "send:x = x * 10\n", "send:end\n", PROMPT,
      "send:x\n", X("\n100\n> "),
      "eof"}, home)
    assert.equal(0, code, out)
    assert.equal("x = 1\nfor i = 1, 2 do\\nx = x * 10\\nend\nx\n", slurp(home .. "/.tide_history"))
    -- a new session: Up twice brings back the whole loop
    out, code = session({PROMPT,
      "send:x = 3\n", PROMPT,
      "send:\x1b[A\x1b[A\x1b[A\n", PROMPT,
      "send:x\n", X("\n300\n> "),
      "eof"}, home)
    os.execute("rm -rf " .. q(home))
    assert.equal(0, code, out)
  end)

  it("keeps the last 1000 statements of the history file", function()
    local home = tmpdir()
    local f = assert(io.open(home .. "/.tide_history", "w"))
    for i = 1, 1200 do f:write(("x = %d\n"):format(i)) end
    f:close()
    local out, code = session({PROMPT, "send:\x1b[A\n", "expect:\n> $", "send:x\n",
      X("\n1200\n> "), "send:y = 1\n", PROMPT, "eof"}, home)
    assert.equal(0, code, out)
    local lines = {}
    for l in io.lines(home .. "/.tide_history") do lines[#lines + 1] = l end
    os.execute("rm -rf " .. q(home))
    assert.equal(1002, #lines) -- cut to 1000 at start, then x and y = 1 appended
    assert.equal("x = 201", lines[1])
    assert.equal("y = 1", lines[#lines])
  end)

  it("shows help in the REPL", function()
    local out, code = session({PROMPT,
      "send:help('help')\n", F("help(x) \u{B7} help()"), PROMPT,
      "send:help\n", F("pages:"), PROMPT,
      "eof"})
    assert.equal(0, code, out)
  end)

  it("draws a text plot once: the page it returns is not echoed again", function()
    local out, code = session({PROMPT,
      "send:T = 'drawn' .. '-once'\n", PROMPT,
      "send:plot.lines{title = T, {y = {1, 2, 3}}}\n", F("drawn-once"), PROMPT,
      "send:1 + 1\n", X("\n2\n> "), "eof"})
    assert.equal(0, code, out)
    local _, n = out:gsub("drawn%-once", "")
    assert.equal(1, n, out)
  end)

  it("prints a model summary once: the table it returns is not echoed again", function()
    local out, code = session({PROMPT,
      "send:tide.summary(models.cnn(), {1, 28, 28})\n", F("MACs per example"), PROMPT,
      "send:1 + 1\n", X("\n2\n> "), "eof"})
    assert.equal(0, code, out)
    local _, n = out:gsub("MACs per example", "")
    assert.equal(1, n, out)
  end)
end)

describe("tide.repl", function()
  local tide = require "tide"
  local repl = require "tide.repl"

  it("formats tables one level deep, array part first, keys sorted", function()
    assert.equal("{1, 2, a = 3, b = {...}, c = {}}", repl.format({1, 2, b = {1}, a = 3, c = {}}))
    assert.equal('{["a b"] = "x\\ny", [true] = 1}', repl.format({["a b"] = "x\ny", [true] = 1}))
    assert.equal("{t = [float32 tensor 2x3]}", repl.format({t = tide.zeros(2, 3)}))
    assert.equal("{}", repl.format({}))
    local long = {}
    for i = 1, 30 do long["key" .. i] = i end
    local s = repl.format(long)
    assert.matches("^{\n  key1 = 1,\n  key10 = 10,\n", s)
    local many = {}
    for i = 1, 100 do many[i] = i end
    assert.matches("%.%.%. %(60 more%)", repl.format(many))
  end)

  it("uses __tostring for tensors and objects", function()
    local t = tide.ones(2)
    assert.equal(tostring(t), repl.format(t))
    local obj = setmetatable({}, {__tostring = function() return "<obj>" end})
    assert.equal("<obj>", repl.format(obj))
    assert.equal("hello", repl.format("hello"))
  end)

  it("completes globals, keywords, fields and tide functions", function()
    assert.same({"print("}, repl.complete("prin"))
    assert.same({"repeat", "require(", "return"}, repl.complete("re"))
    _G.tide = tide
    local z = repl.complete("tide.ze")
    _G.tide = nil
    assert.same({"tide.zeros(", "tide.zeros_like("}, z)
    assert.same({"string.format("}, repl.complete("string.form"))
    assert.same({}, repl.complete("nosuchglobal.x"))
  end)

  it("walks __index tables and lists only callables after ':'", function()
    _G.obj = setmetatable({field = 1}, {__index = {method = function() end, value = 2}})
    assert.same({"obj.field", "obj.method(", "obj.value"}, repl.complete("obj."))
    assert.same({"obj:method("}, repl.complete("obj:"))
    _G.obj = nil
  end)

  it("lists a table's lazy fields (tide.fit) before their first use", function()
    local loads = 0
    _G.lz = setmetatable({}, {__lazy = {later = {"m", "later"}}, __index = function(t, k)
      if k ~= "later" then return nil end
      loads = loads + 1
      rawset(t, k, function() end)
      return t[k]
    end})
    assert.same({"lz.later("}, repl.complete("lz.la"))
    assert.equal(1, loads)
    _G.lz, _G.tide = nil, tide
    assert.same({"tide.fill_(", "tide.fit("}, repl.complete("tide.fi"))
    _G.tide = nil
  end)

  it("completes tensor methods and properties", function()
    _G.tt = tide.ones(2)
    local m = repl.complete("tt:ex")
    assert.truthy(m[1] == "tt:exp(")
    for _, c in ipairs(m) do assert.matches("^tt:ex", c) end
    assert.same({"tt.shape"}, repl.complete("tt.sha"))
    assert.same({"tt:reshape("}, repl.complete("tt:reshap"))
    _G.tt = nil
  end)
end)
