-- stdlib/tide/optim/adam.lua: Adam and AdamW as torch.optim (1.13): bias-corrected moments, eps
-- added outside the square root, optional AMSGrad (the running maximum of the second moment).
-- Adam adds weight_decay * p to the gradient; AdamW decays the parameter itself first,
-- p = p * (1 - lr * weight_decay).
local tide = require "tide"
local Optimizer = require "tide.optim.optimizer"

local update = tide._optim.adam

local function check(g)
  local b = g.betas
  if #b ~= 2 or type(b[1]) ~= "number" or type(b[2]) ~= "number" then
    return "betas must be two numbers {beta1, beta2}"
  end
  for i = 1, 2 do
    if not (b[i] >= 0 and b[i] < 1) then
      return ("betas[%d] must be in [0, 1), got %s"):format(i, tostring(b[i]))
    end
  end
end

local function class(name, weight_decay, decoupled)
  return Optimizer.class {
    name = name,
    defaults = {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = weight_decay,
                amsgrad = false, maximize = false},
    state = {step = true, exp_avg = true, exp_avg_sq = true, max_exp_avg_sq = true},
    check = check,
    update = function(group, p, g, st)
      if not st.exp_avg then
        st.step = 0
        st.exp_avg = tide.zeros(p.shape, {dtype = p.dtype})
        st.exp_avg_sq = tide.zeros(p.shape, {dtype = p.dtype})
      end
      if group.amsgrad and not st.max_exp_avg_sq then
        st.max_exp_avg_sq = tide.zeros(p.shape, {dtype = p.dtype})
      end
      local step = st.step + 1
      update(p, g, st.exp_avg, st.exp_avg_sq, group.amsgrad and st.max_exp_avg_sq or nil, group,
             step, decoupled)
      st.step = step
    end,
  }
end

return {Adam = class("Adam", 0, false), AdamW = class("AdamW", 1e-2, true)}
