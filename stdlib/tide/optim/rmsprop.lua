-- stdlib/tide/optim/rmsprop.lua: RMSprop as torch.optim.RMSprop (1.13): a running average of
-- squared gradients (alpha = 0.99) divides the step, eps added after the square root; centered
-- subtracts the squared running mean of the gradient; momentum keeps a buffer of the steps.
local tide = require "tide"
local Optimizer = require "tide.optim.optimizer"

local update = tide._optim.rmsprop

return Optimizer.class {
  name = "RMSprop",
  defaults = {lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0,
              centered = false, maximize = false},
  state = {step = true, square_avg = true, grad_avg = true, momentum_buffer = true},
  update = function(group, p, g, st)
    local function buffer(key)
      local b = st[key]
      if not b then b = tide.zeros(p.shape, {dtype = p.dtype}); st[key] = b end
      return b
    end
    st.step = st.step or 0
    local sq = buffer("square_avg")
    local ga = group.centered and buffer("grad_avg") or nil
    local buf = group.momentum > 0 and buffer("momentum_buffer") or nil
    update(p, g, sq, ga, buf, group)
    st.step = st.step + 1
  end,
}
