-- tests/lua/dist/fail.lua kill|error (run by dist_spec.lua under mpirun -np 2): rank 2 dies
-- (SIGKILL, or a Lua error) while rank 1 waits in a collective; rank 1 must not wait forever.
local tide = require "tide"
local dist = tide.dist
local rank = dist.init()
local t = tide.ones(1000)
for _ = 1, 5 do dist.allreduce(t, "mean") end
if rank == 2 then
  if arg[1] == "error" then error("rank 2 gives up") end
  local pid = io.open("/proc/self/stat"):read("n")
  os.execute("kill -9 " .. math.tointeger(pid))
end
local t0 = tide._clock()
while tide._clock() - t0 < 60 do dist.allreduce(t, "mean") end
print("rank " .. rank .. " was not stopped")
