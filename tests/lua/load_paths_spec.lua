-- tests/lua/load_paths_spec.lua: every reader of a path (tide.load, tide.load_npy,
-- tide.checkpoint.load, data.idx) opens it without blocking and refuses what is not a regular
-- file by name: a FIFO must not hang open() (it did, past Ctrl-C), /dev/zero must not report a
-- stale errno ("No such file or directory"). Each load runs in a child with a time limit.
local BUILD = os.getenv("TIDE_BUILD") or "build"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)

-- runs `expr` (a load of path P) in a child lua5.4; its pcall message, or "HUNG"
local function load_in_child(expr, path)
  local script = dir .. "/child.lua"
  local f = assert(io.open(script, "w"))
  f:write(string.format([[
package.path = "stdlib/?.lua;stdlib/?/init.lua;" .. package.path
package.cpath = %q .. "/lua/?.so;" .. package.cpath
local tide = require "tide"
local P = %q
local ok, msg = pcall(function() return %s end)
io.write(ok and "OK" or tostring(msg))
]], BUILD, path, expr))
  f:close()
  local p = io.popen("timeout 20 lua5.4 " .. script .. " 2>&1; echo \" rc=$?\"")
  local out = p:read("a")
  p:close()
  return out:find("rc=124") and "HUNG" or out
end

local loads = {
  "tide.load(P)", "tide.load_npy(P)", "tide.checkpoint.load(P)", "require('tide.data').idx(P)",
}

describe("loading from a path", function()
  it("refuses a FIFO at once instead of hanging", function()
    local fifo = dir .. "/fifo"
    assert.is_true(os.execute("mkfifo " .. fifo))
    for _, e in ipairs(loads) do
      local msg = load_in_child(e, fifo)
      assert.matches("cannot read '" .. fifo:gsub("%p", "%%%0") .. "': not a regular file %(a FIFO%)",
                     msg, nil, false, e)
    end
  end)

  it("names a device, a directory and a missing file for what they are", function()
    for _, e in ipairs(loads) do
      assert.matches("not a regular file %(a character device%)", load_in_child(e, "/dev/zero"),
                     nil, false, e)
      assert.matches("is a directory", load_in_child(e, dir), nil, false, e)
      assert.matches("No such file or directory", load_in_child(e, dir .. "/none"), nil, false, e)
    end
  end)

  teardown(function() os.execute("rm -rf " .. dir) end)
end)
