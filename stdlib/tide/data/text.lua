-- stdlib/tide/data/text.lua: data.text, a byte-level corpus for language models (token id =
-- byte + 1, so ids are 1..256 like every Lua index), and data.fortunes (Debian's fortunes).
local tide = require "tide"
local dataset = require "tide.data.dataset"
local seeds = require "tide.data.seed"

local M = {}

local Corpus = {__name = "tide.data.Corpus"}
Corpus.__index = Corpus

local function read(path, fn)
  local f, err = io.open(path, "rb")
  if not f then error(string.format("%s: cannot read %s", fn, err), 4) end
  local s = f:read("a")
  f:close()
  return s
end

local function files_of(dir, filter)
  local names = assert(tide._data.listdir(dir))
  table.sort(names)
  local out = {}
  for _, name in ipairs(names) do
    if not filter or filter(name) then out[#out + 1] = dir .. "/" .. name end
  end
  return out
end

-- The text of src: a list of paths, a directory (its files, sorted by name), a file, or the
-- text itself.
local function source(src, o, fn)
  if type(src) == "table" then
    local parts = {}
    for i, p in ipairs(src) do
      if type(p) ~= "string" then
        error(string.format("%s: file %d of the list must be a path, got %s", fn, i, type(p)), 3)
      end
      parts[i] = read(p, fn)
    end
    return table.concat(parts), #src .. " files"
  end
  if type(src) ~= "string" then
    error(fn .. ": expected a string, a path or a list of paths, got " .. type(src), 3)
  end
  if o.string or src:find("\n", 1, true) or #src > 4096 then return src, "a string" end
  if tide._data.listdir(src) then
    local files = files_of(src, o.filter)
    return source(files, {}, fn), src
  end
  local f = io.open(src, "rb")
  if f then
    f:close()
    return read(src, fn), src
  end
  if src:find("/", 1, true) or src:match("%.%w+$") then
    error(string.format("%s: no such file or directory: %s (pass {string = true} to use it as "
                        .. "the text itself)", fn, src), 3)
  end
  return src, "a string"
end

-- data.text(path_or_string [, {string =, filter =}])
function M.text(src, o)
  o = o or {}
  local s, from = source(src, o, "data.text")
  return setmetatable({ids = tide._data.bytes(s), vocab_size = 256, from = from}, Corpus)
end

-- data.fortunes([dir]): the fortune files of Debian's `fortunes` package, concatenated.
function M.fortunes(dir)
  dir = dir or "/usr/share/games/fortunes"
  if not tide._data.listdir(dir) then
    error("data.fortunes: " .. dir .. " not found (install it with: sudo apt install fortunes)", 2)
  end
  return M.text(dir, {filter = function(name)
    return not name:match("%.dat$") and not name:match("%.u8$")
  end})
end

function Corpus.__len(c) return c.ids:size(1) end

function Corpus.__tostring(c)
  return string.format("Corpus(%d bytes from %s, vocab 256)", #c, c.from)
end

-- corpus:encode(s): int64 ids byte + 1, one per byte of s.
function Corpus.encode(_, s)
  if type(s) ~= "string" then error("encode: expected a string, got " .. type(s), 2) end
  return tide._data.bytes(s)
end

-- corpus:decode(t): the string of a tensor of ids (1..256), row-major.
function Corpus.decode(_, t)
  if not tide.is_tensor(t) then error("decode: expected an int64 tensor, got " .. type(t), 2) end
  return tide._data.text(t)
end

local function check_len(c, batch, seq_len, fn)
  for name, v in pairs({batch = batch, seq_len = seq_len}) do
    if not math.tointeger(v) or v < 1 then
      error(string.format("%s: %s must be an integer >= 1, got %s", fn, name, tostring(v)), 3)
    end
  end
  if #c < seq_len + 1 then
    error(string.format("%s: the corpus has %d bytes, fewer than seq_len + 1 = %d", fn, #c,
                        seq_len + 1), 3)
  end
end

-- corpus:batch(batch, seq_len [, {seed =}]): x, y (batch x seq_len int64) from windows at
-- random offsets, y = x shifted by one. With seed the batch is a function of the seed alone
-- (pass the step number as the seed); without, it comes from tide's generator.
function Corpus:batch(batch, seq_len, o)
  check_len(self, batch, seq_len, "batch")
  o = o or {}
  local hi = #self - seq_len
  local starts
  if o.seed ~= nil then
    if not math.tointeger(o.seed) then error("batch: seed must be an integer", 2) end
    starts = tide.tensor(seeds.ints(o.seed, batch, 1, hi), {dtype = "int64"}):view(batch, 1)
  else
    starts = tide.randint(1, hi, {batch, 1})
  end
  self._offsets = self._offsets and self._offsets:size(2) == seq_len + 1 and self._offsets
                  or tide.arange(0, seq_len, {dtype = "int64"}):view(1, seq_len + 1)
  local w = self.ids:index(1, (starts + self._offsets):view(-1)):view(batch, seq_len + 1)
  return w:narrow(2, 1, seq_len):contiguous(), w:narrow(2, 2, seq_len):contiguous()
end

-- corpus:dataset(seq_len): a TensorDataset of the non-overlapping windows (x, y), for a
-- DataLoader to shuffle and batch.
function Corpus:dataset(seq_len)
  check_len(self, 1, seq_len, "dataset")
  local n = (#self - 1) // seq_len
  local x = self.ids:narrow(1, 1, n * seq_len):view(n, seq_len)
  local y = self.ids:narrow(1, 2, n * seq_len):view(n, seq_len)
  return dataset.TensorDataset(x, y)
end

return M
