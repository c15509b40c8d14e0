-- bench/backward.lua: the backward of a 1024 x 1024 float32 matmul (d/da and d/db of
-- c = a:matmul(b) given dc) against the two sgemm calls it needs (dc b^T and a^T dc), timed
-- the same way. Usage: tide --threads 2 bench/backward.lua backward|two_sgemm   (ms per call)
local B = dofile(((arg[0]):match("^(.*)/") or ".") .. "/common.lua")

local n, mode = 1024, arg[1] or "backward"
tide.manual_seed(3)
local a = (tide.rand(n, n) * 2 - 1):requires_grad_()
local b = (tide.rand(n, n) * 2 - 1):requires_grad_()
local g = tide.rand(n, n) * 2 - 1

local function backward_once()
  local c = a:matmul(b)                 -- the forward is not timed
  a.grad, b.grad = nil, nil
  local t0 = B.now()
  c:backward(g)
  return B.now() - t0
end

local function sgemm_once()
  local t0 = B.now()
  local da, db = g:matmul(b:t()), a:t():matmul(g)
  local dt = B.now() - t0
  return dt, da, db
end

local cases = {
  matmul_backward_1024 = function(name)
    local once = mode == "two_sgemm" and function() return tide.no_grad(sgemm_once) end
                                      or backward_once
    if mode ~= "two_sgemm" then      -- the gradients must be the two products
      backward_once()
      local _, da, db = tide.no_grad(sgemm_once)
      local err = math.max(((a.grad - da):abs():max() / da:abs():max()):item(),
                           ((b.grad - db):abs():max() / db:abs():max()):item())
      if err > 1e-5 then error(string.format("wrong gradient: max rel err %.2e", err)) end
    end
    once()
    local ms = {}
    for s = 1, B.SAMPLES do
      local total, k = 0, 0
      repeat total, k = total + once(), k + 1 until total > 0.2
      ms[s] = total / k * 1e3
    end
    local med, lo, hi = B.median(ms)
    B.result(name, med, "ms", {mode = mode, min = string.format("%.3f", lo),
                               max = string.format("%.3f", hi), samples = B.SAMPLES})
  end,
}
B.cases({"matmul_backward_1024"}, cases)
