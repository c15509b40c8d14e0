-- bench/overhead.lua: per-op overhead on 4-element float32 tensors, the tide side of
-- peer_overhead.py (same loops, same sampling). Usage: tide bench/overhead.lua [SECONDS] CASE...
-- CASE: overhead_add (`c = a + b`), overhead_autograd_step (zero grads, (w*x + b):sum(), backward)
local B = dofile(((arg[0]):match("^(.*)/") or ".") .. "/common.lua")

local seconds, names = 0.5, {}
for _, a in ipairs(arg) do
  if tonumber(a) then seconds = tonumber(a) else names[#names + 1] = a end
end
if #names == 0 then names = {"overhead_add", "overhead_autograd_step"} end

tide.manual_seed(0)

local function report(name, unit, run)
  local med, lo, hi, iters = B.rate(run, seconds)
  B.result(name, med, unit, {median = string.format("%.0f", med), min = string.format("%.0f", lo),
    max = string.format("%.0f", hi), us_per_op = string.format("%.3f", 1e6 / med),
    samples = B.SAMPLES, iters_per_sample = iters, threads = tide.get_num_threads and
    tide.get_num_threads() or "?"})
end

B.cases(names, {
  overhead_add = function(name)
    local a, b = tide.rand(4), tide.rand(4)
    local c = a + b
    assert(c:numel() == 4, "a + b: wrong result size")
    report(name, "ops/s", function(n)
      for _ = 1, n do c = a + b end
      return c
    end)
  end,

  overhead_autograd_step = function(name)
    local x, w, b = tide.rand(4), tide.rand(4), tide.rand(4)
    w.requires_grad = true
    b.requires_grad = true
    local function step(n)
      for _ = 1, n do
        w.grad = nil
        b.grad = nil
        local y = (w * x + b):sum()
        y:backward()
      end
    end
    step(1) -- d/dw sum(w*x + b) = x: a backward that does nothing must not look fast
    assert(w.grad and b.grad, "backward left w.grad or b.grad nil")
    local err = ((w.grad - x):abs():sum()):item() + ((b.grad - 1):abs():sum()):item()
    assert(err < 1e-5, "wrong gradient (error " .. err .. ")")
    report(name, "steps/s", step)
  end,
})
