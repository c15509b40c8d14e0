-- examples/tensors.lua: a tour of tide's tensors and autograd, and `make demo` until the
-- training stack lands: fits y = 3x - 2 by gradient descent and checks the result.
tide.manual_seed(0)

local x = tide.linspace(-1, 1, 64):view(-1, 1)          -- 64 x 1
local y = x * 3 - 2 + tide.randn(64, 1) * 0.05           -- noisy line
print("first rows of the data:")
print(tide.cat({x, y}, 2)[{{1, 4}}])

local w = tide.zeros({1, 1}, {requires_grad = true})
local b = tide.zeros({1}, {requires_grad = true})
local lr = 0.5
for step = 1, 200 do
  local loss = ((tide.matmul(x, w) + b - y) ^ 2):mean()
  w.grad, b.grad = nil, nil
  loss:backward()
  tide.no_grad(function()
    w:sub_(w.grad * lr)
    b:sub_(b.grad * lr)
  end)
  if step % 50 == 0 then print(("step %3d  loss %.5f"):format(step, loss:item())) end
end

local slope, intercept = w:item(), b:item()
print(("fitted y = %.3f x %+.3f (true: 3x - 2)"):format(slope, intercept))
assert(math.abs(slope - 3) < 0.05 and math.abs(intercept + 2) < 0.05, "the fit did not converge")
print("softmax of the fitted parameters:", tide.softmax(tide.tensor({slope, intercept}), 1))
