-- bench/allreduce.lua (under mpirun -np 2): the gradient allreduce of a 10 M-parameter model,
-- dist.allreduce(g, "mean") of 10^7 float32, against allreduce.c's raw MPI_Allreduce of the
-- same bytes. Prints GB/s as bytes of the tensor per second (osu's convention), the median of
-- 7 samples of 5 calls each after 3 warm-up calls; rank 1 reports.
-- Usage: mpirun -np 2 [--mca btl self,tcp] tide bench/allreduce.lua [N]
local B = dofile(((arg[0]):match("^(.*)/") or ".") .. "/common.lua")
local dist = tide.dist
local rank, size = dist.init()
local n = math.tointeger(tonumber(arg[1] or "10000000"))
local g = tide.ones(n)
for _ = 1, 3 do dist.allreduce(g, "mean") end
local secs = {}
for s = 1, B.SAMPLES do
  dist.barrier()
  local t0 = B.now()
  for _ = 1, 5 do dist.allreduce(g, "mean") end
  secs[s] = (B.now() - t0) / 5
end
assert(g:max():item() == 1 and g:min():item() == 1, "allreduce: wrong mean")
local med = B.median(secs)
if rank == 1 then
  B.result("allreduce_10m", 4 * n / med / 1e9, "GB/s", {elements = n, ranks = size,
    ms = string.format("%.2f", med * 1000)})
end
