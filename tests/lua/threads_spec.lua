-- tests/lua/threads_spec.lua: tide.set_num_threads caps at the CPUs and says so, and a thread
-- count the address-space limit cannot hold is an error, not OpenBLAS looping forever on its
-- buffer (it hung with 48 threads under ulimit -v). Children run with a time limit.
local tide = require "tide"
local BUILD = os.getenv("TIDE_BUILD") or "build"

local function child(ulimit_kb, code)
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(string.format([[
package.path = "stdlib/?.lua;stdlib/?/init.lua;" .. package.path
package.cpath = %q .. "/lua/?.so;" .. package.cpath
local tide = require "tide"
%s
]], BUILD, code))
  f:close()
  local limit = ulimit_kb and ("ulimit -v " .. ulimit_kb .. "; ") or ""
  local p = io.popen(limit .. "timeout 30 lua5.4 " .. script .. " 2>&1; echo \" rc=$?\"")
  local out = p:read("a")
  p:close()
  os.remove(script)
  return out
end

local function cpus()
  local p = io.popen("nproc")
  local n = tonumber(p:read("a"))
  p:close()
  return n
end

describe("tide.set_num_threads", function()
  it("caps at the CPUs, says so, and returns the count set", function()
    local n0 = tide.get_num_threads()
    assert.equal(1, tide.set_num_threads(1))
    assert.equal(1, tide.get_num_threads())
    tide.set_num_threads(n0)
    local out = child(nil, [[
local got = tide.set_num_threads(4096)
local a = tide.randn(300, 300, {dtype = "float64"})
io.write("got=", got, " now=", tide.get_num_threads(), " sum=", tostring(a:matmul(a):sum():item() == a:matmul(a):sum():item()))]])
    local n = cpus()
    assert.matches("4096 threads asked, this machine has " .. n .. " CPUs: using " .. n, out)
    assert.matches("got=" .. n .. " now=" .. n .. " sum=true rc=0", out, nil, true)
  end)

  it("refuses what the address-space limit cannot hold, and works with what it can", function()
    if cpus() < 2 then return end -- one CPU: every request is capped to a single thread
    if (os.getenv("LD_PRELOAD") or ""):find("asan") then return end -- ASan maps terabytes
    local out = child(600000, [[
print(pcall(tide.set_num_threads, 2))
local a = tide.randn(300, 300, {dtype = "float64"})
io.write("threads=", tide.get_num_threads(), " ok=", tostring(a:matmul(a):numel() == 90000))]])
    assert.matches("false.-set_num_threads: the address%-space limit %(ulimit %-v%) has no room for 2 threads", out)
    assert.matches("threads=1 ok=true rc=0", out, nil, true)
  end)
end)
