-- stdlib/tide/fairness/report.lua: tide.fairness.report (a table of the group metrics with
-- bootstrap intervals, the disparities, and bars per group drawn by plot.bars) and the
-- per-epoch tracking tide.fit does with its `groups` option.
local tide = require "tide"
local F = require "tide.fairness"

local M = {}

local SHOWN = {"demographic_parity_difference", "demographic_parity_ratio",
               "equalized_odds_difference", "equal_opportunity_difference"}

local function num(v)
  if v ~= v then return "nan" end
  return ("%.3f"):format(v)
end

local function cell(v, ci)
  if ci then return ("%s [%s, %s]"):format(num(v), num(ci[1]), num(ci[2])) end
  return num(v)
end

local function pad(s, w) return s .. (" "):rep(w - #s) end

-- The lines of the table: a row per group and one for all, a column per metric.
local function table_lines(r)
  local head, rows = {"group"}, {}
  for _, m in ipairs(r.metrics) do head[#head + 1] = m end
  local function row(name, vals, cis)
    local out = {name}
    for _, m in ipairs(r.metrics) do
      out[#out + 1] = m == "count" and ("%d"):format(math.tointeger(vals[m]) or vals[m])
                      or cell(vals[m], m ~= "count" and cis and cis[m] or nil)
    end
    rows[#rows + 1] = out
  end
  for _, k in ipairs(r.groups) do row(tostring(k), r.by_group[k], r.ci and r.ci.by_group[k]) end
  row("all", r.overall, r.ci and r.ci.overall)
  local w = {}
  for j, h in ipairs(head) do
    w[j] = #h
    for _, rw in ipairs(rows) do w[j] = math.max(w[j], #rw[j]) end
  end
  local lines = {}
  local function line(cols)
    local parts = {}
    for j, c in ipairs(cols) do parts[j] = pad(c, w[j]) end
    lines[#lines + 1] = table.concat(parts, "  "):gsub("%s+$", "")
  end
  line(head)
  for _, rw in ipairs(rows) do line(rw) end
  return lines
end

local REPORT_OPTS = {pos_label = true, bootstrap = true, seed = true, level = true,
                     metrics = true, y_prob = true, bins = true, file = true, plot = true,
                     title = true, width = true, height = true}

-- tide.fairness.report(y_true, y_pred, groups, {bootstrap=1000, seed=, level=0.95, pos_label=1,
-- y_prob=, bins=10, metrics=, plot=true, file=, title=}) -> the metric frame with .disparities
function M.report(y_true, y_pred, groups, o)
  local fn = "tide.fairness.report"
  o = F._check_options(fn, o, REPORT_OPTS)
  local base = {pos_label = o.pos_label, bootstrap = o.bootstrap or 1000, seed = o.seed,
                level = o.level}
  local fo = {metrics = o.metrics, y_prob = o.y_prob, bins = o.bins}
  for k, v in pairs(base) do fo[k] = v end
  local r = F.metric_frame(y_true, y_pred, groups, fo)
  r.disparities = {}
  if r.ci then r.ci.disparities = {} end
  for _, name in ipairs(SHOWN) do
    local v, ci = F[name](y_true, y_pred, groups, base)
    r.disparities[name] = v
    if r.ci then r.ci.disparities[name] = ci end
  end
  local out = io.output()
  if o.title then out:write(o.title, "\n") end
  for _, l in ipairs(table_lines(r)) do out:write(l, "\n") end
  local ci = base.bootstrap > 0
  for _, name in ipairs(SHOWN) do
    out:write(("%s %s\n"):format(pad(name:gsub("_", " "), 30),
              cell(r.disparities[name], ci and r.ci.disparities[name] or nil)))
  end
  if ci then
    out:write(("[lo, hi]: %g%% percentile intervals of %d stratified bootstrap resamples\n"):format(
              100 * (o.level or 0.95), base.bootstrap))
  end
  if o.plot ~= false then
    local bars = {labels = {}, title = o.title or "metrics by group", file = o.file,
                  width = o.width, height = o.height}
    for _, m in ipairs(r.metrics) do
      if m ~= "count" then bars.labels[#bars.labels + 1] = m end
    end
    for _, k in ipairs(r.groups) do
      local s = {y = {}, title = tostring(k)}
      if ci then s.lo, s.hi = {}, {} end
      for j, m in ipairs(bars.labels) do
        s.y[j] = r.by_group[k][m]
        if ci then s.lo[j], s.hi[j] = r.ci.by_group[k][m][1], r.ci.by_group[k][m][2] end
      end
      bars[#bars + 1] = s
    end
    r.plot = require("tide.plot").bars(bars)
  end
  return r
end

---- tide.fit{groups = {x =, y =, groups =, pos_label =}} -----------------------------------------

local TRACK = {x = true, y = true, groups = true, pos_label = true, metrics = true}

-- Checks tide.fit's groups option; returns it.
function M.check(spec)
  local fn = "tide.fit"
  if type(spec) ~= "table" or not tide.is_tensor(spec.x) or not tide.is_tensor(spec.y)
     or spec.groups == nil then
    error(fn .. ": groups must be {x = inputs, y = labels, groups = group ids, pos_label =}", 0)
  end
  for k in pairs(spec) do
    if not TRACK[k] then error(fn .. ": groups: unknown field '" .. tostring(k) .. "'", 0) end
  end
  if spec.x:size(1) ~= spec.y:numel() then
    error(("%s: groups: %d inputs for %d labels"):format(fn, spec.x:size(1), spec.y:numel()), 0)
  end
  return spec
end

-- After epoch e: predictions on spec.x in eval mode, recorded in history as
-- history.demographic_parity_difference[e], history.equalized_odds_difference[e] and
-- history["<metric>[<group>]"][e]; returns the words for the epoch's closing line.
function M.track(spec, model, history, epoch)
  local was = model.training
  model:eval()
  local ok, out = pcall(tide.no_grad, function() return model(spec.x) end)
  model:train(was)
  if not ok then error(out, 0) end
  local o = {pos_label = spec.pos_label, metrics = spec.metrics or {"accuracy", "selection_rate",
             "tpr", "fpr"}}
  local r = F.metric_frame(spec.y, out, spec.groups, o)
  local dp = F.demographic_parity_difference(spec.y, out, spec.groups, {pos_label = o.pos_label})
  local eo = F.equalized_odds_difference(spec.y, out, spec.groups, {pos_label = o.pos_label})
  local function put(k, v)
    history[k] = history[k] or {}
    history[k][epoch] = v
  end
  put("demographic_parity_difference", dp)
  put("equalized_odds_difference", eo)
  for _, g in ipairs(r.groups) do
    for _, m in ipairs(r.metrics) do put(("%s[%s]"):format(m, tostring(g)), r.by_group[g][m]) end
  end
  return ("dp_diff %.4f  eo_diff %.4f"):format(dp, eo)
end

return M
