-- tests/lua/gradcheck_spec.lua: a float64 finite-difference gradcheck for every differentiable
-- op in the registry, on contiguous and strided (transposed, expanded) inputs. The registry
-- walk fails for a differentiable op without a row here.
local tide = require "tide"

tide.manual_seed(7)
local function r(...) return tide.randn(...):double() end
local function pos(...) return (tide.rand(...) + 0.5):double() end      -- away from 0 (log, sqrt, div)
local function away(...)                                                   -- away from kinks (relu, abs)
  local t = tide.randn(...):double()
  return t + t:sign() * 0.2
end
local function T(t) return t:t() end                                       -- transposed view
local function idx(vals) return tide.tensor(vals, {dtype = "int64"}) end

-- name = {fn, inputs (only float64 inputs are differentiated)}
local rows = {
  exp = {function(a) return a:exp() end, {r(3, 4)}},
  log = {function(a) return a:log() end, {pos(3, 4)}},
  log1p = {function(a) return a:log1p() end, {pos(3, 4)}},
  sqrt = {function(a) return a:sqrt() end, {pos(3, 4)}},
  rsqrt = {function(a) return a:rsqrt() end, {pos(3, 4)}},
  sin = {function(a) return a:sin() end, {r(3, 4)}},
  cos = {function(a) return a:cos() end, {r(3, 4)}},
  tanh = {function(a) return a:tanh() end, {T(r(4, 3))}},
  sigmoid = {function(a) return a:sigmoid() end, {r(3, 4)}},
  relu = {function(a) return a:relu() end, {away(3, 4)}},
  gelu = {function(a) return a:gelu() end, {r(3, 4)}},
  silu = {function(a) return a:silu() end, {r(3, 4)}},
  reciprocal = {function(a) return a:reciprocal() end, {pos(3, 4)}},
  neg = {function(a) return a:neg() end, {r(3, 4)}},
  abs = {function(a) return a:abs() end, {away(3, 4)}},
  sign = {function(a) return a:sign() * a end, {away(3, 4)}},
  floor = {function(a) return a:floor() + a end, {r(3, 4)}},
  ceil = {function(a) return a:ceil() + a end, {r(3, 4)}},
  round = {function(a) return a:round() + a end, {r(3, 4)}},
  add = {function(a, b) return a + b end, {r(3, 4), r(4)}},
  sub = {function(a, b) return a - b end, {r(3, 1), T(r(4, 3))}},
  mul = {function(a, b) return a * b end, {r(3, 4), r(3, 1)}},
  div = {function(a, b) return a / b end, {r(3, 4), pos(4)}},
  pow = {function(a, b) return a ^ b end, {pos(3, 4), r(3, 4)}},
  remainder = {function(a, b) return a % b end, {pos(3, 4) * 3, pos(4)}},
  floor_divide = {function(a, b) return (a // b) + a end, {pos(3, 4) * 3, pos(4)}},
  maximum = {function(a, b) return a:maximum(b) end, {r(3, 4), r(3, 4) + 0.1}},
  minimum = {function(a, b) return a:minimum(b) end, {r(3, 4), r(3, 4) + 0.1}},
  clamp = {function(a) return a:clamp(-0.5, 0.5) end, {away(3, 4)}},
  where = {function(a, b) return tide.where(a:gt(0), a, b) end, {away(3, 4), r(4)}},
  masked_fill = {function(a) return a:masked_fill(a:gt(0), 2) end, {away(3, 4)}},
  dropout = {function(a) return a:dropout(0.5, false) end, {r(3, 4)}},
  sum = {function(a) return a:sum(2, true) + a:sum() end, {T(r(4, 3))}},
  mean = {function(a) return a:mean(1) end, {r(3, 4)}},
  prod = {function(a) return a:prod(2) end, {pos(3, 4)}},
  max = {function(a) return (a:max(2)) + a:max() end, {r(3, 4)}},
  min = {function(a) return (a:min(1)) end, {r(3, 4)}},
  var = {function(a) return a:var(2) end, {r(3, 4)}},
  std = {function(a) return a:std() end, {r(3, 4)}},
  norm = {function(a) return a:norm() end, {r(3, 4)}},
  logsumexp = {function(a) return a:logsumexp(2) end, {r(3, 4)}},
  cumsum = {function(a) return a:cumsum(2) end, {r(3, 4)}},
  softmax = {function(a) return a:softmax(2) end, {r(3, 4)}},
  log_softmax = {function(a) return a:log_softmax(1) end, {T(r(4, 3))}},
  matmul = {function(a, b) return tide.matmul(a, b) end, {r(2, 3, 4), T(r(5, 4))}},
  mm = {function(a, b) return tide.mm(a, b) end, {T(r(4, 3)), r(4, 5)}},
  bmm = {function(a, b) return tide.bmm(a, b) end, {r(2, 3, 4), r(2, 4, 2)}},
  mv = {function(a, b) return tide.mv(a, b) end, {r(3, 4), r(4)}},
  dot = {function(a, b) return tide.dot(a, b) end, {r(4), r(4)}},
  outer = {function(a, b) return tide.outer(a, b) end, {r(3), r(4)}},
  addmm = {function(c, a, b) return tide.addmm(c, a, b, {alpha = 0.5, beta = 2}) end,
           {r(3, 5), r(3, 4), r(4, 5)}},
  linear = {function(x, w, b) return tide.linear(x, w, b) end, {r(2, 3, 4), T(r(4, 5)), r(5)}},
  view = {function(a) return a:view(4, 3) end, {r(3, 4)}},
  reshape = {function(a) return a:reshape(-1) end, {T(r(4, 3))}},
  transpose = {function(a) return a:transpose(1, 3) end, {r(2, 3, 4)}},
  t = {function(a) return a:t() * 2 end, {r(3, 4)}},
  permute = {function(a) return a:permute(3, 1, 2) end, {r(2, 3, 4)}},
  narrow = {function(a) return a:narrow(2, 2, 2) end, {r(3, 4)}},
  select = {function(a) return a:select(1, 2) end, {r(3, 4)}},
  squeeze = {function(a) return a:squeeze(2) end, {r(3, 1, 4)}},
  unsqueeze = {function(a) return a:unsqueeze(1) end, {r(3, 4)}},
  expand = {function(a) return a:expand(2, 3, 4) end, {r(3, 1)}},
  flatten = {function(a) return a:flatten() end, {r(2, 3, 4)}},
  contiguous = {function(a) return a:contiguous() end, {T(r(4, 3))}},
  clone = {function(a) return a:clone() end, {r(3, 4)}},
  to = {function(a) return a:to("float32"):to("float64") end, {r(3, 4)},
        {eps = 1e-3, atol = 1e-4, rtol = 1e-3}},          -- float32 rounding: a coarser step
  index = {function(a) return a:index(1, idx{3, 1, 3}) end, {r(3, 4)}},
  gather = {function(a) return a:gather(2, idx{{1, 2}, {4, 4}, {3, 1}}) end, {r(3, 4)}},
  scatter = {function(a, s) return a:scatter(2, idx{{1, 2}, {4, 3}, {3, 1}}, s) end, {r(3, 4), r(3, 2)}},
  masked_select = {function(a) return a:masked_select(a:gt(0)) end, {away(3, 4)}},
  cat = {function(a, b) return tide.cat({a, b}, 2) end, {r(3, 2), T(r(4, 3))}},
  stack = {function(a, b) return tide.stack({a, b}, 2) end, {r(3, 4), r(3, 4)}},
  conv2d = {function(x, w, b) return tide.conv2d(x, w, b, {stride = 2, padding = 1, dilation = {1, 2}}) end,
            {r(2, 2, 5, 6), r(3, 2, 2, 2), r(3)}},
  conv_transpose2d = {function(x, w, b)
                        return tide.conv_transpose2d(x, w, b, {stride = 2, padding = 1, output_padding = 1, groups = 2})
                      end, {r(1, 4, 3, 3), r(4, 1, 3, 3), r(2)}},
  im2col = {function(x) return tide.im2col(x, {2, 3}, {stride = {2, 1}, padding = 1, dilation = {1, 2}}) end,
            {r(2, 2, 5, 6)}},
  max_pool2d = {function(x) return tide.max_pool2d(x, 2, {stride = 1}) end, {r(2, 2, 4, 4)}},
  avg_pool2d = {function(x) return tide.avg_pool2d(x, 3, {stride = 2, padding = 1}) end, {r(1, 2, 5, 5)}},
  adaptive_avg_pool2d = {function(x) return tide.adaptive_avg_pool2d(x, {2, 3}) end, {r(1, 2, 5, 7)}},
  layer_norm = {function(x, w, b) return tide.layer_norm(x, 4, w, b, {eps = 1e-3}) end,
                {T(r(4, 3)), r(4), r(4)}},
  batch_norm = {function(x, w, b)                          -- training, then eval on fixed stats
                  local y = tide.batch_norm(x, nil, nil, w, b, {training = true})
                  local rm, rv = tide.full({3}, 0.3, {dtype = "float64"}), tide.full({3}, 2, {dtype = "float64"})
                  return y + tide.batch_norm(x, rm, rv, w, b) * 0.5
                end, {r(4, 3, 2), r(3), r(3)}},
  embedding = {function(w) return tide.embedding(idx{{1, 3}, {3, 2}}, w) end, {r(3, 4)}},
  cross_entropy = {function(x, p)
                     return tide.cross_entropy(x, idx{2, 5, 1}, {label_smoothing = 0.1})
                            + tide.cross_entropy(x, p, {reduction = "sum"})
                   end, {r(3, 5), pos(3, 5)}},
  nll_loss = {function(x) return tide.nll_loss(x, idx{2, 4, 1}, {reduction = "none"}) end, {r(3, 4)}},
  mse_loss = {function(x, y) return tide.mse_loss(x, y) end, {r(3, 4), T(r(4, 3))}},
  l1_loss = {function(x, y) return tide.l1_loss(x, y, {reduction = "none"}) end,
             {away(3, 4), tide.zeros(3, 4):double()}},
  smooth_l1_loss = {function(x, y) return tide.smooth_l1_loss(x, y, {beta = 0.5, reduction = "sum"}) end,
                    {r(3, 4), r(3, 4)}},
  binary_cross_entropy = {function(p, y) return tide.binary_cross_entropy(p, y) end,
                          {tide.rand(3, 4):double() * 0.8 + 0.1, tide.rand(3, 4):double()}},
  binary_cross_entropy_with_logits = {function(x, y, w)
                                        return tide.binary_cross_entropy_with_logits(x, y, {pos_weight = w})
                                      end, {r(3, 4), tide.rand(3, 4):double(), pos(4)}},
  scaled_dot_product_attention = {function(q, k, v, m)        -- plain, causal, float/bool masks, dropout
                  local sdpa = tide.scaled_dot_product_attention
                  local o1, w1 = sdpa(q, k, v)
                  local o2, w2 = sdpa(q, k, v, m, {causal = true, scale = 0.7})
                  local keep = m:gt(0):logical_or(tide.arange(1, 5):eq(2))   -- every query keeps a key
                  tide.manual_seed(11)                     -- the same dropout mask at every evaluation
                  local o3, w3 = sdpa(q, k, v, keep, {dropout = 0.3})
                  return tide.cat({o1 + o2 + o3, w1 + w2 - w3}, 3)
                end, {r(2, 3, 4), T(r(4, 5)), r(5, 2), r(3, 5)}},
  kl_div = {function(x, y)
              return tide.kl_div(x, y, {reduction = "batchmean"}) + tide.kl_div(x, y:log(), {log_target = true})
            end, {r(3, 4), pos(3, 4)}},
  lstm_scan = {function(gx, w, s)                          -- out, and the c columns of S
                 local out, S = gx:transpose(2, 3):lstm_scan(w, s) -- gates not contiguous
                 return out * 2 + S:narrow(3, 1, 2)
               end, {r(3, 8, 2), r(8, 2), r(2, 2, 2)}},
  gru_scan = {function(gx, w, h) return (gx:transpose(1, 2):gru_scan(w, h)) end, -- strided steps
              {r(2, 3, 6), r(6, 3), r(2, 2)}},
  rnn_tanh_scan = {function(gx, w, h) return gx:rnn_tanh_scan(w, h) end, {r(3, 2, 2), r(2, 2), r(2, 2)}},
  rnn_relu_scan = {function(gx, w, h) return gx:rnn_relu_scan(w, h) end, {away(3, 2, 2), r(2, 2) * 0.1, r(2, 2) * 0.1}},
}

local function check(name)
  local row = rows[name]
  local inputs = {}
  for i, x in ipairs(row[2]) do
    inputs[i] = x:detach()
    if x.dtype == "float64" then inputs[i].requires_grad = true end
  end
  local ok, report = tide.autograd.gradcheck(row[1], inputs, row[3])
  assert.is_true(ok, name .. ": " .. tostring(report))
end

describe("gradcheck", function()
  local names = {}
  for name in pairs(tide._ops) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    if not name:match("_$") and not tide._nograd[name] then  -- in-place twins share the row
      it(name, function()
        assert.is_not_nil(rows[name], name .. " is differentiable but has no gradcheck row")
        check(name)
      end)
    end
  end
end)
