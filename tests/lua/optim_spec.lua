-- tests/lua/optim_spec.lua: optimizers and schedulers against PyTorch 1.13
-- (tests/fixtures/optim.lua, written by scripts/gen_optim_fixtures.py), state_dict round trips,
-- errors, and nn.utils.clip_grad_norm_.
local tide = require "tide"
local optim = require "tide.optim"
local utils = require "tide.nn_utils"

-- PyTorch's trajectories (ref: 5 float64 steps; groups: 3), learning rates (lrs) and clip
-- results, under the names of CASES, MAKE and SCHED below
local FX = dofile("tests/fixtures/optim.lua")
local REF, LRS = FX.ref, FX.lrs

-- The problem every trajectory runs: loss = sum((w1 - t1)^2) + sum((w2 - t2)^2 * 0.5), with a
-- third parameter w3 that never gets a gradient.
local W1, T1 = {0.5, -1.5, 2.0, 3.0}, {1.0, 0.0, -1.0, 2.5}
local W2, T2 = {1.0, -2.0, 0.25}, {0.0, 1.0, 0.5}

local CASES = {
  sgd = function(a, b, c) return optim.SGD({a, b, c}, {lr = 0.1}) end,
  sgd_momentum = function(a, b, c)
    return optim.SGD({a, b, c}, {lr = 0.1, momentum = 0.9, dampening = 0.1, weight_decay = 0.01})
  end,
  sgd_nesterov = function(a, b, c)
    return optim.SGD({a, b, c}, {lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 0.01})
  end,
  sgd_groups = function(a, b, c)
    return optim.SGD({{params = {a}, lr = 0.1, momentum = 0.5}, {params = {b, c}}},
                     {lr = 0.05, momentum = 0.9})
  end,
  adam = function(a, b, c) return optim.Adam({a, b, c}, {lr = 0.1}) end,
  adam_amsgrad = function(a, b, c)
    return optim.Adam({a, b, c}, {lr = 0.1, weight_decay = 0.1, amsgrad = true})
  end,
  adam_groups = function(a, b)
    return optim.Adam({{params = {a}}, {params = {b}, lr = 0.01, betas = {0.5, 0.6}}},
                      {lr = 0.2, eps = 1e-3})
  end,
  adam_maximize = function(a, b, c) return optim.Adam({a, b, c}, {lr = 0.05, maximize = true}) end,
  adamw = function(a, b, c) return optim.AdamW({a, b, c}, {lr = 0.1, weight_decay = 0.1}) end,
  adamw_amsgrad = function(a, b, c)
    return optim.AdamW({a, b, c}, {lr = 0.1, betas = {0.8, 0.9}, eps = 1e-6, amsgrad = true})
  end,
  rmsprop = function(a, b, c) return optim.RMSprop({a, b, c}, {lr = 0.01}) end,
  rmsprop_center = function(a, b, c)
    return optim.RMSprop({a, b, c}, {lr = 0.01, centered = true, momentum = 0.9,
                                     weight_decay = 0.1})
  end,
  rmsprop_alpha = function(a, b, c)
    return optim.RMSprop({a, b, c}, {lr = 0.05, alpha = 0.9, momentum = 0.5})
  end,
  adagrad = function(a, b, c) return optim.Adagrad({a, b, c}, {lr = 0.1}) end,
  adagrad_decay = function(a, b, c)
    return optim.Adagrad({a, b, c}, {lr = 0.1, lr_decay = 0.1, weight_decay = 0.1,
                                     initial_accumulator_value = 0.5})
  end,
}

local function problem(dtype)
  local o = {dtype = dtype, requires_grad = true}
  local w1, w2, w3 = tide.tensor(W1, o), tide.tensor(W2, o), tide.tensor({7.0}, o)
  local t1, t2 = tide.tensor(T1, {dtype = dtype}), tide.tensor(T2, {dtype = dtype})
  local function loss() return ((w1 - t1) ^ 2):sum() + ((w2 - t2) ^ 2 * 0.5):sum() end
  return w1, w2, w3, loss
