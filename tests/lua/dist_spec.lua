-- tests/lua/dist_spec.lua: tide.dist. Alone (a world of one, and MPI never loaded before
-- tide.dist is touched), then under `mpirun -np 2` with the scripts of tests/lua/dist/: the
-- collectives over shared memory and over tcp, DataParallel and tide.fit against one process,
-- and a rank that dies. mpirun runs as root here only with the variables of doc/dist.md.
local tide = require "tide"
local H = require "helpers"

local BUILD = os.getenv("TIDE_BUILD") or "build"
local TIDE = BUILD .. "/tide"
local MPIRUN = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " ..
               "OMPI_MCA_rmaps_base_oversubscribe=1 timeout 120 mpirun -np 2 "

local function run(cmd) -- output, exit code, seconds
  local t0 = tide._clock()
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code, tide._clock() - t0
end

local function libmpi_mapped(code)
  return run(TIDE .. " -e '" .. code .. " for l in io.lines(\"/proc/self/maps\") do " ..
             "if l:find(\"libmpi\", 1, true) then print(\"MPI\") break end end'")
end

describe("tide.dist alone", function()
  it("is not loaded by tide -e '' (start-up under 15 ms), and loads MPI on first use", function()
    assert.equal("", (libmpi_mapped("local _ = tide.nn, tide.fit")))
    assert.equal("MPI\n", (libmpi_mapped("local _ = tide.dist")))
    -- CPU seconds (user + sys), the best of 10: wall time on a shared machine is the others'
    local times = run("bash -c 'TIMEFORMAT=\"%3U %3S\"; for i in 1 2 3 4 5 6 7 8 9 10; do " ..
                      "time " .. TIDE .. " -e \"\"; done'")
    local best = math.huge
    for u, s in times:gmatch("([%d.]+) ([%d.]+)") do
      best = math.min(best, tonumber(u) + tonumber(s))
    end
    local limit = os.getenv("SANITIZE") and 0.5 or 0.015 -- make check: the sanitizers' start-up
    assert(best < limit, ("tide -e '' took %.1f ms at best"):format(best * 1000))
  end)

  it("makes a world of one without mpirun, where collectives keep the values", function()
    local dist = tide.dist
    if not dist.is_initialized() then H.err("dist.allreduce: call dist.init() first",
                                            dist.allreduce, tide.zeros(2)) end
    local rank, size = dist.init()
    assert.same({1, 1, 1, 1, true}, {rank, size, dist.rank(), dist.size(), dist.is_initialized()})
    local t = tide.tensor({1, -2, 3})
    for _, op in ipairs({"sum", "mean", "max", "min"}) do
      assert.same({1, -2, 3}, dist.allreduce(t, op):totable())
    end
    assert.same({1, -2, 3}, dist.broadcast(t, 1):totable())
    local g = dist.allgather(tide.tensor({{1, 2}}, {dtype = "int64"}))
    assert.same({{{1, 2}}}, g:totable())
    assert.equal("int64", g.dtype)
    dist.barrier()
    H.err("dist.broadcast: root must be a rank from 1 to 1, got 2", dist.broadcast, t, 2)
    H.err("dist.allreduce: unknown op 'prod' (expected \"sum\", \"mean\", \"max\" or \"min\")",
          dist.allreduce, t, "prod")
    H.err("dist.allreduce: the tensor is not contiguous", dist.allreduce, tide.zeros(2, 3):t())
    H.err("dist.allreduce: expected a float32, float64 or int64 tensor, got uint8",
          dist.allreduce, tide.zeros(2, {dtype = "uint8"}))
  end)

  it("wraps a model in DataParallel and shards a loader over the world of one", function()
    local nn, data, dist = require "tide.nn", require "tide.data", tide.dist
    local m = nn.Linear(3, 2)
    local d = dist.DataParallel(m, {bucket_mb = 1})
    local x = tide.randn(4, 3)
    H.close(d(x), m(x), 0, "forward")
    assert.equal(m.weight, d:parameters()[1])
    H.err("dist.DataParallel: unknown option 'bucket'", dist.DataParallel, m, {bucket = 1})
    H.err("dist.DataParallel: bucket_mb must be a positive number, got 0", dist.DataParallel, m,
          {bucket_mb = 0})
    local loader = data.DataLoader(data.TensorDataset(tide.arange(1, 10)), {shard = "auto"})
    assert.equal(10, #loader)
    H.err("DataLoader: shard must be {rank, size} with 1 <= rank <= size, or \"auto\", got all",
          data.DataLoader, data.TensorDataset(tide.arange(1, 10)), {shard = "all"})
  end)
end)

describe("tide.dist under mpirun -np 2", function()
  if not run("command -v mpirun"):find("mpirun") then
    pending("mpirun is not installed (openmpi-bin)")
    return
  end
  local dir = H.tmpdir()
  teardown(function() os.execute("rm -rf " .. dir) end)

  local function ok_run(cmd, want)
    local out, code = run(cmd)
    assert(code == 0, ("%s exited with %s:\n%s"):format(cmd, tostring(code), out:sub(-3000)))
    for _, w in ipairs(want) do
      assert(out:find(w, 1, true), ("%s: no %q in:\n%s"):format(cmd, w, out:sub(-3000)))
    end
    return out
  end

  it("computes each collective over shared memory, and over tcp from stock lua5.4", function()
    local want = {"collectives ok rank 1", "collectives ok rank 2"}
    ok_run(MPIRUN .. TIDE .. " tests/lua/dist/collectives.lua", want)
    ok_run(MPIRUN .. "--mca btl self,tcp lua5.4 tests/lua/dist/collectives.lua", want)
  end)

  it("trains with DataParallel as one process with the whole batch (SGD, Adam)", function()
    ok_run(MPIRUN .. TIDE .. " tests/lua/dist/equiv.lua", {"equiv ok rank 1", "equiv ok rank 2"})
  end)

  it("fits with tide.fit, shuffled shards and a resume as one process does", function()
    local fit = TIDE .. " tests/lua/dist/fit.lua " .. dir
    ok_run(fit .. " one 4", {"fit ok rank 1 of 1"})
    local first = ok_run(MPIRUN .. fit .. " two 2", {"fit ok rank 1 of 2", "fit ok rank 2 of 2"})
    local _, bars = first:gsub("epoch 2/2  train_loss", "")
    assert.equal(1, bars) -- rank 1 alone reports
    ok_run(MPIRUN .. fit .. " two 4 resume", {"fit ok rank 2 of 2", "epoch 4/4"})
    local one, two = tide.load(dir .. "/one.safetensors"), tide.load(dir .. "/two.safetensors")
    for _, k in ipairs({"train_loss", "val_loss", "val_accuracy"}) do
      assert.equal(4, one[k]:numel())
      H.close(two[k], one[k], 1e-6, k)
    end
    for _, k in ipairs({1, 3}) do
      H.close(two.p[k].weight, one.p[k].weight, 1e-5, k .. ".weight")
      H.close(two.p[k].bias, one.p[k].bias, 1e-5, k .. ".bias")
    end
    local out, code = run(MPIRUN .. fit .. " two 5 resume apart") -- rank 2 sees no checkpoint
    assert(code ~= 0 and out:find("the ranks would resume from different epochs: the " ..
           "checkpoint must be visible to every rank (a shared directory) (rank 1: 5, rank 2: 1)",
           1, true), out)
  end)

  it("runs examples/ddp.lua --smoke on 2 ranks", function()
    ok_run(MPIRUN .. TIDE .. " examples/ddp.lua --smoke --plot " .. dir .. "/ddp.png",
           {"test accuracy after 1 epoch on 2 ranks"})
  end)

  it("stops the other rank, naming the rank, when one is killed or raises", function()
    local out, code, secs = run(MPIRUN .. TIDE .. " tests/lua/dist/fail.lua kill")
    assert(code ~= 0 and secs < 30, ("exit %s after %.1f s:\n%s"):format(code, secs, out))
    assert(out:find("process rank 1 with PID", 1, true), out) -- mpirun counts from 0
    assert(out:find("tide.dist: rank 1 of 2 stopped: mpirun ended the job", 1, true), out)
    assert(not out:find("was not stopped", 1, true), out)
    out, code, secs = run(MPIRUN .. TIDE .. " tests/lua/dist/fail.lua error")
    assert(code ~= 0 and secs < 30, ("exit %s after %.1f s:\n%s"):format(code, secs, out))
    assert(out:find("rank 2 gives up", 1, true), out)
    assert(out:find("tide.dist: rank 2 of 2 failed (exit status 1, its error is above)", 1,
           true), out)
  end)
end)
