-- tests/lua/optim_state_spec.lua: what optimizers refuse to load (another class, indices out of
-- range or repeated, bad steps, buffers of another shape: all or nothing) and how saved indices
-- map to parameters; clip_grad_norm_'s bad arguments.
local tide = require "tide"
local optim = require "tide.optim"
local utils = require "tide.nn_utils"

-- w1 (4 values), w2 (3) and w3 (1, never in the loss: it has no state), and two steps of opt
local function params()
  local o = {dtype = "float64", requires_grad = true}
  return tide.tensor({0.5, -1.5, 2.0, 3.0}, o), tide.tensor({1.0, -2.0, 0.25}, o), tide.tensor({7.0}, o)
end
local function two_steps(opt, w1, w2)
  for _ = 1, 2 do
    opt:zero_grad()
    local loss = (w1 * w1):sum() + (w2 - 1):abs():sum()
    loss:backward()
    opt:step()
  end
  return opt
end

describe("optimizer load_state_dict", function()
  -- every tensor, number and string of a state_dict, in a fixed order (a snapshot to compare)
  local function snap(v)
    if tide.is_tensor(v) then return table.concat(v.shape, "x") .. "{" .. table.concat(v:reshape(-1):totable(), ",") .. "}" end
    if type(v) ~= "table" then return tostring(v) end
    local keys, out = {}, {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    for _, k in ipairs(keys) do out[#out + 1] = k .. "=" .. snap(v[k] == nil and v[tonumber(k)] or v[k]) end
    return "{" .. table.concat(out, ";") .. "}"
  end

  it("refuses another class, bad indices, steps and shapes, and changes nothing then", function()
    local w1, w2, w3 = params()
    local sgd = two_steps(optim.SGD({w1, w2, w3}, {lr = 0.1, momentum = 0.9}), w1, w2)
    local adam = two_steps(optim.Adam({w1, w2, w3}, {lr = 0.01}), w1, w2)
    local function bad(edit, want, target)
      target = target or adam
      local sd = target:state_dict()
      local before = snap(sd)
      edit(sd)
      local ok, err = pcall(target.load_state_dict, target, sd)
      assert.is_false(ok, want)
      assert.truthy(err:find(want, 1, true), err)
      assert.equal(before, snap(target:state_dict()))
    end
    local function from(o, edit) return function(sd)
      for k in pairs(sd) do sd[k] = nil end
      for k, v in pairs(o:state_dict()) do sd[k] = v end
      if edit then edit(sd) end
    end end
    bad(from(sgd), "Adam: load_state_dict: the state_dict is of SGD, not Adam")
    bad(from(sgd, function(sd) sd.class = nil end), "group 1 has option 'dampening' of SGD, not of Adam")
    bad(from(adam), "the state_dict is of Adam, not AdamW", optim.AdamW({w1, w2, w3}))
    bad(from(sgd, function(sd) sd.class, sd.param_groups[1].dampening, sd.param_groups[1].momentum,
                               sd.param_groups[1].nesterov = nil end),
        "state 'momentum_buffer' of parameter 1 is not Adam state")
    bad(function(sd) sd.param_groups[1].params = {1, 2, 4} end, "parameter index 4 out of range 1..3")
    bad(function(sd) sd.param_groups[1].params = {1, 2, 2} end, "parameter index 2 appears twice")
    bad(function(sd) sd.param_groups[1].params = {1, 2.5, 3} end, "parameter index 2.5 out of range")
    bad(function(sd) sd.state[4] = sd.state[1] end, "state for unknown parameter 4")
    bad(function(sd) sd.state["1"] = sd.state[1] end, "state for parameter 1 appears twice")
    bad(function(sd) sd.state[2].step = -1 end, "step of parameter 2 must be an integer >= 0, got -1")
    bad(function(sd) sd.state[2].step = 0 / 0 end, "step of parameter 2 must be an integer >= 0")
    -- w1 has 4 elements: 2x2 has as many and is still refused
    bad(function(sd) sd.state[1].exp_avg = sd.state[1].exp_avg:reshape(2, 2) end,
        "state 'exp_avg' of parameter 1 has shape 2x2, the parameter 4")
    bad(function(sd) sd.state[1].exp_avg = "x" end, "state 'exp_avg' of parameter 1 is a string, expected a tensor")
    bad(function(sd) sd.state = 3 end, "expected a table with param_groups and state")
    -- a good group after a bad state: the lr is not taken over either
    bad(function(sd) sd.param_groups[1].lr = 0.5; sd.state[2].exp_avg = tide.zeros(2) end,
        "state 'exp_avg' of parameter 2 has shape 2, the parameter 3")
    assert.equal(0.01, adam.lr)
  end)

  it("maps saved indices to parameters in order", function()
    local w1, w2, w3 = params()
    local a = two_steps(optim.Adam({{params = {w1}}, {params = {w2, w3}}}), w1, w2)
    local sd = a:state_dict()
    -- the same state under indices listed in another order: group 2 saved as {3, 2}
    sd.param_groups[2].params = {3, 2}
    sd.state[2], sd.state[3] = sd.state[3], sd.state[2]
    local b = optim.Adam({{params = {w1}}, {params = {w2, w3}}})
    b:load_state_dict(sd)
    assert.equal(snap(a:state_dict().state), snap(b:state_dict().state))
  end)
end)

describe("nn.utils.clip_grad_norm_ arguments", function()
  local function grad_params()
    local a = tide.zeros(2, {requires_grad = true})
    local b = tide.zeros(2, {requires_grad = true})
    a.grad, b.grad = tide.tensor({3, 4}), tide.tensor({-1, 2})
    return {a, b}
  end
  local function grads(ps)
    local out = {}
    for _, p in ipairs(ps) do for _, v in ipairs(p.grad:totable()) do out[#out + 1] = v end end
    return out
  end

  it("refuses a negative or NaN max_norm and a norm_type that is not positive, grads untouched", function()
    local ps = grad_params()
    local before = grads(ps)
    for _, bad in ipairs({{-1, "max_norm must be a number >= 0, got -1"},
                          {0 / 0, "max_norm must be a number >= 0, got "},
                          {"1", "max_norm must be a number >= 0, got string"}}) do
      local ok, err = pcall(utils.clip_grad_norm_, ps, bad[1])
      assert.is_false(ok)
      assert.truthy(err:find("clip_grad_norm_: " .. bad[2], 1, true), err)
    end
    for _, p in ipairs({0, -2, 0 / 0}) do
      local ok, err = pcall(utils.clip_grad_norm_, ps, 1, {norm_type = p})
      assert.is_false(ok)
      assert.truthy(err:find("norm_type must be a positive number", 1, true), err)
    end
    assert.same(before, grads(ps))
    utils.clip_grad_norm_(ps, 0) -- max_norm 0 is allowed: every gradient becomes 0
    for _, v in ipairs(grads(ps)) do assert.equal(0, v) end
  end)
end)