end

local function train(opt, loss, steps)
  for _ = 1, steps do
    opt:zero_grad()
    loss():backward()
    opt:step()
  end
end

local function assign(dst, src) tide.no_grad(function() dst:copy_(src) end) end

local function values(w1, w2)
  local v = w1:totable()
  for _, x in ipairs(w2:totable()) do v[#v + 1] = x end
  return v
end

local function close(got, want, tol, what)
  assert.equal(#want, #got, what)
  for i = 1, #want do
    local ok = math.abs(got[i] - want[i]) <= tol * (1 + math.abs(want[i]))
    assert(ok, ("%s: element %d is %.17g, expected %.17g"):format(what, i, got[i], want[i]))
  end
end

describe("optimizers match PyTorch 1.13", function()
  for name, make in pairs(CASES) do
    it(name .. " (float64, every step)", function()
      local w1, w2, w3, loss = problem("float64")
      local opt = make(w1, w2, w3)
      for step = 1, 5 do
        train(opt, loss, 1)
        close(values(w1, w2), REF[name][step], 1e-12, name .. " step " .. step)
      end
      assert.equal(7, w3:item())          -- no gradient: skipped, and no state made
      if opt.state[3] then assert.equal("adagrad", name:sub(1, 7)) end
    end)
    it(name .. " (float32)", function()
      local w1, w2, w3, loss = problem("float32")
      train(make(w1, w2, w3), loss, 5)
      close(values(w1, w2), REF[name][5], 2e-5, name)
    end)
  end

  it("updates large parameters on every thread like small ones", function()
    tide.manual_seed(3)
    local n = 300000
    local p = tide.randn(n, {dtype = "float64"})
    local q = p:clone()
    p.requires_grad, q.requires_grad = true, true
    local g = tide.randn(n, {dtype = "float64"})
    p.grad, q.grad = g, g:clone()
    local big = optim.Adam({p}, {lr = 0.01, amsgrad = true})
    big:step(); big:step()
    -- the same update element by element on a small slice
    local s = tide.tensor(q:narrow(1, n - 9, 10):totable(), {dtype = "float64", requires_grad = true})
    s.grad = g:narrow(1, n - 9, 10):clone()
    local small = optim.Adam({s}, {lr = 0.01, amsgrad = true})
    small:step(); small:step()
    close(p:narrow(1, n - 9, 10):totable(), s:totable(), 1e-15, "tail of a 300k parameter")
  end)

  it("updates a non-contiguous parameter through its strides", function()
    local base = tide.tensor({{1, 2, 3}, {4, 5, 6}}, {dtype = "float64"})
    local p = base:t()                      -- 3x2, a leaf view
    p.requires_grad = true
    local ref = tide.tensor(p:totable(), {dtype = "float64", requires_grad = true})
    for _, w in ipairs {p, ref} do
      w.grad = tide.tensor({{1, -1}, {2, -2}, {0.5, 3}}, {dtype = "float64"})
      local opt = optim.SGD({w}, {lr = 0.1, momentum = 0.9})
      opt:step(); opt:step()
    end
    close(p:contiguous():view(-1):totable(), ref:view(-1):totable(), 0, "transposed")
    assert.equal(1 - 0.1 * 1 - 0.1 * 1.9, base[1][1])
  end)

  it("converts a gradient of another dtype to the parameter's", function()
    local p = tide.tensor({1, 2}, {requires_grad = true})
    p.grad = tide.tensor({1, 1}, {dtype = "float64"})
    optim.SGD({p}, {lr = 0.5}):step()
    close(p:totable(), {0.5, 1.5}, 0, "float32 parameter")
  end)
end)

describe("optimizer interface", function()
  it("reads and writes lr across groups", function()
    local a, b = tide.zeros(2, {requires_grad = true}), tide.zeros(2, {requires_grad = true})
    local opt = optim.Adam({{params = {a}, lr = 0.5}, {params = b}})
    assert.equal(0.5, opt.lr)
    assert.equal(1e-3, opt.param_groups[2].lr)
    opt.lr = 0.25
    assert.equal(0.25, opt.param_groups[1].lr)
    assert.equal(0.25, opt.param_groups[2].lr)
    assert.has_error(function() opt.lr = -1 end, "Adam: lr must be >= 0, got -1")
  end)

  it("clears gradients, or zeroes them in place", function()
    local w = tide.tensor({1, 2}, {requires_grad = true})
    local opt = optim.SGD({w}, {lr = 0.1})
    local y = (w * w):sum()
    y:backward()
    opt:zero_grad(false)
    assert.same({0, 0}, w.grad:totable())
    opt:zero_grad()
    assert.is_nil(w.grad)
  end)

  it("records nothing for autograd and bumps the parameter's version", function()
    local w = tide.tensor({1, 2}, {requires_grad = true})
    local opt = optim.SGD({w}, {lr = 0.1})
    local y = (w * w):sum()
    y:backward({retain_graph = true})
    opt:step()
    assert.is_nil(w.grad_fn)
    assert.is_true(w.requires_grad)
    assert.has_error(function() y:backward() end)   -- the graph saved the old w
  end)

  it("runs a closure and returns its loss", function()
    local w, _, _, loss = problem("float64")
    local opt = optim.SGD({w}, {lr = 0.1})
    local l = opt:step(function()
      opt:zero_grad()
      local v = loss()
      v:backward()
      return v
    end)
    assert.is_true(math.abs(l:item() - 16.78125) < 1e-12)
    close(w:totable(), {0.6, -1.2, 1.4, 2.9}, 1e-15, "after the closure step")
  end)

  it("takes positional lr, a module, and adds groups later", function()
    local a, b = tide.zeros(1, {requires_grad = true}), tide.zeros(1, {requires_grad = true})
    local opt = optim.SGD({a}, {0.3})
    assert.equal(0.3, opt.lr)
    local module = {parameters = function() return {a, b} end}
    assert.equal(2, #optim.Adam(module).param_groups[1].params)
    opt:add_param_group({params = {b}, lr = 0.1, momentum = 0.5})
    assert.equal(0.1, opt.param_groups[2].lr)
    assert.equal(0, opt.param_groups[2].dampening)
    assert.matches("SGD %(", tostring(opt))
  end)
end)

describe("optimizer errors", function()
  local w = tide.zeros(2, {requires_grad = true})
  local function fails(msg, f, ...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok)
    assert(err:find(msg, 1, true), "expected '" .. msg .. "' in: " .. err)
  end
  it("names the optimizer and the option", function()
    fails("SGD: unknown option 'momentun'", optim.SGD, {w}, {lr = 0.1, momentun = 0.9})
    fails("Adam: lr must be >= 0, got -1", optim.Adam, {w}, {lr = -1})
    fails("SGD: lr is required", optim.SGD, {w})
    fails("SGD: empty parameter list", optim.SGD, {}, {lr = 1})
    fails("Adam: expected a list of tensors or of parameter groups, got nil", optim.Adam)
    fails("RMSprop: parameter 2 is a number, expected a tensor", optim.RMSprop, {w, 3})
    fails("Adagrad: parameter 1 (group 2) appears twice", optim.Adagrad, {{params = {w}}, {params = {w}}})
    fails("SGD: nesterov needs momentum > 0", optim.SGD, {w}, {lr = 1, nesterov = true})
    fails("Adam: betas[2] must be in [0, 1), got 1", optim.Adam, {w}, {betas = {0.9, 1}})
    fails("AdamW: eps must be >= 0", optim.AdamW, {w}, {eps = -1})
    fails("SGD: momentum must be a number, got string", optim.SGD, {w}, {lr = 1, momentum = "x"})
    fails("SGD: unknown option 'betas' (group 2)", optim.SGD, {{params = {w}},
          {params = {tide.zeros(1, {requires_grad = true})}, betas = {1, 2}}}, {lr = 1})
    fails("is int64, expected float32 or float64", optim.SGD, {tide.zeros(2, {dtype = "int64"})},
          {lr = 1})
    fails("is not a leaf", optim.SGD, {w * 2}, {lr = 1})
    fails("pass model:parameters()", optim.SGD, {weight = w}, {lr = 1})
  end)
  it("checks state buffers in C", function()
    local p = tide.zeros(3, {requires_grad = true})
    p.grad = tide.ones(3)
    local group = {lr = 0.1, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0}
    fails("state buffer 2 is a float32 tensor of shape 2, expected", tide._optim.adam, p, p.grad,
          tide.zeros(3), tide.zeros(2), nil, group, 1)
    fails("shares memory", tide._optim.adam, p, p.grad, p, tide.zeros(3), nil, group, 1)
    fails("Adam: step must be >= 1", tide._optim.adam, p, p.grad, tide.zeros(3), tide.zeros(3),
          nil, group, 0)
  end)
end)

describe("optimizer state_dict", function()
  for name, make in pairs(CASES) do
    it(name .. " resumes identically", function()
      local a1, a2, a3, la = problem("float64")
      local opt = make(a1, a2, a3)
      train(opt, la, 3)
      local sd = opt:state_dict()
      local b1, b2, b3, lb = problem("float64")
      assign(b1, a1); assign(b2, a2)
      train(opt, la, 2)                       -- sd is a snapshot: this does not change it
      local resumed = make(b1, b2, b3)
      resumed:load_state_dict(sd)
      train(resumed, lb, 2)
      close(values(b1, b2), values(a1, a2), 0, name .. " resumed")
    end)
  end

  it("is plain tables keyed by parameter index and reads back file-like keys", function()
    local w1, w2, w3, loss = problem("float64")
    local opt = optim.Adam({{params = {w1}}, {params = {w2, w3}, lr = 0.01}}, {amsgrad = true})
    train(opt, loss, 2)
    local sd = opt:state_dict()
    assert.same({1}, sd.param_groups[1].params)
    assert.same({2, 3}, sd.param_groups[2].params)
    assert.equal(2, sd.state[2].step)
    assert.is_nil(sd.state[3])
    assert.is_true(tide.is_tensor(sd.state[1].max_exp_avg_sq))
    -- as a checkpoint file may return it: string keys, flags as strings
    local filed = {state = {["1"] = sd.state[1], ["2"] = sd.state[2]}, param_groups = {}}
    for k, g in ipairs(sd.param_groups) do
      local c = {}
      for key, v in pairs(g) do c[key] = v end
      c.amsgrad, c.betas = tostring(g.amsgrad), {["1"] = g.betas[1], ["2"] = g.betas[2]}
      filed.param_groups[tostring(k)] = c
    end
    local v1, v2, v3, lv = problem("float64")
    assign(v1, w1); assign(v2, w2)
    local again = optim.Adam({{params = {v1}}, {params = {v2, v3}, lr = 0.5}})
    again:load_state_dict(filed)
    assert.equal(0.01, again.param_groups[2].lr)
    assert.is_true(again.param_groups[1].amsgrad)
    train(opt, loss, 1)
    train(again, lv, 1)
    close(values(v1, v2), values(w1, w2), 0, "loaded from file-like tables")
  end)

  it("refuses a state_dict of another shape", function()
    local w1, w2 = problem("float64")
    local opt = optim.SGD({w1, w2}, {lr = 0.1})
    assert.has_error(function() opt:load_state_dict({state = {}, param_groups = {{params = {1}}}}) end,
                     "SGD: load_state_dict: group 1 has 1 parameters saved, 2 in the optimizer")
  end)
end)

describe("schedulers match PyTorch 1.13", function()
  local METRICS = {1.0, 0.9, 0.95, 0.91, 0.92, 0.905, 0.85, 0.86, 0.87, 0.88, 0.84, 0.845}
  local SCHED = {
    step = function(o) return optim.StepLR(o, {step_size = 3, gamma = 0.5}) end,
    exponential = function(o) return optim.ExponentialLR(o, {gamma = 0.9}) end,
    cosine = function(o) return optim.CosineAnnealingLR(o, {T_max = 5, eta_min = 0.001}) end,
    warmup = function(o)
      return optim.LinearWarmup(o, {warmup_steps = 3, after = optim.CosineAnnealingLR(o, {T_max = 4})})
    end,
    plateau = function(o)
      return optim.ReduceLROnPlateau(o, {factor = 0.5, patience = 1, threshold = 0.01, cooldown = 1,
                                         min_lr = {0.01, 0.005}})
    end,
    plateau_max = function(o)
      return optim.ReduceLROnPlateau(o, {mode = "max", factor = 0.5, patience = 0,
                                         threshold = 0.01, threshold_mode = "abs"})
    end,
  }
  local function setup(name)
    local w = tide.zeros(1, {requires_grad = true})
    local opt = optim.SGD({{params = {w}}, {params = {tide.zeros(1, {requires_grad = true})},
                                            lr = 0.02}}, {lr = 0.1})
    return opt, SCHED[name](opt)
  end
  local function run(opt, s, name, from, to, out)
    for i = from, to do
      opt:step()
      s:step(name:find("plateau") and METRICS[i] or nil)
      out[#out + 1] = {opt.param_groups[1].lr, opt.param_groups[2].lr}
    end
    return out
  end
  for name in pairs(SCHED) do
    it(name, function()
      local opt, s = setup(name)
      local got = run(opt, s, name, 1, 12, {})
      for i = 1, 12 do close(got[i], LRS[name][i], 1e-15, name .. " step " .. i) end
      assert.same(got[12], s:get_last_lr())
      assert.equal(got[12][1], opt.lr)
    end)
    it(name .. " resumes from its state_dict", function()
      local opt, s = setup(name)
      local got = run(opt, s, name, 1, 5, {})
      local osd, ssd = opt:state_dict(), s:state_dict()
      local opt2, s2 = setup(name)
      opt2:load_state_dict(osd)
      s2:load_state_dict(ssd)
      run(opt2, s2, name, 6, 12, got)
      for i = 1, 12 do close(got[i], LRS[name][i], 1e-15, name .. " resumed, step " .. i) end
    end)
  end

  it("warmup alone ramps then holds; the lr is base * k / warmup_steps", function()
    local opt = optim.SGD({tide.zeros(1, {requires_grad = true})}, {lr = 1})
    local s = optim.LinearWarmup(opt, {4})
    assert.equal(0.25, opt.lr)
    local seen = {}
    for i = 1, 6 do opt:step(); s:step(); seen[i] = opt.lr end
    assert.same({0.5, 0.75, 1, 1, 1, 1}, seen)
  end)

  it("checks options", function()
    local opt = optim.SGD({tide.zeros(1, {requires_grad = true})}, {lr = 1})
    assert.has_error(function() optim.StepLR(opt, {step = 3}) end, "StepLR: unknown option 'step'")
    assert.has_error(function() optim.StepLR(opt, {}) end, "StepLR: step_size is required")
    assert.has_error(function() optim.CosineAnnealingLR(opt, {T_max = 0}) end,
                     "CosineAnnealingLR: T_max must be a positive number, got 0")
    assert.has_error(function() optim.ReduceLROnPlateau(opt, {factor = 1}) end,
                     "ReduceLROnPlateau: factor must be < 1, got 1")
    assert.has_error(function() optim.ExponentialLR(nil, {gamma = 0.5}) end,
                     "ExponentialLR: expected an optimizer, got nil")
    local other = optim.SGD({tide.zeros(1, {requires_grad = true})}, {lr = 1})
    assert.has_error(function()
      optim.LinearWarmup(opt, {warmup_steps = 2, after = optim.StepLR(other, {1})})
    end, "LinearWarmup: after must schedule the same optimizer")
    local p = optim.ReduceLROnPlateau(opt)
    assert.has_error(function() p:step() end,
                     "ReduceLROnPlateau: step needs the metric it watches (sched:step(val_loss)), got nil")
    p:step(tide.tensor(0.5))
    assert.equal(0.5, p.best)
  end)
end)

describe("per-group options of AdamW, RMSprop and Adagrad match PyTorch 1.13", function()
  local GROUPS = FX.groups
  local MAKE = {
    adamw = function(a, b, c) return optim.AdamW({{params = {a}, weight_decay = 0.5, amsgrad = true},
                                                  {params = {b, c}, lr = 0.05, eps = 0.1}}, {lr = 0.1}) end,
    rmsprop = function(a, b, c) return optim.RMSprop({{params = {a}, centered = true},
      {params = {b, c}, lr = 0.02, momentum = 0.5, eps = 0.1}}, {lr = 0.01}) end,
    adagrad = function(a, b, c) return optim.Adagrad({{params = {a}, lr_decay = 0.5},
                                                      {params = {b, c}, lr = 0.2, eps = 0.5}}, {lr = 0.1}) end,
  }
  for name, make in pairs(MAKE) do
    it(name, function()
      local w1, w2, w3, loss = problem("float64")
      local opt = make(w1, w2, w3)
      for step = 1, 3 do
        train(opt, loss, 1)
        close(values(w1, w2), GROUPS[name][step], 1e-10, name .. " groups, step " .. step)
      end
    end)
  end
end)

describe("nn.utils.clip_grad_norm_", function()
  local function params()
    local a, b = tide.zeros(2, {requires_grad = true}), tide.zeros(2, 2, {requires_grad = true})
    a.grad, b.grad = tide.tensor({3, 4}), tide.tensor({{1, -2}, {2, 4}})
    return {a, b, tide.zeros(3, {requires_grad = true})}
  end
  local function grads(ps)
    local v = ps[1].grad:totable()
    for _, x in ipairs(ps[2].grad:view(-1):totable()) do v[#v + 1] = x end
    return v
  end
  -- torch.nn.utils.clip_grad_norm_(ps, 1.5, norm_type): {norm_type, total norm, scaled grads}
  local REF_CLIP = FX.clip
  for _, r in ipairs(REF_CLIP) do
    it("norm_type " .. tostring(r[1]), function()
      local ps = params()
      local total = utils.clip_grad_norm_(ps, 1.5, {norm_type = r[1]})
      assert.is_true(tide.is_tensor(total))
      close({total:item()}, {r[2]}, 1e-6, "total norm")
      close(grads(ps), r[3], 1e-6, "clipped grads")
      assert.is_nil(ps[3].grad)
    end)
  end
  it("leaves small gradients alone and returns 0 without gradients", function()
    local ps = params()
    close({utils.clip_grad_norm_(ps, 100):item()}, {REF_CLIP[1][2]}, 1e-6, "total")
    assert.same({3, 4}, ps[1].grad:totable())
    assert.equal(0, utils.clip_grad_norm_({tide.zeros(1)}, 1):item())
    assert.has_error(function() utils.clip_grad_norm_(ps, 1, {norm = 2}) end,
                     "clip_grad_norm_: unknown option 'norm'")
  end)
  it("clip_grad_value_ clamps every element", function()
    local ps = params()
    utils.clip_grad_value_(ps, 2.5)
    assert.same({2.5, 2.5, 1, -2, 2, 2.5}, grads(ps))
  end)
end)
