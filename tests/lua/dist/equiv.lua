-- tests/lua/dist/equiv.lua (run by dist_spec.lua under mpirun -np 2): DataParallel on 2 ranks
-- with batch 32 each must train the same parameters as one process with batch 64, for SGD and
-- Adam, 20 steps each, with one frozen parameter, in one bucket and in one bucket per tensor.
local tide = require "tide"
local nn, optim = require "tide.nn", require "tide.optim"
local dist = tide.dist
local rank, size = dist.init()
assert(size == 2, "run with mpirun -np 2")

local function model(seed)
  tide.manual_seed(seed)
  local m = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(),
                          nn.Linear(32, 10))
  m[3].bias.requires_grad = false -- frozen: DataParallel leaves it out
  return m
end

tide.manual_seed(42)
local X, Y = tide.randn(20 * 64, 20), tide.randint(1, 10, {20 * 64})
local loss = nn.CrossEntropyLoss()

local function train(m, make_opt, rows, first)
  local opt = make_opt(m:parameters())
  for k = 1, 20 do
    local at = (k - 1) * 64 + first
    opt:zero_grad()
    loss(m(X:narrow(1, at, rows)), Y:narrow(1, at, rows)):backward()
    opt:step()
  end
  return m
end

local function maxdiff(a, b)
  local d = 0
  for i, p in ipairs(a:parameters()) do
    d = math.max(d, (p - b:parameters()[i]):abs():max():item())
  end
  return d
end

local opts = {
  SGD = function(ps) return optim.SGD(ps, {lr = 0.1, momentum = 0.9}) end,
  Adam = function(ps) return optim.Adam(ps, {lr = 1e-2}) end,
}
for _, name in ipairs({"SGD", "Adam"}) do
  for _, mb in ipairs({25, 1e-6}) do
    local ref = train(model(7), opts[name], 64, 1)  -- rank 1's initial weights, whole batches
    local ddp = dist.DataParallel(model(7 * rank), {bucket_mb = mb}) -- ranks start apart
    train(ddp, opts[name], 32, (rank - 1) * 32 + 1)
    local d, st = maxdiff(ddp.module, ref), ddp.reducer:stats()
    assert(d < 2e-5, ("%s, bucket_mb %g: rank %d is off the one-process run by %g"):format(
           name, mb, rank, d))
    local frozen = ddp.module[3].bias
    assert(frozen.grad == nil, "the frozen bias got a gradient")
    assert((frozen - ref[3].bias):abs():max():item() == 0, "the frozen bias moved")
    if mb < 1 then
      assert(st.buckets == 5 and st.overlapped >= 3, ("expected 5 buckets, most started " ..
             "during backward, got %d buckets, %d started early"):format(st.buckets, st.overlapped))
    else
      assert(st.buckets == 1, "expected one bucket, got " .. st.buckets)
    end
    print(("equiv %s bucket_mb %g rank %d: max diff %.3g, %d buckets, %d overlapped"):format(
          name, mb, rank, d, st.buckets, st.overlapped))
  end
end
print("equiv ok rank " .. rank)
