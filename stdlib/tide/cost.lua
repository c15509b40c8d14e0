-- stdlib/tide/cost.lua: the cost of a tide.fit run (doc/fit.md, "The cost of a run"): FLOPs
-- from the model's MACs (tide.summary.macs), wall time, CPU core-seconds and peak RSS
-- (getrusage), energy from RAPL where /sys/class/powercap is readable or else estimated from
-- core-seconds, and the CO2e of that energy at a grid intensity.
local tide = require "tide"

local M = {}

-- A busy server core draws about 10 W (a 200 W, 20-core part at load): the estimate when RAPL
-- cannot be read. CO2e: grams per kWh of the grid, by default a world average of about 475.
M.WATTS_PER_CORE = 10
M.GRID_INTENSITY = 475
M.POWERCAP = "/sys/class/powercap"
-- Convention: forward = 2 FLOPs per MAC per example; backward ~ 2x forward (the gradients of
-- the inputs and of the weights each cost one forward): a training example costs 6 MACs' worth
-- of FLOPs, an evaluated one 2.
M.TRAIN_FLOPS_PER_MAC, M.EVAL_FLOPS_PER_MAC = 6, 2

-- MACs of one forward of one example of model on the batch x: the one MAC counter, shared with
-- tide.summary. nil and the reason when it cannot count this model.
local function macs_per_example(model, x)
  local ok, summary = pcall(require, "tide.summary")
  if not ok or type(summary) ~= "table" or not summary.macs then
    return nil, "tide.summary.macs is not available"
  end
  local ok2, m = pcall(summary.macs, model, x)
  if not ok2 then return nil, tostring(m) end
  return m
end

local function read_number(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local v = tonumber(f:read("l"))
  f:close()
  return v
end

-- The package zones of RAPL under root (intel-rapl:N, also AMD's; their sub-zones are parts of
-- them and not added): {{path, max_uj}...}, or nil when none is readable.
local function rapl_zones(root)
  local zones = {}
  for i = 0, 15 do
    local dir = ("%s/intel-rapl:%d"):format(root, i)
    if read_number(dir .. "/energy_uj") then
      zones[#zones + 1] = {path = dir .. "/energy_uj",
                           max = read_number(dir .. "/max_energy_range_uj") or math.huge}
    end
  end
  return #zones > 0 and zones or nil
end

local function rapl_read(zones)
  local r = {}
  for i, z in ipairs(zones) do
    r[i] = read_number(z.path)
    if not r[i] then return nil end
  end
  return r
end

-- joules between two readings, a counter that wrapped counted once around
local function rapl_joules(zones, a, b)
  local uj = 0
  for i, z in ipairs(zones) do
    local d = b[i] - a[i]
    if d < 0 then d = d + z.max end
    uj = uj + d
  end
  return uj * 1e-6
end

local Meter = {}
Meter.__index = Meter

local KNOWN = {watts_per_core = true, grid_intensity = true, energy = true, powercap = true}

-- tide.fit's cost option: true (defaults) or {watts_per_core=, grid_intensity=, energy =
-- "auto"|"estimate", powercap = dir}; returns a meter, or nil for false
function M.meter(o)
  if o == false then return nil end
  if o == nil or o == true then o = {} end
  local function bad(k, want)
    error(("tide.fit: cost.%s must be %s, got %s"):format(k, want, tostring(o[k])), 0)
  end
  if type(o) ~= "table" then
    error("tide.fit: cost must be true, false or {watts_per_core=, grid_intensity=, energy=}, " ..
          "got " .. type(o), 0)
  end
  for k in pairs(o) do
    if not KNOWN[k] then error("tide.fit: cost: unknown field '" .. tostring(k) .. "'", 0) end
  end
  for _, k in ipairs{"watts_per_core", "grid_intensity"} do
    if o[k] ~= nil and (type(o[k]) ~= "number" or o[k] ~= o[k] or o[k] < 0 or o[k] == math.huge) then
      bad(k, "a number >= 0")
    end
  end
  if o.energy ~= nil and o.energy ~= "auto" and o.energy ~= "estimate" then
    bad("energy", "\"auto\" or \"estimate\"")
  end
  if o.powercap ~= nil and type(o.powercap) ~= "string" then bad("powercap", "a directory") end
  local self = setmetatable({watts = o.watts_per_core or M.WATTS_PER_CORE,
                             grid = o.grid_intensity or M.GRID_INTENSITY, examples = 0}, Meter)
  if o.energy ~= "estimate" then self.zones = rapl_zones(o.powercap or M.POWERCAP) end
  return self
