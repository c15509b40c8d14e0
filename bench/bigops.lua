-- bench/bigops.lua: memory-bound elementwise throughput on 2^24 float32, the tide side of
-- bench/baseline.c (same sampling). GB/s counts bytes read + written: add 12 per element
-- (a, b, c), sum 4. Usage: tide --threads 2 bench/bigops.lua [add_big] [sum_big]
local B = dofile(((arg[0]):match("^(.*)/") or ".") .. "/common.lua")

local N = 1 << 24
local names = #arg > 0 and {table.unpack(arg)} or {"add_big", "sum_big"}
tide.manual_seed(0)
local a, b = tide.rand(N), tide.rand(N)

local function report(name, bytes, run)
  local med, lo, hi, iters = B.rate(run, 0.2, 3)
  B.result(name, med * bytes / 1e9, "GB/s", {median = string.format("%.2f", med * bytes / 1e9),
    best = string.format("%.2f", hi * bytes / 1e9), min = string.format("%.2f", lo * bytes / 1e9),
    samples = B.SAMPLES, calls_per_sample = iters})
end

B.cases(names, {
  add_big = function(name)
    local c = a + b
    assert(c:numel() == N, "a + b: wrong result size")
    report(name, 12 * N, function(n)
      for _ = 1, n do c = a + b end
      return c
    end)
  end,

  sum_big = function(name)
    local s = a:sum():item()
    assert(math.abs(s / N - 0.5) < 0.01, "a:sum() of U(0,1) gave mean " .. s / N)
    report(name, 4 * N, function(n)
      local t
      for _ = 1, n do t = a:sum() end
      return t
    end)
  end,
})
