-- stdlib/tide/optim/sgd.lua: stochastic gradient descent with momentum, dampening, Nesterov
-- momentum and weight decay, as torch.optim.SGD (1.13): the momentum buffer starts as the first
-- gradient, dampening applies from the second step on.
local tide = require "tide"
local Optimizer = require "tide.optim.optimizer"

local update = tide._optim.sgd

return Optimizer.class {
  name = "SGD",
  defaults = {lr = "required", momentum = 0, dampening = 0, weight_decay = 0, nesterov = false,
              maximize = false},
  state = {momentum_buffer = true},
  check = function(g)
    if g.nesterov and (g.momentum <= 0 or g.dampening ~= 0) then
      return "nesterov needs momentum > 0 and dampening = 0, got momentum " .. g.momentum ..
             ", dampening " .. g.dampening
    end
  end,
  update = function(group, p, g, st)
    local buf, first = nil, false
    if group.momentum ~= 0 then
      buf = st.momentum_buffer
      if not buf then
        buf, first = tide.zeros(p.shape, {dtype = p.dtype}), true
      end
    end
    update(p, g, buf, group, first)
    if first then st.momentum_buffer = buf end -- only once the update succeeded
  end,
}
