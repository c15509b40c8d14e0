-- stdlib/tide/data/dataset.lua: TensorDataset, subsets and data.split.
-- A tensor-backed dataset holds its fields as whole tensors: `_tensors` (each with the same
-- size along dim 1), optionally `_rows` (an int64 tensor: which rows of the tensors, in order,
-- for subsets) and `_post` (per field, a function applied to gathered rows, e.g. uint8 pixels
-- to float32 in [0, 1]). gather() turns a tensor of positions into one index per field: the
-- DataLoader's whole per-batch cost. Any other dataset is a table with __len and __index
-- whose ds[i] is one value or a list of fields.
local tide = require "tide"

local M = {}

local Dataset = {}          -- methods shared by tensor-backed datasets
Dataset.__name = "tide.data.Dataset"

local function is_backed(ds)
  return type(ds) == "table" and rawget(ds, "_tensors") ~= nil
end
M.is_backed = is_backed

function Dataset.__len(ds) return ds._n end

-- ds[i]: the list {x_i, y_i, ...} (Lua's index operator yields one value; ds:get(i) returns
-- them as values). A field of 1 dim gives a number, of more dims a tensor.
function Dataset.__index(ds, i)
  if type(i) ~= "number" then return Dataset[i] end
  return {Dataset.get(ds, i)}
end

local function check_pos(ds, i, fn)
  local n = ds._n
  local k = math.tointeger(i)
  if not k or k == 0 or k > n or k < -n then
    error(string.format("%s: index %s out of range for a dataset of %d examples (expected 1..%d "
                        .. "or -%d..-1)", fn, tostring(i), n, n, n), 3)
  end
  return k < 0 and n + k + 1 or k
end

