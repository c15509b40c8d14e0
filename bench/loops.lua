-- bench/loops.lua: fixed-count loops of the overhead workloads, for counting instructions
-- (bench/instr.sh) when the shared machine is too busy for timings to mean anything.
-- Usage: tide bench/loops.lua CASE N   (CASE: add, autograd_step, matmul64, matmul256)
local case, n = arg[1], tonumber(arg[2] or "0")
local cases = {
  add = function()
    local a, b = tide.rand(4), tide.rand(4)
    local c
    for _ = 1, n do c = a + b end
    return c
  end,
  autograd_step = function()
    local x, w, b = tide.rand(4), tide.rand(4), tide.rand(4)
    w.requires_grad, b.requires_grad = true, true
    for _ = 1, n do
      w.grad, b.grad = nil, nil
      local y = (w * x + b):sum()
      y:backward()
    end
  end,
}
for _, m in ipairs({64, 256}) do
  cases["matmul" .. m] = function()
    local a, b = tide.rand(m, m), tide.rand(m, m)
    local c
    for _ = 1, n do c = tide.matmul(a, b) end
    return c
  end
end
assert(cases[case], "loops.lua: unknown case " .. tostring(case))
cases[case]()
