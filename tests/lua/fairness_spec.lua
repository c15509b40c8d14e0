-- tests/lua/fairness_spec.lua: tide.fairness against hand-counted tables and against Fairlearn's
-- documented formulas computed with NumPy (tests/fixtures/fairness.lua from
-- scripts/gen_fairness_fixtures.py); the bootstrap's determinism and coverage; reweighing and
-- its loader; the report; tide.fit's groups option; misuse.
local tide = require "tide"
local nn = require "tide.nn"
local data = require "tide.data"
local F = require "tide.fairness"
local H = require "helpers"

local L = H.long

local function near(a, b, tol, what)
  if a ~= a or b ~= b then
    assert(a ~= a and b ~= b, ("%s: %s vs %s"):format(what, tostring(a), tostring(b)))
    return
  end
  assert(math.abs(a - b) <= tol, ("%s: %.17g vs %.17g"):format(what, a, b))
end

-- a hand-counted table: group a (y 1 1 0 0, pred 1 0 0 1): tp fn tn fp = 1 1 1 1;
-- group b (y 1 0 1 1 0 0, pred 1 0 1 1 1 0): tp 3, tn 2, fp 1, fn 0
local Y, P = L{1, 1, 0, 0, 1, 0, 1, 1, 0, 0}, L{1, 0, 0, 1, 1, 0, 1, 1, 1, 0}
local G = {"a", "a", "a", "a", "b", "b", "b", "b", "b", "b"}

