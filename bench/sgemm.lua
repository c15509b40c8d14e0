-- bench/sgemm.lua: `tide.matmul` of N x N float32, the tide side of the shared sgemm.c (same
-- sizes, same sampling, flops = 2 N^3; sampled entries checked against float64 dot products).
-- Usage: tide --threads 2 bench/sgemm.lua [N ...]   (default 64 256 1024 2048)
local B = dofile(((arg[0]):match("^(.*)/") or ".") .. "/common.lua")

local sizes = {}
for _, a in ipairs(arg) do sizes[#sizes + 1] = tonumber(a) end
if #sizes == 0 then sizes = {64, 256, 1024, 2048} end

-- 16 sampled entries against float64 dot products, relative to sum |a||b| like sgemm.c;
-- skipped (with a note) when indexing is not there yet, since speed is still worth knowing.
local function check(a, b, c, n)
  local ok, err = pcall(function()
    local worst = 0
    for s = 0, 15 do
      local i, j = (s * 7919) % n + 1, (s * 104729 + 13) % n + 1
      local ref, mag = 0, 0
      local ai, bj = a[i], b:select(2, j)
      for k = 1, n do
        local p = ai[k] * bj[k]
        ref, mag = ref + p, mag + math.abs(p)
      end
      worst = math.max(worst, math.abs(c[i][j] - ref) / (mag > 0 and mag or 1))
    end
    return worst
  end)
  if not ok then return nil, err end
  return err
end

local cases, names = {}, {}
for _, n in ipairs(sizes) do
  local name = "sgemm_" .. n
  names[#names + 1] = name
  cases[name] = function()
    tide.manual_seed(n)
    local a, b = tide.rand(n, n) * 2 - 1, tide.rand(n, n) * 2 - 1
    local c = tide.matmul(a, b)
    local err, why = check(a, b, c, n)
    if err and err > 1e-5 then error(string.format("wrong result: max_rel_err=%.2e", err)) end
    local med, lo, hi, calls = B.rate(function(k)
      for _ = 1, k do c = tide.matmul(a, b) end
    end, 0.2, 1)
    local f = 2 * n * n * n / 1e9
    B.result(name, med * f, "GFLOP/s", {n = n, median = string.format("%.1f", med * f),
      best = string.format("%.1f", hi * f), min = string.format("%.1f", lo * f),
      samples = B.SAMPLES, calls_per_sample = calls,
      max_rel_err = err and string.format("%.2e", err) or "unchecked"})
    if why then io.stderr:write("sgemm.lua: result not checked: ", tostring(why), "\n") end
  end
end
B.cases(names, cases)
