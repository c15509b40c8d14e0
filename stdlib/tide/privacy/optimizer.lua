-- stdlib/tide/privacy/optimizer.lua: the DP-SGD step around any optimizer (Abadi et al. 2016).
-- step(): from the per-example gradients of the last backward (grad_sample.lua), each example's
-- gradient is scaled to norm at most C = max_grad_norm, the scaled gradients are summed, Gaussian
-- noise of std noise_multiplier * C is added, and the result divided by the expected batch size
-- (Opacus's convention: a Poisson batch's size is itself private) becomes p.grad for the wrapped
-- optimizer's own update. The accountant records every step.
local tide = require "tide"
local accountant = require "tide.privacy.accountant"
local gs = require "tide.privacy.grad_sample"
local seeds = require "tide.data.seed"

local DP = {}

-- the trainable parameters of the wrapped optimizer, in its order
local function params_of(inner)
  local list = {}
  for _, g in ipairs(inner.param_groups) do
    for _, p in ipairs(g.params) do
      if p.requires_grad then list[#list + 1] = p end
    end
  end
  return list
end

-- {param = sum_i c_i grad_i / E} over the recorded layer calls, c_i the clipping factors; empty
-- when nothing was recorded (an empty batch)
local function clipped_sums(st, E)
  local tape, sums = st.tape, {}
  local calls, B = {}, nil
  for _, e in ipairs(tape) do
    local g = e.probe.grad
    if g then
      e.B = e.x:size(1)
      if B and e.B ~= B then
        error(("DP optimizer step: layers saw batches of %d and %d examples (per-example " ..
               "gradients need the batch as the first dim everywhere)"):format(B, e.B), 0)
      end
      B, e.g = e.B, st.loss_reduction == "mean" and g * e.B or g -- each example's own loss
      calls[#calls + 1] = e
    end
  end
  if not B or B == 0 then return sums end
  local n2 = nil
  for _, e in ipairs(calls) do
    local r = gs.rules[e.kind].norms(e, e.m)
    n2 = n2 and n2 + r or r
  end
  local norms = n2:double():sqrt()
  local c = (st.max_grad_norm / (norms + 1e-6)):clamp(nil, 1):div_(E):to(n2.dtype)
  st.last_norms = norms
  for _, e in ipairs(calls) do
    for name, t in pairs(gs.rules[e.kind].sum(e, c, e.m)) do
      local p = rawget(e.m, name)
      if p and p.requires_grad then sums[p] = sums[p] and sums[p] + t or t end
    end
  end
  return sums
end

function DP:step(...)
  local st = self._dp
  local E = st.expected_batch_size
  local ok, sums = pcall(clipped_sums, st, E)
  st.tape.clear()
  if not ok then error(sums, 2) end
  local std = st.noise_multiplier == 0 and 0 or st.noise_multiplier * st.max_grad_norm
  local k = st.steps + 1
  local function noisy()          -- (sum + noise) / E, with 1/E folded into c and the std
    for _, p in ipairs(params_of(st.inner)) do
      local g = tide.empty(p.shape, {dtype = p.dtype})
      if std > 0 then g:normal_(0, std / E) else g:zero_() end
      if sums[p] then g:add_(sums[p]) end
      p.grad = g
    end
  end
  tide.no_grad(function()
    if st.seed then seeds.with(tide, seeds.mix(st.seed, k), noisy) else noisy() end
  end)
  st.steps = k
  return st.inner:step(...)
end

function DP:zero_grad(...)
  self._dp.tape.clear()
  return self._dp.inner:zero_grad(...)
end

-- epsilon spent after the steps taken so far (or after `steps`), for delta (default: the
-- make_private target_delta)
function DP:epsilon(delta, steps)
  local st = self._dp
  delta = delta or st.delta
  if type(delta) ~= "number" or not (delta > 0 and delta < 1) then
    error("optimizer:epsilon: delta must be a number in (0, 1), got " .. tostring(delta), 2)
  end
  local n = steps or st.steps
  if n == 0 then return 0 end
  if st.noise_multiplier == 0 then return math.huge end
  st.rdp = st.rdp or accountant.rdp(st.noise_multiplier, st.sample_rate)
  local total = {}
  for i, v in ipairs(st.rdp) do total[i] = n * v end
  return (accountant.to_epsilon(total, delta))
end

-- wraps inner: DP's methods, everything else (param_groups, lr, state_dict...) from inner
local function wrap(inner, st)
  st.inner = inner
  local proxy = {_dp = st}
  return setmetatable(proxy, {
    __name = "tide.privacy.DPOptimizer",
    __index = function(_, k)
      if DP[k] then return DP[k] end
      if k == "privacy" then
        return {delta = st.delta, target_epsilon = st.target_epsilon, steps = st.steps,
                noise_multiplier = st.noise_multiplier, sample_rate = st.sample_rate,
                max_grad_norm = st.max_grad_norm}
      end
      local v = inner[k]
      if type(v) == "function" then return function(_, ...) return v(inner, ...) end end
      return v
    end,
    __newindex = function(_, k, v) inner[k] = v end,
    __tostring = function()
      return ("DPOptimizer(%s, noise_multiplier %.4g, max_grad_norm %.4g)"):format(
        tostring(inner), st.noise_multiplier, st.max_grad_norm)
    end,
  })
end

return {wrap = wrap}
