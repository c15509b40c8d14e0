-- tests/lua/cli_spec.lua: the `tide` program's command line (doc/program.md), run as a
-- subprocess; and `require "tide"` from stock lua5.4 the way README.md says.
local H = require "helpers"
local BUILD = os.getenv("TIDE_BUILD") or "build"
local TIDE = BUILD .. "/tide"

local q = H.q
local tmpname = H.tmpname
local write = H.write
local slurp = H.slurp

-- runs a shell command line; returns stdout, stderr, exit status
local function run(cmd)
  local errf = tmpname()
  local p = io.popen(cmd .. " 2>" .. errf)
  local out = p:read("a")
  local _, _, code = p:close()
  local err = slurp(errf) or ""
  os.remove(errf)
  return out, err, code
end

local function tide(args) return run(TIDE .. " " .. args) end

describe("tide", function()
  it("runs -e statements in order and exits 0", function()
    local out, err, code = tide("-e " .. q("x = 40") .. " -e " .. q("print(x + 2)"))
    assert.equal("42\n", out)
    assert.equal("", err)
    assert.equal(0, code)
  end)

  it("prints its version with -v", function()
    local out, _, code = tide("-v")
    assert.matches("^tide %d+%.%d+ %(Lua 5%.4%.%d+%)\n$", out)
    assert.equal(0, code)
  end)

  it("runs a script with arg and ... set as lua does", function()
    local script = tmpname() .. ".lua"
    write(script, [[
      print(select("#", ...), ...)
      print(arg[0], arg[1], arg[2], arg[-1], #arg)
    ]])
    local out, err, code = tide(q(script) .. " a 'b c'")
    os.remove(script)
    assert.equal("", err)
    assert.equal(0, code)
    assert.equal(("2\ta\tb c\n%s\ta\tb c\t%s\t2\n"):format(script, TIDE), out)
  end)

  it("exits non-zero with the message and a traceback on stderr", function()
    local script = tmpname() .. ".lua"
    write(script, "local function inner() error('boom') end\nlocal function outer() inner() end\n"
      .. "outer()\nprint('not reached')\n")
    local out, err, code = tide(q(script))
    os.remove(script)
    assert.equal("", out)
    assert.equal(1, code)
    assert.matches("^tide: [^\n]*%.lua:1: boom\nstack traceback:\n", err)
    assert.matches("%.lua:1: in [%w ]*'inner'", err)
    assert.matches("%.lua:2: in [%w ]*'outer'", err)
  end)

  it("reports a missing script and exits 1", function()
    local _, err, code = tide("/nonexistent/x.lua")
    assert.equal(1, code)
    assert.matches("cannot open /nonexistent/x.lua", err, 1, true)
  end)

  it("refuses binary chunks (text mode only)", function()
    local chunk = tmpname()
    write(chunk, string.dump(function() print("ran bytecode") end))
    local out, err, code = tide(q(chunk))
    os.remove(chunk)
    assert.equal("", out)
    assert.equal(1, code)
    assert.matches("binary chunk", err)
  end)

  it("runs stdin with '-' and passes the arguments after it", function()
    local out, _, code = run("echo 'print(\"stdin\", ...)' | " .. TIDE .. " - x y")
    assert.equal("stdin\tx\ty\n", out)
    assert.equal(0, code)
  end)

  it("runs stdin as a script when it is not a terminal and there are no arguments", function()
    local out, _, code = run("printf 'x = 6\\nprint(x * 7)\\n' | " .. TIDE)
    assert.equal("42\n", out)
    assert.equal(0, code)
  end)

  it("fails when a statement from stdin fails", function()
    local _, err, code = run("echo 'error(\"bad input\")' | " .. TIDE)
    assert.equal(1, code)
    assert.matches("bad input", err)
  end)

  it("sets the thread count with --threads N and --threads=N", function()
    local cpus = tonumber((run("nproc")))
    local out, err = tide("--threads 3 -e " .. q("print(tide.get_num_threads())"))
    assert.equal(math.min(3, cpus) .. "\n", out) -- capped at the CPUs, saying so
    if cpus < 3 then assert.matches("--threads 3: this machine has " .. cpus .. " CPUs", err) end
    assert.equal("1\n", (tide("--threads=1 -e " .. q("print(tide.get_num_threads())"))))
    -- the option applies before -e statements written ahead of it
    assert.equal(math.min(2, cpus) .. "\n",
                 (tide("-e " .. q("print(tide.get_num_threads())") .. " --threads 2")))
  end)

  it("rejects a bad --threads value and unknown options with status 1", function()
    local _, err, code = tide("--threads 0 -e 'print(1)'")
    assert.equal(1, code)
    assert.matches("--threads expects a positive number, got '0'", err, 1, true)
    _, _, code = tide("--threads -e 'print(1)'")
    assert.equal(1, code)
    _, err, code = tide("--frobnicate")
    assert.equal(1, code)
    assert.matches("unrecognized option '--frobnicate'", err, 1, true)
    assert.matches("usage: tide", err, 1, true)
  end)

  it("requires a module into a global with -l", function()
    local dir = tmpname()
    os.execute("mkdir -p " .. q(dir))
    write(dir .. "/clitestmod.lua", "return {answer = 42}")
    local out, _, code = run("LUA_PATH=" .. q(dir .. "/?.lua;;") .. " " .. TIDE
      .. " -l clitestmod -e " .. q("print(clitestmod.answer)"))
    os.execute("rm -rf " .. q(dir))
    assert.equal("42\n", out)
    assert.equal(0, code)
  end)

  it("enters the REPL after a script with -i", function()
    local script = tmpname() .. ".lua"
    write(script, "x = 20\n")
    local out, _, code = run("printf 'x * 2 + 2\\n' | " .. TIDE .. " -i " .. q(script))
    os.remove(script)
    assert.equal(0, code)
    assert.matches("^tide [^\n]*\n", out) -- -i shows the version, as lua -i does
    assert.matches("\n?> 42\n", out)
  end)

  it("starts with tide loaded and the rest of the stdlib left for first use", function()
    local out = tide("-e " .. q([[
      local loaded = {}
      for _, m in ipairs{"tide.nn", "tide.optim", "tide.data", "tide.plot", "tide.models",
                         "tide.help", "tide.repl"} do
        if package.loaded[m] then loaded[#loaded + 1] = m end
      end
      print(type(tide), type(tide.zeros), #loaded, rawget(_G, "help") == nil)
      print(type(help), rawget(_G, "help") == help)
    ]]))
    assert.equal("table\tfunction\t0\ttrue\ntable\ttrue\n", out)
  end)
end)

describe("require 'tide' from stock lua5.4", function()
  local env = "LUA_PATH='stdlib/?.lua;stdlib/?/init.lua;;' LUA_CPATH=" .. q(BUILD .. "/lua/?.so;;")

  it("loads the C core as a module and computes", function()
    local out, err, code = run(env .. " lua5.4 -e " .. q([[
      local tide = require "tide"
      print(tide.ones(2, 3):sum():item(), tide.ones(1):exp():item() > 2.7)
      print(package.searchpath("tide.core", package.cpath))
    ]]))
    assert.equal("", err)
    assert.equal(0, code)
    assert.matches("^6%.?0?\t", out)
    assert.matches("\n" .. BUILD:gsub("%p", "%%%0") .. "/lua/tide/core%.so\n$", out)
  end)

  it("gives the same globals-free API: nothing is set in _G", function()
    local out = run(env .. " lua5.4 -e " .. q([[
      require "tide"
      print(rawget(_G, "tide"), rawget(_G, "help"), getmetatable(_G))
    ]]))
    assert.equal("nil\tnil\tnil\n", out)
  end)
end)
