-- stdlib/tide/optim/adagrad.lua: Adagrad as torch.optim.Adagrad (1.13): the sum of squared
-- gradients (starting at initial_accumulator_value, created with the optimizer) divides the
-- step, eps = 1e-10 added after the square root; lr decays as lr / (1 + (step - 1) * lr_decay).
local tide = require "tide"
local Optimizer = require "tide.optim.optimizer"

local update = tide._optim.adagrad

return Optimizer.class {
  name = "Adagrad",
  defaults = {lr = 1e-2, lr_decay = 0, weight_decay = 0, initial_accumulator_value = 0,
              eps = 1e-10, maximize = false},
  state = {step = true, sum = true},
  init = function(group, p)
    return {step = 0, sum = tide.full(p.shape, group.initial_accumulator_value, {dtype = p.dtype})}
  end,
  update = function(group, p, g, st)
    if not st.sum then -- a state_dict without this parameter's state
      st.step = 0
      st.sum = tide.full(p.shape, group.initial_accumulator_value, {dtype = p.dtype})
    end
    local step = st.step + 1
    update(p, g, st.sum, group, step)
    st.step = step
  end,
}
