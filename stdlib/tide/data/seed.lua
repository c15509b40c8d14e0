-- stdlib/tide/data/seed.lua: seeds derived from a user seed, so data loaders and corpora draw
-- from streams of their own and leave tide.manual_seed's generator alone. SplitMix64's
-- finaliser on Lua's wrapping 64-bit integers.
local M = {}

local function splitmix(z)
  z = (z ~ (z >> 30)) * -4658895280553007687       -- 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * -7723592293110705685       -- 0x94D049BB133111EB
  return z ~ (z >> 31)
end

-- A seed for draw k (an epoch, a batch) of the stream keyed by seed: a different, well-mixed
-- value for every (seed, k), the same on every run.
function M.mix(seed, k)
  return splitmix(seed + (k + 1) * -7046029254386353131)  -- 0x9E3779B97F4A7C15
end

-- `count` integers uniform in lo..hi (lo <= hi) from the stream keyed by seed, as a list.
function M.ints(seed, count, lo, hi)
  local out, span = {}, hi - lo + 1
  for i = 1, count do
    out[i] = lo + (M.mix(seed, i) >> 1) % span  -- bias below span / 2^63
  end
  return out
end

-- fn() run on tide's generator restarted from seed; the caller's stream is put back after.
function M.with(tide, seed, fn)
  local st = tide.get_rng_state()
  tide.manual_seed(seed)
  local ok, r = pcall(fn)
  tide.set_rng_state(st)
  if not ok then error(r, 0) end
  return r
end

-- A fresh seed from tide's own generator (reproducible under tide.manual_seed).
function M.draw(tide)
  return tide.randint(0, 0x7fffffff, 1)[1]
end

return M
