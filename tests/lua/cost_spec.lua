-- tests/lua/cost_spec.lua: the cost of a tide.fit run (stdlib/tide/cost.lua): FLOPs of a known
-- MLP against the hand count, the history's fields and their consistency, energy estimated
-- (forced) and read from a RAPL tree (a fake /sys/class/powercap, wrapping counter included),
-- the closing line, plot.loss's cost axis, misuse.
local tide = require "tide"
local nn = require "tide.nn"
local data = require "tide.data"
local H = require "helpers"

local TIDE = (os.getenv("TIDE_BUILD") or "build") .. "/tide"

local function setup()
  tide.manual_seed(0)
  local x = tide.randn(256, 10)
  local y = x:select(2, 1):gt(0):long() + 1
  local ds = data.TensorDataset(x, y)
  local model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
  return model, data.DataLoader(ds, {batch_size = 32}),
         data.DataLoader(data.TensorDataset(x:narrow(1, 1, 100), y:narrow(1, 1, 100)),
                         {batch_size = 50})
end

-- plot.loss's text page (no file, no display), kept off the test output
local function plot_loss_text(h)
  local tmp = os.tmpname()
  local f, old = io.open(tmp, "w"), io.output()
  io.output(f)
  local ok, page = pcall(require("tide.plot").loss, h, {cost = "energy_j", width = 80,
                                                        height = 24})
  io.output(old)
  f:close()
  os.remove(tmp)
  assert(ok, page)
  return page
end

local function near(a, b, tol, what)
  assert(math.abs(a - b) <= tol * math.max(1, math.abs(b)), ("%s: %.17g vs %.17g"):format(
         what, a, b))
end

