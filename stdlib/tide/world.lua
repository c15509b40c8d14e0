-- stdlib/tide/world.lua: what tide.fit asks of a distributed run (doc/dist.md): this rank, the
-- number of ranks, and sums over them. It never loads tide.dist (nor MPI) itself: a run is
-- distributed once the script initialized tide.dist with more than one rank.
local tide = require "tide"

local M = {}

-- rank, size and the dist module when more than one rank runs; else 1, 1, nil
function M.get()
  local dist = package.loaded["tide.dist"]
  if dist and dist.is_initialized() and dist.size() > 1 then
    return dist.rank(), dist.size(), dist
  end
  return 1, 1, nil
end

-- Whether this process prints, plots and writes files: rank 1, or the only process.
function M.is_main() return (M.get()) == 1 end

-- n, sum and the fields names of sums summed over the ranks (one allreduce; sums in place).
function M.reduce(n, sum, sums, names)
  local _, _, dist = M.get()
  if not dist then return n, sum end
  local v = {n, sum or 0}
  for i, name in ipairs(names) do v[i + 2] = sums[name] end
  v = dist.allreduce(tide.tensor(v, {dtype = "float64"}), "sum"):totable()
  for i, name in ipairs(names) do sums[name] = v[i + 2] end
  return math.tointeger(v[1]) or v[1], sum and v[2]
end

-- Raises msg (with every rank's value) unless v, an integer, is the same on every rank.
function M.check_same(v, msg)
  local _, _, dist = M.get()
  if not dist then return end
  local all = dist.allgather(tide.tensor({v}, {dtype = "int64"})):reshape(-1):totable()
  for r = 2, #all do
    if all[r] ~= all[1] then
      local parts = {}
      for k, x in ipairs(all) do parts[k] = ("rank %d: %d"):format(k, x) end
      error(msg .. " (" .. table.concat(parts, ", ") .. ")", 0)
    end
  end
end

return M
