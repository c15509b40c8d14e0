-- tests/lua/dist/collectives.lua (run by dist_spec.lua under mpirun -np 2, over shared memory
-- and over tcp): each collective against values worked out by hand, and the errors every rank
-- must raise together.
local tide = require "tide"
local dist = tide.dist
local rank, size = dist.init()
assert(size == 2 and dist.size() == 2 and dist.rank() == rank, "run with mpirun -np 2")
assert(dist.is_initialized())

local function same(t, want, what)
  local got = t:totable()
  for i = 1, #want do
    assert(got[i] == want[i], ("%s on rank %d: element %d is %s, expected %s"):format(what,
           rank, i, tostring(got[i]), tostring(want[i])))
  end
end

local function err(pattern, f, ...)
  local ok, msg = pcall(f, ...)
  assert(not ok, "expected an error: " .. pattern)
  assert(tostring(msg):find(pattern, 1, true), ("rank %d: error was %s"):format(rank, msg))
end

-- rank 1 holds {1, 2, 3.5}, rank 2 holds {10, -20, 30.5}
local function v(dtype)
  local vals = rank == 1 and {1, 2, 3.5} or {10, -20, 30.5}
  if dtype == "int64" then vals = rank == 1 and {1, 2, 3} or {10, -20, 30} end
  return tide.tensor(vals, {dtype = dtype})
end
for _, dt in ipairs({"float32", "float64"}) do
  same(dist.allreduce(v(dt), "sum"), {11, -18, 34}, dt .. " sum")
  same(dist.allreduce(v(dt)), {11, -18, 34}, dt .. " sum by default")
  same(dist.allreduce(v(dt), "mean"), {5.5, -9, 17}, dt .. " mean")
  same(dist.allreduce(v(dt), "max"), {10, 2, 30.5}, dt .. " max")
  same(dist.allreduce(v(dt), "min"), {1, -20, 3.5}, dt .. " min")
  same(dist.broadcast(v(dt), 2), {10, -20, 30.5}, dt .. " broadcast from 2")
  same(dist.broadcast(v(dt)), {1, 2, 3.5}, dt .. " broadcast from 1")
end
same(dist.allreduce(v("int64"), "sum"), {11, -18, 33}, "int64 sum")
same(dist.allreduce(v("int64"), "max"), {10, 2, 30}, "int64 max")
same(dist.allreduce(v("int64"), "min"), {1, -20, 3}, "int64 min")
same(dist.broadcast(v("int64"), 2), {10, -20, 30}, "int64 broadcast")

-- in place: the same tensor comes back, its values changed
local t = v("float32")
assert(rawequal(dist.allreduce(t, "sum"), t), "allreduce returns its argument")
same(t, {11, -18, 34}, "in place")

-- allgather: size x shape, row r from rank r
local g = dist.allgather(tide.tensor({{rank, 2 * rank}, {3 * rank, 4 * rank}}, {dtype = "int64"}))
assert(table.concat(g.shape, "x") == "2x2x2" and g.dtype == "int64", "allgather shape/dtype")
same(g:reshape(-1), {1, 2, 3, 4, 2, 4, 6, 8}, "allgather")
same(dist.allgather(tide.tensor(rank * 1.5)), {1.5, 3}, "allgather of a scalar")

-- a big tensor (many segments of the algorithms): 2^20 floats
local big = tide.full({1048576}, rank)
dist.allreduce(big, "sum")
assert(big:min():item() == 3 and big:max():item() == 3, "big allreduce")
dist.barrier()

-- differences between the ranks: an error on every rank, naming both
err("the ranks disagree: rank 1 has float32 of shape 3, op \"sum\", rank 2 has float32 of " ..
    "shape 4", dist.allreduce, tide.zeros(2 + rank), "sum")
err("rank 2 has float64 of shape 3", dist.broadcast, tide.zeros(3, {dtype = rank == 1 and
    "float32" or "float64"}))
err("op \"mean\", rank 2 has float32 of shape 2, op \"max\"", dist.allreduce, tide.zeros(2),
    rank == 1 and "mean" or "max")
err("root 1, rank 2 has float32 of shape 2, root 2", dist.broadcast, tide.zeros(2), rank)
err("rank 1 has float32 of shape 2x1, rank 2 has int64 of shape 2x2", dist.allgather, tide.zeros(2, rank, {dtype = rank == 1 and
    "float32" or "int64"}))
-- bad arguments (raised before any message, the same on both ranks here)
err("dist.allreduce: unknown op 'avg'", dist.allreduce, tide.zeros(2), "avg")
err("dist.broadcast: root must be a rank from 1 to 2, got 3", dist.broadcast, tide.zeros(2), 3)
err("dist.broadcast: root must be a rank from 1 to 2, got 0", dist.broadcast, tide.zeros(2), 0)
err("dist.allreduce: the tensor is not contiguous", dist.allreduce, tide.zeros(2, 3):t())
err("dist.allgather: expected a float32, float64 or int64 tensor, got bool", dist.allgather,
    tide.zeros(2):eq(0))
err("\"mean\" needs a float tensor, got int64", dist.allreduce, tide.zeros(2, {dtype = "int64"}),
    "mean")
-- the world still works after the errors
same(dist.allreduce(tide.tensor({rank}), "sum"), {3}, "after errors")
dist.finalize()
assert(not dist.is_initialized())
err("dist.rank: call dist.init() first", dist.rank)
err("MPI cannot start twice", dist.init)
print("collectives ok rank " .. rank)