describe("tide.fairness by hand", function()
  it("metric_frame counts each group's confusion matrix", function()
    local r = F.metric_frame(Y, P, G, {metrics = {"count", "accuracy", "selection_rate", "tpr",
                                                   "fpr", "precision"}})
    local want = {a = {4, 0.5, 0.5, 0.5, 0.5, 0.5}, b = {6, 5 / 6, 4 / 6, 1, 1 / 3, 3 / 4},
                  all = {10, 0.7, 0.6, 0.8, 0.4, 4 / 6}}
    for k, w in pairs(want) do
      local got = k == "all" and r.overall or r.by_group[k]
      for j, m in ipairs(r.metrics) do near(got[m], w[j], 1e-12, k .. " " .. m) end
    end
    assert.same({"a", "b"}, r.groups)
    near(r.difference.selection_rate, 1 / 6, 1e-12, "difference")
    near(r.ratio.tpr, 0.5, 1e-12, "ratio")
  end)

  it("disparities follow Fairlearn's definitions", function()
    near(F.demographic_parity_difference(Y, P, G), 1 / 6, 1e-12, "dpd")
    near(F.demographic_parity_ratio(Y, P, G), 0.75, 1e-12, "dpr")
    near(F.equalized_odds_difference(Y, P, G), 0.5, 1e-12, "eod")       -- max(0.5, 1/6)
    near(F.equalized_odds_difference(Y, P, G, {agg = "mean"}), (0.5 + 1 / 6) / 2, 1e-12, "mean")
    near(F.equalized_odds_ratio(Y, P, G), 0.5, 1e-12, "eor")             -- min(0.5, 2/3)
    near(F.equal_opportunity_difference(Y, P, G), 0.5, 1e-12, "eop")
    -- to_overall: the largest |selection rate - 0.6|: |0.5 - 0.6|
    near(F.demographic_parity_difference(Y, P, G, {method = "to_overall"}), 0.1, 1e-12, "to")
    near(F.demographic_parity_ratio(Y, P, G, {method = "to_overall"}), 0.5 / 0.6, 1e-12, "tor")
  end)

  it("labels may be class indices with pos_label, bool, or scores", function()
    local cls = F.demographic_parity_difference(Y + 1, P + 1, G, {pos_label = 2})
    local bool = F.demographic_parity_difference(Y:eq(1), P:eq(1), G)
    local scores = tide.stack({P:eq(0):double(), P:double()}, 2)       -- argmax = P + 1
    local sc = F.demographic_parity_difference(Y + 1, scores, G, {pos_label = 2})
    near(cls, 1 / 6, 1e-12, "classes"); near(bool, 1 / 6, 1e-12, "bool")
    near(sc, 1 / 6, 1e-12, "scores")
    near(F.demographic_parity_difference(Y, P, L{1, 1, 1, 1, 7, 7, 7, 7, 7, 7}), 1 / 6, 1e-12, "ids")
  end)

  it("calibration is the expected calibration error per group", function()
    -- group a: probabilities 0.9 0.85 | 0.1 0.3 in bins 9, 8 | 1, 3 with labels 1 1 | 0 0
    local p = tide.tensor({0.875, 0.625, 0.125, 0.375, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5},
                          {dtype = "float64"})
    local c = F.calibration(Y, p, G, {bins = 4})
    near(c.by_group.a, (0.125 + 0.375 + 0.125 + 0.375) / 4, 1e-12, "a")
    near(c.by_group.b, math.abs(3 - 3) / 6, 1e-12, "b")    -- one bin: mean y 0.5 = mean p
    -- overall: bins 1 (0.125 y0), 2 (0.375 y0, ...), 3 (0.5 x6, 0.625), 4 (0.875)
    local want = (0.125 + 0.375 + math.abs(4 - (3 + 0.625)) + 0.125) / 10
    near(c.overall, want, 1e-12, "overall")
    near(c.difference, c.by_group.a - c.by_group.b, 1e-12, "difference")
  end)

  it("reweighing makes label and group independent", function()
    local w1, by = F.reweighing(Y, G)
    -- a: 2 of 4 positive, b: 3 of 6; P(y=1) = 0.5: every weight is 1
    assert.same({[0] = 1.0, [1] = 1.0}, by.a)
    assert.equal(10, w1:eq(1):sum():item())
    local y2 = L{1, 1, 1, 0, 1, 0, 0, 0, 0, 0}                       -- a: 3/4, b: 1/6
    local w
    w, by = F.reweighing(y2, G)
    near(by.a[1], 4 * 4 / (10 * 3), 1e-12, "a1"); near(by.b[0], 6 * 6 / (10 * 5), 1e-12, "b0")
    local yd, wd = y2:double(), w:double()
    for _, rows in ipairs{{1, 4}, {5, 6}} do                          -- weighted positive rate
      local ws, ys = wd:narrow(1, rows[1], rows[2]), yd:narrow(1, rows[1], rows[2])
      near((ws * ys):sum():item() / ws:sum():item(), 0.4, 1e-6, "independence")
    end
  end)
end)

describe("tide.fairness against Fairlearn's formulas (NumPy fixtures)", function()
  local fx = dofile("tests/fixtures/fairness.lua")
  for _, c in ipairs(fx.cases) do
    it(c.name, function()
      local y, p = L(c.y), L(c.p)
      local prob = tide.tensor(c.prob, {dtype = "float64"})
      local r = F.metric_frame(y, p, c.groups, {y_prob = prob, bins = c.bins,
        metrics = {"count", "accuracy", "selection_rate", "tpr", "fpr", "precision", "ece"}})
      for _, m in ipairs(r.metrics) do
        near(r.overall[m], c.overall[m], 1e-12, "overall " .. m)
        for k, want in pairs(c.by_group) do near(r.by_group[k][m], want[m], 1e-12, k .. " " .. m) end
      end
      for method, d in pairs(c.disparities) do
        for name, want in pairs(d) do
          local f, o = name, {method = method}
          if name:find("_mean$") then f, o.agg = name:gsub("_mean$", ""), "mean" end
          near(F[f](y, p, c.groups, o), want, 1e-12, method .. " " .. name)
        end
      end
      local cal = F.calibration(y, prob, c.groups, {bins = c.bins})
      for k, want in pairs(c.by_group) do near(cal.by_group[k], want.ece,
                                                1e-12, "calibration " .. k) end
      local _, by = F.reweighing(y, c.groups)
      for k, want in pairs(c.reweighing) do
        for lab, wv in pairs(want) do near(by[k][lab], wv, 1e-12, "reweighing " .. k) end
      end
    end)
  end
  it("percentiles interpolate as NumPy's", function()
    local q = fx.quantile
    for i, level in ipairs(q.q) do near(F._quantile(q.xs, level), q.expected[i], 1e-12, "q") end
  end)
end)

