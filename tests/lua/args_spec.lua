-- tests/lua/args_spec.lua: tide.args, the command-line options of scripts and examples.
local tide = require "tide"
local err = require("helpers").err

describe("tide.args", function()
  local D = {epochs = 5, lr = 0.1, plot = "loss.png", smoke = false}

  it("keeps the defaults when no argument is given", function()
    assert.same(D, tide.args(D, {}))
  end)

  it("parses values by the default's type and flags for booleans", function()
    local o = tide.args(D, {"--lr", "1e-3", "--plot", "x.svg", "--smoke", "--epochs", "12"})
    assert.same({epochs = 12, lr = 1e-3, plot = "x.svg", smoke = true}, o)
    assert.equal(5, D.epochs) -- the defaults table is not modified
  end)

  it("reads the script's arg by default", function()
    local saved = _G.arg
    _G.arg = {[0] = "s.lua", "--epochs", "3"}
    local o = tide.args(D)
    _G.arg = saved
    assert.equal(3, o.epochs)
  end)

  it("refuses unknown arguments, missing values and bad numbers", function()
    err("tide.args: unknown argument '--epoch' (options: --epochs --lr --plot --smoke)",
        tide.args, D, {"--epoch", "3"})
    err("unknown argument 'extra'", tide.args, D, {"extra"})
    err("tide.args: --lr needs a value", tide.args, D, {"--lr"})
    err("--lr expects a number, got 'fast'", tide.args, D, {"--lr", "fast"})
    err("tide.args: expected a table of defaults, got number", tide.args, 5)
  end)
end)
