-- tests/lua/convert_spec.lua: the one conversion rule (doc/tensor.md, t:to; tensor/convert.c):
-- Lua integers enter int64 tensors exactly, values that do not fit a dtype are errors naming
-- the function and the value, and tensor conversions follow PyTorch where it defines a result
-- (values printed by torch 1.13). Each case was silently wrong before.
local tide = require "tide"

local err = require("helpers").errmsg

local big = 9007199254740993 -- 2^53 + 1: no double holds it
local I64 = {dtype = "int64"}

describe("Lua integers into int64 tensors", function()
  it("are exact everywhere a value enters", function()
    assert.equal(math.maxinteger - 1, tide.full({1}, math.maxinteger - 1, I64):item())
    assert.equal(math.mininteger, tide.full({1}, math.mininteger, I64):item())
    assert.equal(big, tide.zeros(1, I64):fill_(big):item())
    assert.equal(big, tide.tensor({big}, I64):item())
    assert.equal(big, tide.full_like(tide.zeros(2, I64), big)[2])
    local t = tide.zeros(3, I64)
    t[2] = big
    t[{{3}}] = big
    assert.same({0, big, big}, t:totable())
    local m = tide.zeros(2, I64):masked_fill(tide.tensor({true, false}), big)
    assert.same({big, 0}, m:totable())
    assert.same({big + 1}, (tide.tensor({big}, I64) + 1):totable())
    assert.same({false, true}, tide.tensor({big, big - 1}, I64):eq(big - 1):totable())
    assert.same({true}, tide.tensor({math.maxinteger}, I64):gt(math.maxinteger - 1):totable())
    assert.same({big}, tide.zeros(1, I64):add_(big):totable())
    local ext = tide.tensor({math.maxinteger, math.mininteger, 5}, I64)  -- clamp's bounds
    assert.same({math.maxinteger - 1, math.mininteger + 1, 5},
                ext:clamp(math.mininteger + 1, math.maxinteger - 1):totable())
    assert.same({big, big, 5}, tide.tensor({big + 7, big, 5}, I64):clamp(nil, big):totable())
  end)
end)

describe("values that do not fit", function()
  it("are errors naming the function, the value and the dtype", function()
    local U8 = {dtype = "uint8"}
    assert.matches("tensor: value 256 does not fit dtype uint8 %(0%.%.255",
                   err(tide.tensor, {256}, U8))
    assert.matches("tensor: value 1e%+30 does not fit dtype uint8", err(tide.tensor, {1e30}, U8))
    assert.matches("full: value nan does not fit dtype int64", err(tide.full, {1}, 0 / 0, I64))
    assert.matches("fill_: value 256 does not fit", err(function() tide.zeros(1, U8):fill_(256) end))
    assert.matches("fill_: value inf does not fit dtype int64",
                   err(function() tide.zeros(1, I64):fill_(math.huge) end))
    assert.matches("index assignment: value %-256 does not fit",
                   err(function() local u = tide.zeros(2, U8); u[1] = -256 end))
    assert.matches("masked_fill: value 300 does not fit", err(function()
      tide.zeros(2, U8):masked_fill(tide.tensor({true, false}), 300) end))
    assert.matches("tensor: value 1e%+300 does not fit dtype float32",
                   err(tide.tensor, {1e300}))
    assert.matches("arange: value 256 does not fit dtype uint8", err(tide.arange, 250, 256, U8))
  end)

  it("as PyTorch: -1..-255 wrap into uint8, floats truncate, anything is a bool", function()
    local U8 = {dtype = "uint8"}
    assert.same({255, 1}, tide.tensor({-1, -255}, U8):totable())
    assert.same({255}, tide.zeros(1, U8):fill_(-1):totable())
    assert.same({2, -2}, tide.tensor({2.7, -2.7}, I64):totable())
    assert.same({true, true, false}, tide.tensor({2.5, 0 / 0, 0}, {dtype = "bool"}):totable())
    assert.same({45}, (tide.tensor({1}, U8) + 300):totable()) -- u8 + 300 wraps, as in PyTorch
  end)

  it("int8 by the same rule: -128..127 for numbers, wrapping between tensors", function()
    local I8 = {dtype = "int8"}
    assert.same({-128, 127, -2}, tide.tensor({-128, 127, -2.7}, I8):totable())
    assert.matches("tensor: value 128 does not fit dtype int8 %(%-128%.%.127%)",
                   err(tide.tensor, {128}, I8))
    assert.matches("fill_: value %-129 does not fit dtype int8",
                   err(function() tide.zeros(1, I8):fill_(-129) end))
    assert.matches("masked_fill: value 200 does not fit", err(function()
      tide.zeros(2, I8):masked_fill(tide.tensor({true, false}), 200) end))
    -- torch.tensor([300, -200, 255]).to(torch.int8) -> [44, 56, -1]
    assert.same({44, 56, -1}, tide.tensor({300, -200, 255}, I64):to("int8"):totable())
    assert.same({255}, tide.tensor({-1}, I8):to("uint8"):totable())
    assert.matches("float32 values cannot be converted to int8: 128 is out of range",
                   err(function() return tide.tensor({1.5, 128}):to("int8") end))
  end)
end)

describe("tensor to tensor", function()
  it("wraps integers and refuses floats an integer dtype cannot hold", function()
    assert.same({0, 255, 44}, tide.tensor({256, -1, 300}, I64):to("uint8"):totable())
    assert.same({255, 0}, tide.tensor({255.9, -0.5}):to("uint8"):totable())
    assert.matches("to: float32 values cannot be converted to int64: nan is not a number",
                   err(function() return tide.tensor({1, 0 / 0}):to("int64") end))
    assert.matches("to: float64 values cannot be converted to int64: 1e%+30 is out of range",
                   err(function() return tide.tensor({1e30}, {dtype = "float64"}):long() end))
    assert.matches("uint8: %-1%.5 is out of range",
                   err(function() return tide.tensor({-1.5}):to("uint8") end))
    local dst = tide.tensor({7, 8}, I64)
    assert.matches("copy_: float32 values cannot be converted to int64",
                   err(function() dst:copy_(tide.tensor({1, math.huge})) end))
    assert.same({7, 8}, dst:totable())                          -- nothing was written
    assert.equal(math.huge, tide.tensor({1e300}, {dtype = "float64"}):float():item())
  end)
end)