describe("tide.fairness bootstrap", function()
  tide.manual_seed(5)
  local n = 600
  local g = tide.randint(1, 3, {n})
  local y = tide.rand(n):lt(g:double() * 0.2):long()
  local p = tide.where(tide.rand(n):lt(0.2), 1 - y, y)

  it("is seeded, leaves tide's generator alone and brackets the estimate", function()
    tide.manual_seed(1)
    local v, ci = F.demographic_parity_difference(y, p, g, {bootstrap = 300, seed = 9})
    local after = tide.rand(1)[1]
    tide.manual_seed(1)
    local v2, ci2 = F.demographic_parity_difference(y, p, g, {bootstrap = 300, seed = 9})
    assert.equal(after, tide.rand(1)[1])
    assert.same(ci, ci2)
    assert.equal(v, v2)
    assert.is_true(ci[1] < v and v < ci[2], ("%g not in [%g, %g]"):format(v, ci[1], ci[2]))
    local _, ci3 = F.demographic_parity_difference(y, p, g, {bootstrap = 300, seed = 10})
    assert.is_true(ci3[1] ~= ci[1])
    local _, narrow = F.demographic_parity_difference(y, p, g, {bootstrap = 300, seed = 9,
                                                                level = 0.5})
    assert.is_true(narrow[2] - narrow[1] < ci[2] - ci[1])
  end)

  it("resamples within groups: sizes are fixed, rates vary", function()
    local r = F.metric_frame(y, p, g, {bootstrap = 100, seed = 1, metrics = {"count", "tpr"}})
    for _, k in ipairs(r.groups) do
      assert.same({r.by_group[k].count, r.by_group[k].count}, r.ci.by_group[k].count)
      local ci = r.ci.by_group[k].tpr
      assert.is_true(ci[1] < ci[2] and ci[1] <= r.by_group[k].tpr and r.by_group[k].tpr <= ci[2])
    end
  end)

  it("intervals shrink as the data grows (about 1/sqrt(n))", function()
    local function width(m)
      local idx = tide.arange(1, m, {dtype = "int64"})
      local _, ci = F.demographic_parity_difference(y:index(1, idx), p:index(1, idx),
                                                    g:index(1, idx), {bootstrap = 400, seed = 2})
      return ci[2] - ci[1]
    end
    local w150, w600 = width(150), width(600)
    assert.is_true(w600 < 0.75 * w150, ("%g vs %g"):format(w600, w150))
  end)
end)

