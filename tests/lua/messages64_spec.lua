-- tests/lua/messages64_spec.lua: messages about values past 32 bits print them in full (they
-- were cast to int: 4294967299 came out as 3), an empty .npy whose other dims multiply past
-- 2^64 loads (it was said to need 2^64 bytes), and a U64 value beyond int64 names the file.
local tide = require "tide"
local H = require "helpers"

local err = require("helpers").errmsg

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)

local write = H.write

-- a .npy v1.0 file: magic, version, header length, the header dict padded to 64, the data
local function npy(path, descr, shape, data)
  local h = string.format("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)
  h = h .. string.rep(" ", 63 - (10 + #h) % 64) .. "\n"
  write(path, "\x93NUMPY\x01\x00" .. string.pack("<I2", #h) .. h .. (data or ""))
end

describe("messages past 32 bits", function()
  it("print positions and dims in full", function()
    local a = tide.zeros(3)
    local big = 4294967299 -- 2^32 + 3, which an int cast made 3
    assert.matches("narrow: start 4294967299 out of range", err(function() return a:narrow(1, big, 1) end))
    assert.matches("select: index 4294967299 out of range", err(function() return a:select(1, big) end))
    assert.matches("index: index 4294967299 out of range for dim 1 of size 3", err(function() return a[big] end))
    assert.matches("range {1, 4294967299} out of range", err(function() return a[{{1, big}}] end))
    assert.matches("sum: dim 4294967299 out of range", err(function() return a:sum(big) end))
    assert.matches("unsqueeze: dim 4294967299 out of range", err(function() return a:unsqueeze(big) end))
    assert.matches("permute: dim 4294967299 out of range", err(function() return a:permute(big) end))
  end)
end)

describe(".npy and safetensors sizes", function()
  it("load an empty array whose other dims multiply past 2^64", function()
    npy(dir .. "/e.npy", "<f4", "(4294967296, 4294967296, 0)")
    local t = tide.load_npy(dir .. "/e.npy")
    assert.same({4294967296, 4294967296, 0}, {t:size(1), t:size(2), t:size(3)})
    assert.equal(0, t:numel())
  end)

  it("name the file when a U64 value does not fit int64", function()
    npy(dir .. "/u.npy", "<u8", "(3,)", string.pack("<I8I8I8", 1, -1, 3))
    assert.matches("npy: " .. dir:gsub("%p", "%%%0") .. "/u%.npy: value 18446744073709551615 at element 1 does not fit int64",
                   err(tide.load_npy, dir .. "/u.npy"))
    local h = '{"w":{"dtype":"U64","shape":[2],"data_offsets":[0,16]}}'
    h = h .. string.rep(" ", (8 - #h % 8) % 8)
    write(dir .. "/u.safetensors", string.pack("<I8", #h) .. h .. string.pack("<I8I8", 5, -1))
    assert.matches("safetensors: " .. dir:gsub("%p", "%%%0") .. "/u%.safetensors: tensor 'w': value 18446744073709551615 at element 1",
                   err(tide.load, dir .. "/u.safetensors"))
  end)

  teardown(function() os.execute("rm -rf " .. dir) end)
end)
