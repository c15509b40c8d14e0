-- tests/lua/help_spec.lua: help() and its doc parser (stdlib/tide/help.lua) on a made-up doc
-- directory and on the real doc/, from stock lua5.4, from build/tide and from an install layout.
local tide = require "tide"
local help = require "tide.help"
local H = require "helpers"
local BUILD = os.getenv("TIDE_BUILD") or "build"

local q = H.q
local write = H.write
local tmpdir = H.tmpdir
local run = H.run

local PAGE = [[
# Math

Elementwise math on tensors.

## Elementwise

### t:exp() · tide.exp(t)
e raised to each element.
```lua
# not a heading: inside a fence
print(tide.tensor{0}:exp())   --> 1
```

### `tide.zeros(...)` · tide.zeros_like(t)
A tensor of zeros.
```lua
print(tide.zeros(2))
```

### nn.F.relu(x)
max(x, 0), functional form.
```lua
print(1)
```
]]

local README = [[
# tide reference

| page | what |
|---|---|
| [math.md](math.md) | elementwise math |
| [missing.md](missing.md) | a page that does not exist |
]]

describe("help.parse", function()
  it("splits a page into its intro, sections and entries with names", function()
    local doc = help.parse(PAGE, "math.md")
    assert.equal("Math", doc.title)
    assert.equal(3, #doc.entries)
    local e = doc.entries[1]
    assert.same({"t:exp()", "tide.exp(t)"}, e.sigs)
    assert.same({"t:exp", "tide.exp"}, e.names)
    -- a '#' line inside a code fence belongs to the entry
    assert.truthy(table.concat(e.body, "\n"):find("# not a heading", 1, true))
    assert.same({"tide.zeros", "tide.zeros_like"}, doc.entries[2].names)
    assert.same({"nn.F.relu"}, doc.entries[3].names)
    assert.equal("Elementwise", doc.sections[1].title)
  end)
end)

describe("help on a doc directory", function()
  local dir
  setup(function()
    dir = tmpdir()
    write(dir .. "/README.md", README)
    write(dir .. "/math.md", PAGE)
    help.load(dir)
  end)
  teardown(function()
    os.execute("rm -rf " .. q(dir))
    help.load()
  end)

  it("lists the pages that exist with help()", function()
    local s = help.text()
    assert.matches("help%(x%) shows", s)
    assert.matches("\n  math +elementwise math", s)
    assert.not_matches("missing", s)
  end)

  it("finds an entry by full name, method name, short name and tide.Tensor spelling", function()
    for _, topic in ipairs{"tide.exp", "t:exp", "exp", "t.exp", "Tensor:exp", "tide.Tensor.exp"} do
      local s = help.text(topic)
      assert.matches("^t:exp%(%) \u{B7} tide%.exp%(t%)    %(doc/math%.md%)\ne raised", s)
      -- code is shown indented, without the fences
      assert.matches("\n    print%(tide%.tensor{0}:exp%(%)%)", s)
      assert.not_matches("```", s)
    end
    assert.matches("^nn%.F%.relu%(x%)", help.text("relu"))
    assert.matches("^tide%.zeros%(%.%.%.%)", help.text("zeros_like"))
  end)

  it("maps function values to their names through tide and tide.Tensor", function()
    assert.matches("^t:exp%(%)", help.text(tide.exp))
    assert.matches("^t:exp%(%)", help.text(tide.Tensor.exp))
    assert.matches("^tide%.zeros", help.text(tide.zeros))
  end)

  it("describes modules, tensors and pages", function()
    local s = help.text(tide)
    assert.matches("^tide: 3 documented names", s)
    assert.matches("tide%.exp", s)
    assert.matches("without an entry yet:.*tide%.ones", s)
    assert.matches("^Tensor methods: 1 documented names", help.text(tide.ones(2)))
    local page = help.text("math")
    assert.matches("^Math    %(doc/math%.md%)\nElementwise math on tensors%.", page)
    assert.matches("entries:\n  t:exp%(%) \u{B7} tide%.exp%(t%)\n", page)
    assert.equal(page, help.text("math.md"))
  end)

  it("suggests near names for an unknown topic", function()
    local s = help.text("exq")
    assert.matches("^help: no entry for 'exq'%. Did you mean: [^\n]*exp", s)
    assert.matches("help%(%) lists the pages", s)
    assert.matches("Did you mean: [^\n]*zeros", help.text("zeroes"))
  end)

  it("says what it got for nil and for values outside tide", function()
    assert.matches("got nil", help.text(nil))
    assert.matches("not part of tide", help.text(print))
    assert.matches("not part of tide", help.text(coroutine.create(print)))
  end)

  it("prints through help(x) and returns nothing", function()
    local path, real = os.tmpname(), io.output()
    io.output(path)
    local n = select("#", help("exp"))
    io.output():close()
    io.output(real)
    local f = assert(io.open(path))
    local got = f:read("a")
    f:close()
    os.remove(path)
    assert.equal(0, n)
    assert.matches("^t:exp%(%)", got)
  end)
end)

describe("help's doc directory", function()
  it("is the checkout's doc/ under stock lua5.4", function()
    local d = help.docdir()
    assert.truthy(d and d:match("stdlib/%.%./doc$"), d)
    assert.truthy(io.open(d .. "/program.md"))
    help.load()
    assert.matches("^help%(x%) \u{B7} help%(%)    %(doc/program%.md%)", help.text("help"))
    assert.matches("^The REPL", help.text("repl"))
  end)

  it("is found by build/tide from its own location", function()
    local out, code = run("cd / && " .. q(os.getenv("PWD") .. "/" .. BUILD .. "/tide")
      .. " -e " .. q("help('help')"))
    assert.equal(0, code, out)
    assert.matches("^help%(x%) \u{B7} help%(%)", out)
  end)

  it("is PREFIX/share/doc/tide in an installed layout, for tide and for lua5.4", function()
    local root = tmpdir()
    os.execute(("mkdir -p %s/bin %s/share/lua/5.4 %s/share/doc/tide %s/lib/lua/5.4/tide"):format(
      q(root), q(root), q(root), q(root)))
    os.execute(("cp %s/tide %s/bin/ && cp -r stdlib/tide %s/share/lua/5.4/ && cp -r doc/. %s/"
      .. "share/doc/tide/ && cp %s/lua/tide/core.so %s/lib/lua/5.4/tide/"):format(
      q(BUILD), q(root), q(root), q(root), q(BUILD), q(root)))
    local probe = "local h = require 'tide.help'; print(h.docdir()); print(h.text('_PROMPT'))"
    local out, code = run("cd / && " .. q(root .. "/bin/tide") .. " -e " .. q(probe))
    assert.equal(0, code, out)
    assert.matches("^" .. root:gsub("%p", "%%%0") .. "/[^\n]*share/lua/5%.4/%.%./%.%./doc/tide\n_PROMPT", out)
    out, code = run(("cd / && LUA_PATH=%s LUA_CPATH=%s lua5.4 -e %s"):format(
      q(root .. "/share/lua/5.4/?.lua;" .. root .. "/share/lua/5.4/?/init.lua"),
      q(root .. "/lib/lua/5.4/?.so"), q(probe)))
    os.execute("rm -rf " .. q(root))
    assert.equal(0, code, out)
    assert.matches("/doc/tide\n_PROMPT \u{B7} _PROMPT2", out)
  end)
end)

describe("doc/program.md", function()
  it("has a lua example in every entry", function()
    local f = assert(io.open(help.docdir() .. "/program.md"))
    local doc = help.parse(f:read("a"), "program.md")
    f:close()
    assert.truthy(#doc.entries >= 3)
    for _, e in ipairs(doc.entries) do
      assert.truthy(#e.names > 0)
      assert.truthy(table.concat(e.body, "\n"):find("```lua", 1, true), e.sigs[1])
    end
  end)
end)