describe("tide.fairness.reweighed_loader", function()
  it("draws each (group, label) cell with probability P(g) P(y), seeded per epoch", function()
    tide.manual_seed(3)
    local n = 2000
    local g = tide.randint(1, 2, {n})
    local y = tide.rand(n):lt(g:double() * 0.35 - 0.2):long()  -- P(y=1 | g): 0.15, 0.5
    local ds = data.TensorDataset(g:view(n, 1):double(), y)
    local ld = F.reweighed_loader(ds, y, g, {batch_size = 500, seed = 4})
    assert.equal(4, #ld)
    local pg2, py1 = g:eq(2):double():mean():item(), y:double():mean():item()
    local cnt, total, first = {0, 0, 0, 0}, 0, nil
    for e = 1, 5 do
      for xb, yb in ld:iter() do
        first = first or xb[1][1]
        local cell = (xb:select(2, 1) - 1) * 2 + yb:double() + 1
        for c = 1, 4 do cnt[c] = cnt[c] + cell:eq(c):sum():item() end
        total = total + xb:size(1)
      end
      if e == 1 then assert.equal(n, total) end
    end
    local want = {(1 - pg2) * (1 - py1), (1 - pg2) * py1, pg2 * (1 - py1), pg2 * py1}
    for c = 1, 4 do near(cnt[c] / total, want[c], 0.015, "cell " .. c) end
    local again = F.reweighed_loader(ds, y, g, {batch_size = 500, seed = 4})
    local xb = again:iter()()
    assert.equal(first, xb[1][1])
  end)
end)

describe("tide.fairness.thresholds", function()
  local S = function(v) return tide.tensor(v, {dtype = "float64"}) end
  local g = {"a", "a", "a", "a", "b", "b", "b", "b", "b", "b"}
  local s = S{0.9, 0.8, 0.3, 0.1, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1}

  it("keeps perfect decisions when parity allows them", function()
    local y = L{1, 1, 0, 0, 1, 1, 1, 0, 0, 0}                -- both groups: top half positive
    local t, info = F.thresholds(y, s, g)
    assert.same({a = 0.8, b = 0.4}, t)
    assert.equal(1, info.accuracy)
    assert.same(y:totable(), F.apply_thresholds(s, g, t):totable())
  end)

  it("trades accuracy for equal selection rates (hand-counted)", function()
    local y = L{1, 1, 0, 0, 1, 0, 0, 0, 0, 0}
    -- rate 1/4 (a) and 1/6 (b) at thresholds 0.9, 0.6 gets 9 of 10 right; equal rates 1/2
    -- would get 8; the first grid rate where both groups pick those cuts is 0.13
    local t, info = F.thresholds(y, s, g)
    assert.same({a = 0.9, b = 0.6}, t)
    near(info.accuracy, 0.9, 1e-12, "accuracy")
    near(info.rate, 0.13, 1e-12, "rate")
    local pred = F.apply_thresholds(s, g, t)
    near(F.metric_frame(y, pred, g).overall.accuracy, info.accuracy, 1e-12, "applied")
  end)

  it("equal opportunity equalises true positive rates on a biased score", function()
    tide.manual_seed(7)
    local n = 2000
    local grp = tide.randint(1, 2, {n})
    local y = tide.rand(n):lt(0.4):long()
    -- group 2's scores are shifted down: one threshold gives it a lower TPR
    local score = (y:double() + tide.randn(n, {dtype = "float64"}) * 0.6 - (grp:double() - 1) * 0.5)
      :sigmoid()
    local single = score:ge(0.5):long()
    local before = F.equal_opportunity_difference(y, single, grp)
    local t = F.thresholds(y, score, grp, {constraint = "equal_opportunity"})
    local after = F.equal_opportunity_difference(y, F.apply_thresholds(score, grp, t), grp)
    assert.is_true(before > 0.1 and after < 0.02, ("%g -> %g"):format(before, after))
    assert.is_true(t[2] < t[1])
    local tdp = F.thresholds(y, score, grp, {constraint = "demographic_parity"})
    local dp = F.demographic_parity_difference(y, F.apply_thresholds(score, grp, tdp), grp)
    assert.is_true(dp < 0.02, dp)
  end)

  it("rejects misuse", function()
    H.err("constraint must be \"demographic_parity\" or \"equal_opportunity\"", F.thresholds,
          Y, s, G, {constraint = "odds"})
    H.err("scores must be N or N x C for 10 examples", F.thresholds, Y, S{1, 2}, G)
    H.err("apply_thresholds: no threshold for group b", F.apply_thresholds, s, G, {a = 0.5})
  end)
end)

describe("tide.fairness.report and tide.fit groups", function()
  it("prints the table with intervals and draws bars to a file", function()
    local out = os.tmpname()
    local f = io.open(out, "w")
    local old = io.output()
    io.output(f)
    local png = os.tmpname() .. ".png"
    local ok, r = pcall(F.report, Y, P, G, {bootstrap = 50, seed = 1, file = png})
    io.output(old)
    f:close()
    assert(ok, r)
    local text = io.open(out):read("a")
    os.remove(out)
    assert.truthy(text:find("group  count  accuracy", 1, true), text)
    assert.truthy(text:find("\nb      6      0.833 [", 1, true), text)
    assert.truthy(text:find("demographic parity difference  0.167 [", 1, true), text)
    near(r.disparities.equalized_odds_difference, 0.5, 1e-12, "eod")
    assert.equal(png, r.plot)
    local img = io.open(png, "rb")
    assert.equal("\137PNG", img:read(4))
    img:close()
    os.remove(png)
  end)

  it("tide.fit records group metrics and disparities per epoch", function()
    tide.manual_seed(0)
    local n = 200
    local g = tide.randint(1, 2, {n})
    local x = tide.randn(n, 2)
    local y = (x:select(2, 1) + g:double() - 1.5):gt(0):long() + 1
    local model = nn.Linear(2, 2)
    local h = tide.fit(model, {train = data.DataLoader(data.TensorDataset(x, y), {batch_size = 50}),
      epochs = 2, progress = false, groups = {x = x, y = y, groups = g, pos_label = 2}})
    assert.equal(2, #h.demographic_parity_difference)
    local pred = tide.no_grad(function() return model(x) end)
    near(h.demographic_parity_difference[2], F.demographic_parity_difference(y, pred, g,
         {pos_label = 2}), 1e-12, "dpd")
    local r = F.metric_frame(y, pred, g, {pos_label = 2})
    near(h["tpr[1]"][2], r.by_group[1].tpr, 1e-12, "tpr")
    near(h["selection_rate[2]"][2], r.by_group[2].selection_rate, 1e-12, "sr")
    H.err("tide.fit: groups must be {x = inputs", tide.fit, model, {train = data.DataLoader(
      data.TensorDataset(x, y)), groups = {x = x}})
  end)
end)

describe("tide.fairness misuse", function()
  it("names the function, the values and what was expected", function()
    H.err("metric_frame: y_pred holds fractions", F.metric_frame, Y, tide.rand(10), G)
    H.err("demographic_parity_difference: 3 group ids for 10 examples",
          F.demographic_parity_difference, Y, P, {"a", "b", "c"})
    H.err("unknown metric auc", F.metric_frame, Y, P, G, {metrics = {"auc"}})
    H.err("metric \"ece\" needs y_prob", F.metric_frame, Y, P, G, {metrics = {"ece"}})
    H.err("y_prob must hold probabilities in [0, 1]", F.calibration, Y, tide.randn(10) * 5, G)
    H.err("groups mixes integers and strings", F.metric_frame, Y, P,
          {1, "a", 1, 1, 1, 1, 1, 1, 1, 1})
    H.err("bootstrap must be a number of resamples", F.demographic_parity_ratio, Y, P, G,
          {bootstrap = -1})
    H.err("unknown option 'bootstrapp'", F.equalized_odds_difference, Y, P, G, {bootstrapp = 9})
    H.err("agg must be \"worst_case\" or \"mean\"", F.equalized_odds_ratio, Y, P, G, {agg = "x"})
    H.err("y_true must be a 1-D tensor", F.metric_frame, tide.zeros(2, 5), P, G)
    H.err("reweighed_loader: the dataset has 3 examples, y_true 10", F.reweighed_loader,
          data.TensorDataset(tide.zeros(3)), Y, G)
    H.err("plot.bars: series 1 has 1 values", require("tide.plot").bars,
          {labels = {"a", "b"}, {y = {1}}})
  end)
end)
