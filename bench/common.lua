-- bench/common.lua: what the tide-side bench scripts share: a wall clock, the sampling
-- scheme of the peer scripts (warm-up, calibration, 7 timed samples, median) and the
-- RESULT/NA lines scripts/bench.py reads. Run under `tide`, which preloads `tide`.
local M = {}

-- os.clock is CPU time summed over OpenMP threads, so a wall clock comes from a tiny C module
-- that bench.mk builds beside the other bench binaries (BENCH_LIB names that directory).
local lib = os.getenv("BENCH_LIB") or "build/bench"
local open = package.loadlib(lib .. "/benchclock.so", "luaopen_benchclock")
if open then
  M.now = open().now
else
  io.stderr:write("bench: no ", lib, "/benchclock.so; timing with os.clock (CPU time)\n")
  M.now = os.clock
end

M.SAMPLES = 7

local function median(xs)
  local s = {}
  for i, v in ipairs(xs) do s[i] = v end
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2, s[1], s[n]
end
M.median = median

-- Calls run(n) (n iterations of the timed loop): a warm-up, a calibration, then SAMPLES
-- samples of about `seconds` each. Returns median, min, max of iterations per second.
function M.rate(run, seconds, first)
  first = first or 2000
  run(first)
  local t0 = M.now()
  run(first)
  local dt = M.now() - t0
  local iters = math.max(math.floor(first / math.max(dt, 1e-9) * seconds),
                           math.min(first, 1000))
  local rates = {}
  for s = 1, M.SAMPLES do
    t0 = M.now()
    run(iters)
    rates[s] = iters / (M.now() - t0)
  end
  local med, lo, hi = median(rates)
  return med, lo, hi, iters
end

function M.result(name, value, unit, extra)
  local f = {}
  for k, v in pairs(extra or {}) do f[#f + 1] = k .. "=" .. tostring(v) end
  table.sort(f)
  io.write(string.format("RESULT name=%s value=%.6g unit=%s %s\n", name, value, unit,
                         table.concat(f, " ")))
  io.stdout:flush()
end

-- A case that cannot run yet (missing op, wrong result) is reported, not fatal: the harness
-- prints tide=n/a with this reason and goes on.
function M.na(name, reason)
  reason = tostring(reason):gsub("\n.*", ""):gsub("%s+", " ")
  io.write(string.format("NA name=%s reason=%s\n", name, reason))
  io.stdout:flush()
end

-- Runs fn(name) for each selected case name under pcall; errors become NA lines.
function M.cases(names, fns)
  for _, name in ipairs(names) do
    local fn = fns[name]
    if not fn then
      M.na(name, "no such case in " .. (arg and arg[0] or "?"))
    else
      local ok, err = pcall(fn, name)
      if not ok then M.na(name, err) end
    end
  end
end

return M
