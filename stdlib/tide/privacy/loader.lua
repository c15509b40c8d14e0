-- stdlib/tide/privacy/loader.lua: Poisson sampling for DP-SGD. Each of the #loader steps of an
-- epoch takes every example independently with probability q (so batches vary in size and may
-- be empty), which is the sampling the accountant's analysis assumes. Draws come from a stream
-- keyed by the loader's seed, the epoch and the step: tide.manual_seed's generator is left alone.
local tide = require "tide"
local seeds = require "tide.data.seed"

local Poisson = {}
Poisson.__index = Poisson
Poisson.__name = "tide.privacy.PoissonLoader"

-- base: the DataLoader it replaces (examples, #loader steps, fetch); q: the sample rate
local function new(base, q, seed)
  return setmetatable({base = base, dataset = base.dataset, n = base.n, steps = #base,
                       sample_rate = q, expected_batch_size = q * base.n, seed = seed, epoch = 0},
                      Poisson)
end

function Poisson.__len(self) return self.steps end

function Poisson.__tostring(self)
  return ("PoissonLoader(%d examples, sample rate %.4g: %d batches of %.1f expected)"):format(
    self.n, self.sample_rate, self.steps, self.expected_batch_size)
end

function Poisson:set_epoch(e) self.epoch = e - 1 end

-- the positions (int64, 1-based, ascending) that step k of epoch e takes
function Poisson:positions(e, k)
  local key = seeds.mix(seeds.mix(self.seed, e), k)
  local u = seeds.with(tide, key, function() return tide.rand(self.n, {dtype = "float64"}) end)
  return tide.arange(1, self.n, {dtype = "int64"}):masked_select(u:lt(self.sample_rate))
end

function Poisson:iter()
  self.epoch = self.epoch + 1
  local e, k = self.epoch, 0
  return function()
    if k >= self.steps then return nil end
    k = k + 1
    local pos = self:positions(e, k)
    if pos:size(1) > 0 then return table.unpack(self.base:fetch(pos)) end
    local fields = self.base:fetch(tide.ones(1, {dtype = "int64"})) -- empty: noise only
    for f, t in ipairs(fields) do fields[f] = tide.is_tensor(t) and t:narrow(1, 1, 0) or {} end
    return table.unpack(fields)
  end
end

return {new = new}