end

-- at the start of an epoch
function Meter:start()
  self.examples = 0
  self.cpu0 = tide._rusage()
  self.rapl0 = self.zones and rapl_read(self.zones)
end

-- after each training step on batch x of b examples (the first one counts the model's MACs)
function Meter:batch(model, x, b)
  if self.macs == nil and self.why == nil then
    self.macs, self.why = macs_per_example(model, x)
  end
  self.examples = self.examples + b
end

local function put(history, k, e, v)
  history[k] = history[k] or {}
  history[k][e] = v
end

-- at the end of epoch e, whose history.time[e] is set; val: examples evaluated
function Meter:epoch(history, e, val)
  local cpu, rss = tide._rusage()
  local core = cpu - self.cpu0
  local flops = self.macs and self.macs * (M.TRAIN_FLOPS_PER_MAC * self.examples +
                                          M.EVAL_FLOPS_PER_MAC * (val or 0)) or 0 / 0
  local r1 = self.rapl0 and rapl_read(self.zones)
  local joules = r1 and rapl_joules(self.zones, self.rapl0, r1) or core * self.watts
  history.energy_source = r1 and "rapl" or "estimate"
  put(history, "flops", e, flops)
  put(history, "core_seconds", e, core)
  put(history, "flops_per_s", e, flops / history.time[e])
  put(history, "peak_rss", e, rss)
  put(history, "energy_j", e, joules)
  put(history, "co2e_g", e, joules / 3.6e6 * self.grid)
end

local function si(v, unit)
  if v ~= v then return "n/a " .. unit end
  local p = {{1e15, "P"}, {1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}}
  for _, s in ipairs(p) do
    if math.abs(v) >= s[1] then return ("%.3g %s%s"):format(v / s[1], s[2], unit) end
  end
  return ("%.3g %s"):format(v, unit)
end

-- history.cost: the run's totals (sums of the epochs', peak RSS their largest); returns the
-- closing line tide.fit prints
function Meter:total(history)
  local c = {flops = 0, time = 0, core_seconds = 0, energy_j = 0, co2e_g = 0, peak_rss = 0,
             energy_source = history.energy_source, macs_per_example = self.macs,
             watts_per_core = self.watts, grid_intensity = self.grid}
  for e = 1, history.epochs do
    for _, k in ipairs{"flops", "core_seconds", "energy_j", "co2e_g"} do
      c[k] = c[k] + ((history[k] or {})[e] or 0)
    end
    c.time = c.time + (history.time[e] or 0)
    c.peak_rss = math.max(c.peak_rss, (history.peak_rss or {})[e] or 0)
  end
  c.flops_per_s = c.flops / c.time
  history.cost = c
  local energy = c.energy_source == "rapl" and "measured by RAPL" or
                 ("estimated at %g W per core"):format(self.watts)
  return ("cost: %s in %.3g s = %s, %.3g core-s, peak RSS %s, %s (%s), %s CO2e at %g g/kWh")
    :format(si(c.flops, "FLOP"), c.time, si(c.flops_per_s, "FLOP/s"), c.core_seconds,
            si(c.peak_rss, "B"), si(c.energy_j, "J"), energy, si(c.co2e_g, "g"), self.grid)
end

return M