describe("tide.fit cost", function()
  it("counts the FLOPs of a known MLP by hand", function()
    local model, train, val = setup()
    local h = tide.fit(model, {train = train, val = val, epochs = 2, progress = false})
    -- MACs per example: 10 x 32 + 32 x 2 = 384 (the weights' multiply-adds); an epoch trains
    -- 256 examples (6 FLOPs per MAC: forward 2, backward 4) and evaluates 100 (2 per MAC)
    local want = 384 * (6 * 256 + 2 * 100)
    assert.equal(384, h.cost.macs_per_example)
    assert.equal(want, h.flops[1])
    assert.equal(want, h.flops[2])
    assert.equal(2 * want, h.cost.flops)
  end)

  it("counts MACs with one forward in eval mode without gradients, on the first batch", function()
    local seen = {}
    local Probe = nn.Module:extend("Probe")
    function Probe:init() self.fc = nn.Linear(2, 2) end
    function Probe:forward(x)
      seen[#seen + 1] = {self.training, tide.is_grad_enabled(), x:size(1)}
      return self.fc(x)
    end
    local x = tide.randn(8, 2)
    local ds = data.TensorDataset(x, x:select(2, 1):gt(0):long() + 1)
    local h = tide.fit(Probe(), {train = data.DataLoader(ds, {batch_size = 4}), epochs = 1,
                                 progress = false})
    assert.same({{true, true, 4}, {false, false, 4}, {true, true, 4}}, seen)
    assert.equal(4 * 6 * 8, h.flops[1])
  end)

  it("records consistent fields per epoch and in total", function()
    local model, train = setup()
    local h = tide.fit(model, {train = train, epochs = 3, progress = false,
                               cost = {grid_intensity = 300}})
    local sums = {flops = 0, core_seconds = 0, energy_j = 0, co2e_g = 0, time = 0}
    for e = 1, 3 do
      near(h.flops_per_s[e], h.flops[e] / h.time[e], 1e-12, "FLOP/s")
      assert.is_true(h.core_seconds[e] >= 0 and h.core_seconds[e] <= h.time[e] *
                     tide.get_num_threads() + 0.05, "core-seconds within wall x threads")
      near(h.co2e_g[e], h.energy_j[e] / 3.6e6 * 300, 1e-12, "CO2e")
      if e > 1 then assert.is_true(h.peak_rss[e] >= h.peak_rss[e - 1]) end
      for k in pairs(sums) do sums[k] = sums[k] + h[k][e] end
    end
    for k, v in pairs(sums) do near(h.cost[k], v, 1e-12, "total " .. k) end
    near(h.cost.flops_per_s, h.cost.flops / h.cost.time, 1e-12, "total FLOP/s")
    assert.equal(h.peak_rss[3], h.cost.peak_rss)
    local f = io.open("/proc/self/status")
    local hwm = tonumber(f:read("a"):match("VmHWM:%s*(%d+) kB")) * 1024
    f:close()
    assert.is_true(math.abs(h.cost.peak_rss - hwm) <= 0.05 * hwm, ("peak RSS %d vs VmHWM %d")
                   :format(h.cost.peak_rss, hwm))
    local off = tide.fit(model, {train = train, progress = false, cost = false})
    assert.is_nil(off.flops)
    assert.is_nil(off.cost)
  end)

  it("estimates energy from core-seconds when told to", function()
    local model, train = setup()
    local h = tide.fit(model, {train = train, epochs = 2, progress = false,
                               cost = {energy = "estimate", watts_per_core = 7}})
    assert.equal("estimate", h.energy_source)
    for e = 1, 2 do near(h.energy_j[e], 7 * h.core_seconds[e], 1e-12, "J") end
    near(h.cost.co2e_g, h.cost.energy_j / 3.6e6 * 475, 1e-12, "default grid intensity")
  end)

  it("reads RAPL package counters and their wrap-around", function()
    local root = os.tmpname()
    os.remove(root)
    assert(os.execute(("mkdir -p %s/intel-rapl:0/intel-rapl:0:0 %s/intel-rapl:1"):format(root,
                                                                                      root)))
    local function write(path, v)
      local f = assert(io.open(path, "w"))
      f:write(("%d\n"):format(v))
      f:close()
    end
    local max = 262143328850
    write(root .. "/intel-rapl:0/max_energy_range_uj", max)
    write(root .. "/intel-rapl:1/max_energy_range_uj", max)
    write(root .. "/intel-rapl:0/intel-rapl:0:0/energy_uj", 5)  -- a sub-zone: not added
    local e0, e1 = max - 1000000, 0                              -- package 0 wraps
    write(root .. "/intel-rapl:0/energy_uj", e0)
    write(root .. "/intel-rapl:1/energy_uj", e1)
    local model, train = setup()
    local h = tide.fit(model, {train = train, epochs = 2, progress = false,
      cost = {powercap = root}, on_step = function()    -- 8 steps an epoch, 0.5 J a step each
        e0, e1 = (e0 + 500000) % max, e1 + 500000
        write(root .. "/intel-rapl:0/energy_uj", e0)
        write(root .. "/intel-rapl:1/energy_uj", e1)
      end})
    os.execute("rm -rf " .. root)
    assert.equal("rapl", h.energy_source)
    near(h.energy_j[1], 8.0, 1e-9, "epoch 1 J")
    near(h.energy_j[2], 8.0, 1e-9, "epoch 2 J")
    near(h.cost.energy_j, 16.0, 1e-9, "total J")
  end)

  it("prints one closing line", function()
    local script = os.tmpname()
    local f = io.open(script, "w")
    f:write([[
tide.manual_seed(0)
local x = tide.randn(64, 4)
local ds = data.TensorDataset(x, x:select(2, 1):gt(0):long() + 1)
tide.fit(nn.Linear(4, 2), {train = data.DataLoader(ds, {batch_size = 16}), epochs = 2,
  cost = {energy = "estimate"}})
]])
    f:close()
    local p = io.popen(TIDE .. " " .. script .. " 2>&1")
    local out = p:read("a")
    p:close()
    os.remove(script)
    local line = out:match("\n(cost: [^\n]*)\n$")
    assert.truthy(line, out)
    -- 8 MACs x (6 x 64) x 2 epochs
    assert.truthy(line:find("^cost: 6.14 kFLOP in [%d.e-]+ s = [%d.]+ %a*FLOP/s, [%d.e-]+ core%-s, " ..
      "peak RSS [%d.]+ MB, [%d.e-]+ %a*J %(estimated at 10 W per core%), [%d.e-]+ %a*g CO2e at " ..
      "475 g/kWh$"), line)
  end)

  it("plot.loss draws the cumulative cost on the right axis", function()
    local h = {train_loss = {0.9, 0.5, 0.4}, energy_j = {10, 12, 11}, flops = {1, 1, 1}}
    local page = plot_loss_text(h)
    assert.truthy(page:find("energy (J)", 1, true), page)
    H.err("plot.loss: cost must be true or one of", require("tide.plot").loss, h,
          {cost = "watts"})
    H.err("plot.loss: history has no co2e_g", require("tide.plot").loss, h, {cost = "co2e_g"})
  end)

  it("rejects misused options", function()
    local model, train = setup()
    H.err("tide.fit: cost.watts_per_core must be a number >= 0", tide.fit, model,
          {train = train, cost = {watts_per_core = -1}})
    H.err("tide.fit: cost: unknown field 'grid'", tide.fit, model, {train = train,
          cost = {grid = 1}})
    H.err("tide.fit: cost.energy must be \"auto\" or \"estimate\"", tide.fit, model,
          {train = train, cost = {energy = "rapl"}})
  end)
end)
