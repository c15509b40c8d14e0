-- stdlib/tide/data/loader.lua: data.DataLoader. One epoch = one permutation of positions
-- (seeded per epoch, a stream of its own), cut into batches. A tensor-backed dataset turns a
-- slice of it into one index per field (dataset.lua's gather): no Lua work per example. Other
-- datasets are read example by example and stacked.
local tide = require "tide"
local dataset = require "tide.data.dataset"
local seeds = require "tide.data.seed"

local DataLoader = {}
DataLoader.__index = DataLoader
DataLoader.__name = "tide.data.DataLoader"

local KNOWN = {batch_size = true, shuffle = true, drop_last = true, seed = true,
               transform = true, shard = true}

local function int_opt(o, key, def, min)
  local v = o[key]
  if v == nil then return def end
  local k = math.tointeger(v)
  if not k or k < min then
    error(string.format("DataLoader: %s must be an integer >= %d, got %s", key, min,
                        tostring(v)), 3)
  end
  return k
end

-- data.DataLoader(ds, {batch_size = 1, shuffle = false, drop_last = false, seed =,
-- transform =, shard = {rank, size} or "auto"})
local function new(ds, o)
  o = o or {}
  if type(o) ~= "table" then error("DataLoader: options must be a table, got " .. type(o), 2) end
  for k in pairs(o) do
    if not KNOWN[k] then error(string.format("DataLoader: unknown option '%s'", tostring(k)), 2) end
  end
  local mt = getmetatable(ds)
  if type(ds) ~= "table" or not (mt and mt.__len or rawlen(ds) > 0) then
    error("DataLoader: expected a dataset (a table with #ds and ds[i]), got " .. type(ds), 2)
  end
  if o.transform ~= nil and type(o.transform) ~= "function" then
    error("DataLoader: transform must be a function, got " .. type(o.transform), 2)
  end
  local self = setmetatable({
    dataset = ds, n = #ds,
    batch_size = int_opt(o, "batch_size", 1, 1),
    shuffle = o.shuffle and true or false, drop_last = o.drop_last and true or false,
    transform = o.transform, epoch = 0,
    backed = dataset.is_backed(ds),
  }, DataLoader)
  self.seed = int_opt(o, "seed", nil, math.mininteger)
  if self.shuffle and not self.seed then self.seed = seeds.draw(tide) end
  self.per_epoch = self.n
  if o.shard ~= nil then
    local s = o.shard
    if s == "auto" then s = self:world() end
    local rank, size = type(s) == "table" and math.tointeger(s[1]), type(s) == "table" and
                       math.tointeger(s[2])
    if not rank or not size or size < 1 or rank < 1 or rank > size then
      error("DataLoader: shard must be {rank, size} with 1 <= rank <= size, or \"auto\", got "
            .. (type(s) == "table" and ("{" .. tostring(s[1]) .. ", " .. tostring(s[2]) .. "}")
                or tostring(s)), 2)
    end
    self.rank, self.size = rank, size
    self.per_epoch = self.n == 0 and 0 or (self.n + size - 1) // size
  end
  return self
end

-- shard = "auto": this rank of tide.dist (initialized here if need be), with rank 1's shuffle
-- seed so that every rank cuts its shard from the same permutation.
function DataLoader:world()
  local dist = tide.dist
  local rank, size = dist.init()
  if self.shuffle and size > 1 then
    self.seed = dist.broadcast(tide.tensor({self.seed}, {dtype = "int64"}), 1)[1]
  end
  return {rank, size}
end

-- Batches per epoch.
function DataLoader.__len(self)
  local m, b = self.per_epoch, self.batch_size
  return self.drop_last and m // b or (m + b - 1) // b
end

function DataLoader.__tostring(self)
  return string.format("DataLoader(%d examples, batch_size %d%s%s: %d batches)", self.n,
                       self.batch_size, self.shuffle and ", shuffled" or "",
                       self.rank and string.format(", shard %d of %d", self.rank, self.size) or "",
                       #self)
end

-- The next iter() runs epoch e (1-based): to resume a run, or to line up sharded loaders.
function DataLoader:set_epoch(e)
  local k = math.tointeger(e)
  if not k or k < 1 then error("DataLoader:set_epoch: expected an integer >= 1, got " .. tostring(e), 2) end
  self.epoch = k - 1
end

-- The positions of this epoch, in order (int64, 1-based): shuffled with the epoch's own seed,
-- then this shard's share (every size-th, wrapping around so every shard has as many).
function DataLoader:order(epoch)
  local n = self.n
  local order = self.shuffle and tide.randperm(n, {seed = seeds.mix(self.seed, epoch)})
                or tide.arange(1, n, {dtype = "int64"})
  if self.rank and n > 0 then
    local pick = (tide.arange(0, self.per_epoch - 1, {dtype = "int64"}) * self.size
                  + (self.rank - 1)) % n + 1
    order = order:index(1, pick)
  end
  return order
end

-- an example's layout: "(number, 2x3 tensor)"; the same layout for every example of a batch
local function layout(ex)
  local parts = {}
  for f = 1, #ex do
    local v = ex[f]
    parts[f] = tide.is_tensor(v) and ((#v.shape == 0 and "scalar" or table.concat(v.shape, "x"))
               .. " " .. v.dtype .. " tensor") or type(v)
  end
  return "(" .. table.concat(parts, ", ") .. ")"
end

-- Generic datasets: ds[i] is one value or a list of fields; stack each field.
local function stack_examples(ds, pos)
  local cols, nf, first, want = {}, nil, nil, nil
  for j = 1, pos:size(1) do
    local i = pos[j]
    local ex = ds[i]
    if type(ex) ~= "table" or tide.is_tensor(ex) then ex = {ex} end
    local l = layout(ex)
    if not want then
      first, want, nf = i, l, #ex
    elseif l ~= want then -- ragged: stacking would pair one example's x with another's y
      error(("DataLoader: examples of a batch differ: ds[%d] is %s, ds[%d] is %s (every " ..
             "example needs the same fields, shapes and types)"):format(first, want, i, l), 3)
    end
    for f = 1, nf do
      cols[f] = cols[f] or {}
      cols[f][j] = ex[f]
    end
  end
  local out = {}
  for f = 1, nf or 0 do
    local c = cols[f]
    if tide.is_tensor(c[1]) then
      out[f] = tide.stack(c, 1)
    elseif type(c[1]) == "number" then
      local ints = true
      for _, v in ipairs(c) do ints = ints and math.type(v) == "integer" end
      out[f] = tide.tensor(c, {dtype = ints and "int64" or "float32"})
    else
      out[f] = c   -- strings, tables: the list as it is
    end
  end
  return out
end

-- The fields of the examples at positions pos (int64, 1-based), transformed: one batch.
function DataLoader:fetch(pos)
  local ds = self.dataset
  local fields = self.backed and dataset.gather(ds, pos) or stack_examples(ds, pos)
  if self.transform then
    local r = table.pack(self.transform(table.unpack(fields)))
    for f = 1, r.n do if r[f] ~= nil then fields[f] = r[f] end end
  end
  return fields
end

-- for x, y in loader:iter() do ... end: one epoch of batches; each call is the next epoch.
function DataLoader:iter()
  self.epoch = self.epoch + 1
  local order, b = self:order(self.epoch), self.batch_size
  local m, nb, start, k = order:size(1), #self, 1, 0
  return function()
    if k >= nb then return nil end
    k = k + 1
    local len = math.min(b, m - start + 1)
    local pos = order:narrow(1, start, len)
    start = start + len
    return table.unpack(self:fetch(pos))
  end
end

return new