-- ds:get(i): x_i, y_i, ... as separate values.
function Dataset.get(ds, i)
  local k = check_pos(ds, i, ds._name .. ":get")
  local row = ds._rows and ds._rows[k] or k
  local out = {}
  for f, t in ipairs(ds._tensors) do
    local v = t[row]
    local post = ds._post and ds._post[f]
    out[f] = post and tide.is_tensor(v) and post(v) or v
  end
  return table.unpack(out, 1, #ds._tensors)
end

-- The rows at `pos` (an int64 tensor of 1-based positions) of every field: one index per field.
local function gather(ds, pos)
  local rows = ds._rows and ds._rows:index(1, pos) or pos
  local out, post = {}, ds._post
  for f, t in ipairs(ds._tensors) do
    local b = t:index(1, rows)
    if post and post[f] then b = post[f](b) end
    out[f] = b
  end
  return out
end
M.gather = gather

-- ds:tensors(): every field in full, as tensors (the same memory when nothing is selected or
-- converted; note fashion_mnist's images then become 188 MB of float32).
function Dataset.tensors(ds)
  if not ds._rows and not ds._post then return table.unpack(ds._tensors) end
  return table.unpack(gather(ds, tide.arange(1, ds._n, {dtype = "int64"})))
end

function Dataset.__tostring(ds)
  local shapes = {}
  for f, t in ipairs(ds._tensors) do
    local s = t.shape
    s[1] = ds._n
    shapes[f] = table.concat(s, "x") .. " " .. (ds._post and ds._post[f] and "float32" or t.dtype)
  end
  return string.format("%s(%d examples: %s)", ds._name, ds._n, table.concat(shapes, ", "))
end

-- A tensor-backed dataset object (fields as the table holds them, plus the methods above).
function M.backed(fields)
  fields._name = fields._name or "TensorDataset"
  fields._n = fields._rows and fields._rows:size(1) or fields._tensors[1]:size(1)
  return setmetatable(fields, Dataset)
end

-- data.TensorDataset(x, y, ...): example i is row i of each tensor.
function M.TensorDataset(...)
  local ts = table.pack(...)
  if ts.n == 0 then error("TensorDataset: expected at least one tensor", 2) end
  local n
  for i = 1, ts.n do
    local t = ts[i]
    if not tide.is_tensor(t) then
      error(string.format("TensorDataset: argument %d must be a tensor, got %s", i, type(t)), 2)
    end
    if t:dim() == 0 then error(string.format("TensorDataset: argument %d is 0-D", i), 2) end
    n = n or t:size(1)
    if t:size(1) ~= n then
      error(string.format("TensorDataset: argument %d has %d rows but argument 1 has %d "
                          .. "(shapes %s and %s)", i, t:size(1), n,
                          table.concat(t.shape, "x"), table.concat(ts[1].shape, "x")), 2)
    end
  end
  return M.backed({_tensors = {table.unpack(ts, 1, ts.n)}})
end

-- ---- subsets -----------------------------------------------------------------------------

local Subset = {__name = "tide.data.Subset"}
function Subset.__len(s) return s._n end
function Subset.__index(s, i)
  if type(i) ~= "number" then return Subset[i] end
  return s._base[s._rows[check_pos(s, i, "Subset")]]
end
function Subset.get(s, i)
  local v = s._base[s._rows[check_pos(s, i, "Subset:get")]]
  if type(v) == "table" and not tide.is_tensor(v) then return table.unpack(v) end
  return v
end

-- The examples of ds at positions `rows` (an int64 tensor): tensor-backed stays tensor-backed.
function M.subset(ds, rows)
  if is_backed(ds) then
    return M.backed({_tensors = ds._tensors, _post = ds._post, _name = "Subset",
                     _rows = ds._rows and ds._rows:index(1, rows) or rows, classes = ds.classes})
  end
  return setmetatable({_base = ds, _rows = rows, _n = rows:size(1)}, Subset)
end

-- Sizes from fractions (or counts): floor each, then hand the remainder out one by one from
-- the first part, as torch.utils.data.random_split does.
local function sizes_of(parts, n)
  local sizes, total, fractions = {}, 0, false
  for i, p in ipairs(parts) do
    if type(p) ~= "number" or not (p >= 0 and p < math.huge) then -- NaN fails p >= 0
      error(string.format("data.split: part %d must be a finite number >= 0, got %s", i,
                          type(p) ~= "number" and type(p) or p ~= p and "nan" or tostring(p)), 3)
    end
    fractions = fractions or math.type(p) == "float"
  end
  if fractions then
    local sum = 0
    for _, p in ipairs(parts) do sum = sum + p end
    if math.abs(sum - 1) > 1e-6 then
      error(string.format("data.split: fractions add up to %g (expected 1)", sum), 3)
    end
    for i, p in ipairs(parts) do sizes[i] = math.floor(n * p); total = total + sizes[i] end
    for i = 0, n - total - 1 do local k = i % #parts + 1; sizes[k] = sizes[k] + 1 end
  else
    for i, p in ipairs(parts) do sizes[i] = p; total = total + p end
    if total ~= n then
      error(string.format("data.split: counts add up to %d but the dataset has %d examples",
                          total, n), 3)
    end
  end
  return sizes
end

-- data.split(ds, {0.9, 0.1} [, seed]): a list of disjoint random subsets covering ds.
function M.split(ds, parts, seed)
  if type(parts) ~= "table" or #parts == 0 then
    error("data.split: expected a list of fractions or counts, e.g. {0.9, 0.1}", 2)
  end
  local n = #ds
  local sizes = sizes_of(parts, n)
  if seed ~= nil and not math.tointeger(seed) then
    error("data.split: seed must be an integer, got " .. tostring(seed), 2)
  end
  local perm = seed and tide.randperm(n, {seed = seed}) or tide.randperm(n)
  local out, start = {}, 1
  for i, k in ipairs(sizes) do
    out[i] = M.subset(ds, k > 0 and perm:narrow(1, start, k):contiguous()
                          or tide.empty(0, {dtype = "int64"}))
    start = start + k
  end
  return out
end

return M
