-- tests/lua/data_spec.lua: tide.data. IDX files written here read back exactly (every type,
-- plain and gzipped) and malformed ones fail with messages naming the file and the sizes;
-- Fashion-MNIST against numbers read independently with Python (gzip + numpy); datasets,
-- DataLoader batching, seeded shuffles, shards and transforms; split, csv and text corpora.
local tide = require "tide"
local data = require "tide.data"
local H = require "helpers"

local long = H.long

local TMP = os.tmpname()
os.remove(TMP)
assert(os.execute("mkdir -p " .. TMP))
local function path(name) return TMP .. "/" .. name end

local function write(name, bytes)
  local f = assert(io.open(path(name), "wb"))
  f:write(bytes)
  f:close()
  return path(name)
end

local function gzip(name) -- name.gz beside name (-n: no name or time stamp in the header)
  assert(os.execute("gzip -n -k -f " .. path(name)))
  return path(name) .. ".gz"
end

local function read(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- An IDX file: magic, sizes, then the values packed with fmt (string.pack, big-endian).
local CODES = {uint8 = {8, "B"}, int8 = {9, "b"}, int16 = {0x0B, ">i2"}, int32 = {0x0C, ">i4"},
               float32 = {0x0D, ">f"}, float64 = {0x0E, ">d"}}
local function idx_bytes(kind, shape, values)
  local code, fmt = CODES[kind][1], CODES[kind][2]
  local parts = {string.char(0, 0, code, #shape)}
  for _, s in ipairs(shape) do parts[#parts + 1] = string.pack(">I4", s) end
  for _, v in ipairs(values) do parts[#parts + 1] = string.pack(fmt, v) end
  return table.concat(parts)
end

local function flat(t)
  local out = {}
  local function walk(v)
    if type(v) == "table" then for _, w in ipairs(v) do walk(w) end else out[#out + 1] = v end
  end
  walk(t:totable())
  return out
end

describe("data.idx", function()
  local cases = {
    {"uint8", "uint8", {2, 3}, {0, 1, 127, 128, 254, 255}},
    {"int8", "int64", {4}, {-128, -1, 0, 127}},
    {"int16", "int64", {2, 2}, {-32768, -2, 300, 32767}},
    {"int32", "int64", {3, 1, 2}, {-2147483648, -70000, 0, 1, 65536, 2147483647}},
    {"float32", "float32", {2, 2}, {0.5, -1.25, 2.0 ^ 127, 1 / 1024}},
    {"float64", "float64", {3}, {math.pi, -1e300, 2 ^ -1074}},
  }
  for _, c in ipairs(cases) do
    local kind, dtype, shape, values = c[1], c[2], c[3], c[4]
    it(kind .. " plain and gzipped read back exactly as " .. dtype, function()
      local p = write(kind .. ".idx", idx_bytes(kind, shape, values))
      for _, file in ipairs({p, gzip(kind .. ".idx")}) do
        local t = data.idx(file)
        assert.equal(dtype, t.dtype)
        assert.same(shape, t.shape)
        assert.same(values, flat(t))
      end
    end)
  end

  it("detects gzip by its magic without a .gz name, and reads multi-member files", function()
    local p = write("m.idx", idx_bytes("uint8", {3}, {7, 8, 9}))
    local gz = read(gzip("m.idx"))
    assert.same({7, 8, 9}, data.idx(write("m_noext", gz)):totable())
    -- a header member followed by a data member: one stream as gunzip sees it
    write("h.part", idx_bytes("uint8", {3}, {}))
    write("d.part", string.char(7, 8, 9))
    local two = read(gzip("h.part")) .. read(gzip("d.part"))
    assert.same({7, 8, 9}, data.idx(write("two.gz", two)):totable())
    assert.equal(p, path("m.idx"))
  end)

  it("an empty dimension gives an empty tensor", function()
    local t = data.idx(write("e.idx", idx_bytes("uint8", {0, 28}, {})))
    assert.same({0, 28}, t.shape)
  end)

  local good = idx_bytes("uint8", {2, 3}, {1, 2, 3, 4, 5, 6})   -- 8 + 6 bytes
  local bad = {
    {"bad magic", "\1" .. good:sub(2), "bad magic 01 00 08 02"},
    {"unknown type", "\0\0\10\2" .. good:sub(5), "unknown element type 0x0a"},
    {"zero dims", "\0\0\8\0", "0 dims (expected 1..8)"},
    {"nine dims", "\0\0\8\9" .. string.rep("\0\0\0\1", 9) .. "x", "9 dims (expected 1..8)"},
    {"empty file", "", "truncated header: expected 4 bytes, got 0 bytes"},
    {"cut in the magic", good:sub(1, 3), "truncated header: expected 4 bytes, got 3 bytes"},
    {"cut in the sizes", good:sub(1, 9), "truncated header: expected 12 bytes, got 9 bytes"},
    {"cut in the data", good:sub(1, 17), "truncated: expected 6 bytes of data after the "
                                         .. "12-byte header, got 5 bytes"},
    {"header only", good:sub(1, 12), "truncated: expected 6 bytes of data after the 12-byte "
                                     .. "header, got 0 bytes"},
    {"trailing bytes", good .. "\0\0", "trailing bytes: expected 6 bytes of data after the "
                                       .. "12-byte header, got 8 bytes"},
    {"size overflow", "\0\0\14\4" .. string.rep("\255\255\255\255", 4), "exceed 2^40 bytes"},
    {"too large", "\0\0\8\3" .. string.rep("\0\1\0\0", 3), "exceed 2^40 bytes"},
    {"a 0 size beside huge ones", "\0\0\12\3\0\0\0\0\198\217\235\222\255\2\255\254",
     "exceed 2^40 bytes"},                         -- found by tests/fuzz/fuzz_idx.c
  }
  for _, b in ipairs(bad) do
    it("refuses " .. b[1] .. " (plain and gzipped), naming the file", function()
      local p = write("bad.idx", b[2])
      H.err(b[3], data.idx, p)
      H.err("data.idx: " .. p .. ": ", data.idx, p)
      local gz = gzip("bad.idx")
      local ok, msg = pcall(data.idx, gz)
      assert.is_false(ok)
      assert.truthy(msg:find(gz, 1, true), msg)
    end)
  end

  it("gzipped: the same sizes in the messages", function()
    write("g.idx", good:sub(1, 17))
    H.err("truncated: expected 6 bytes of data after the 12-byte header, got 5 bytes", data.idx,
          gzip("g.idx"))
    write("g.idx", good .. "\0\0")
    H.err("trailing bytes: expected 6 bytes of data after the 12-byte header, got 8 bytes",
          data.idx, gzip("g.idx"))
    write("g.idx", good:sub(1, 9))
    H.err("truncated header: expected 12 bytes, the gzip stream holds 9 bytes", data.idx,
          gzip("g.idx"))
  end)

  it("refuses bad gzip data: corrupt, cut short, garbage after, a header claiming too much",
     function()
    write("z.idx", idx_bytes("uint8", {64, 64}, {}) .. string.rep("tide", 1024))
    local gz = read(gzip("z.idx"))
    local mid = #gz // 2
    local corrupt = gz:sub(1, mid) .. string.char(gz:byte(mid + 1) ~ 0xff) .. gz:sub(mid + 2)
    local ok, msg = pcall(data.idx, write("corrupt.gz", corrupt))
    assert.is_false(ok)
    assert.truthy(msg:find("gzip", 1, true) or msg:find("truncated", 1, true), msg)
    H.err("the gzip stream is truncated", data.idx, write("cut.gz", gz:sub(1, #gz - 12)))
    H.err("bytes of garbage after the gzip stream", data.idx, write("junk.gz", gz .. "junk"))
    H.err("bad gzip data (unknown compression method)", data.idx,
          write("hdr.gz", "\31\139\9\0garbage"))
    write("bomb.idx", "\0\0\8\3" .. string.rep("\0\0\64\0", 3))     -- 2^42 > 2^40
    H.err("exceed 2^40 bytes", data.idx, gzip("bomb.idx"))
    write("bomb.idx", "\0\0\8\3" .. string.rep("\0\0\16\0", 3))     -- 2^36 bytes claimed
    H.err("more than a", data.idx, gzip("bomb.idx"))
  end)

  it("names a missing file and rejects a non-string", function()
    H.err("data.idx: cannot open '" .. path("nope.idx") .. "'", data.idx, path("nope.idx"))
    H.err("data.idx: expected a path, got number", data.idx, 3)
  end)
end)

describe("data.mnist", function()
  it("refuses labels outside the 10 classes, naming the file", function()
    local dir = path("mnist_bad")
    os.execute("mkdir -p " .. dir)
    local function files(labels)
      write("mnist_bad/t10k-images-idx3-ubyte", idx_bytes("uint8", {#labels, 2, 2}, {}) ..
            ("\0"):rep(4 * #labels))
      write("mnist_bad/t10k-labels-idx1-ubyte", idx_bytes("uint8", {#labels}, labels))
    end
    files({3, 9, 0, 7})
    local ds = data.mnist{root = dir, split = "test"}
    assert.same({4, 10, 1, 8}, ds._tensors[2]:totable())
    for _, bad in ipairs({{{3, 200, 1, 255}, 200, 2}, {{10}, 10, 1}, {{0, 1, 255}, 255, 3}}) do
      files(bad[1])
      H.err(("mnist: %s/t10k-labels-idx1-ubyte: label %d of example %d is outside the 10 " ..
             "classes 0..9"):format(dir, bad[2], bad[3]), data.mnist, {root = dir, split = "test"})
      H.err("fashion_mnist: " .. dir .. "/t10k-labels-idx1-ubyte: label " .. bad[2],
            data.fashion_mnist, {root = dir, split = "test"})
    end
  end)
end)

describe("data.fashion_mnist", function()
  -- loaded once each, on first use (describe bodies run even when a filter skips them)
  local cache = {}
  local function fm(split)
    cache[split] = cache[split] or data.fashion_mnist{split = split}
    return cache[split]
  end

  it("has 60000 and 10000 examples of float32 1x28x28 images and int64 labels", function()
    local train, test = fm("train"), fm("test")
    assert.equal(60000, #train)
    assert.equal(10000, #test)
    local x, y = train:get(1)
    assert.equal("float32", x.dtype)
    assert.same({1, 28, 28}, x.shape)
    assert.equal("integer", math.type(y))
    assert.equal(10, #train.classes)
    assert.equal("Ankle boot", train.classes[10])
  end)

  it("matches the first examples as Python reads them", function()
    -- /usr/bin/python3: gzip + numpy.frombuffer(offset=16 / 8) on the same files
    local train, test = fm("train"), fm("test")
    local x, y = train:get(1)
    assert.equal(10, y)                                -- label 9, 1-based
    local row = {0, 0, 1, 4, 6, 7, 2, 0, 0, 0, 0, 0, 237, 226, 217, 223, 222, 219, 222, 221, 216,
                 223, 229, 215, 218, 255, 77, 0}     -- train x[0, 14, :]
    local got = x[1][15]:mul(255):round():totable()
    for i = 1, 28 do assert.equal(row[i], got[i]) end
    H.close(x:sum(), tide.tensor(76247 / 255), 1e-2, "train x[0].sum()/255")
    assert.equal(6, select(2, train:get(-1)))         -- last train label 5
    local tx, ty = test:get(1)
    assert.equal(10, ty)
    assert.equal(110, math.floor(tx[1][15][15] * 255 + 0.5))   -- test x[0, 14, 14]
  end)

  it("has labels 1..10, 1000 of each in test, and pixels in [0, 1]", function()
    local x, y = fm("test"):tensors()
    assert.equal("float32", x.dtype)
    assert.same({10000, 1, 28, 28}, x.shape)
    assert.equal(0, x:min():item())
    assert.equal(1, x:max():item())
    assert.equal("int64", y.dtype)
    for k = 1, 10 do assert.equal(1000, y:eq(k):sum():item()) end
    assert.equal(45000 + 10000, y:sum():item())
    H.close(x:sum(), tide.tensor(573469082 / 255, {dtype = "float64"}), 1, "test pixel sum")
  end)

  it("batches through a DataLoader as float32 in [0, 1]", function()
    local loader = data.DataLoader(fm("train"), {batch_size = 64, shuffle = true, seed = 3})
    assert.equal(938, #loader)
    local xb, yb = loader:iter()()
    assert.same({64, 1, 28, 28}, xb.shape)
    assert.equal("float32", xb.dtype)
    assert.same({64}, yb.shape)
    assert.equal("int64", yb.dtype)
    assert.is_true(xb:min():item() >= 0 and xb:max():item() <= 1)
    assert.is_true(yb:min():item() >= 1 and yb:max():item() <= 10)
  end)

  it("limit keeps the first examples of the file", function()
    local small = data.fashion_mnist{split = "test", limit = 100}
    assert.equal(100, #small)
    local x, y = small:get(100)
    local fx, fy = fm("test"):get(100)
    assert.equal(fy, y)
    assert.equal(0, (x - fx):abs():max():item())
    assert.equal(10000, #data.fashion_mnist{split = "test", limit = 20000})
    H.err("limit must be a positive integer, got 0", data.fashion_mnist, {limit = 0})
    H.err("limit must be a positive integer, got 2.5", data.fashion_mnist, {limit = 2.5})
  end)

  it("names the missing file and the package to install", function()
    H.err(path("none") .. "/train-images-idx3-ubyte.gz not found", data.fashion_mnist,
          {root = path("none")})
    H.err("sudo apt install dataset-fashion-mnist", data.fashion_mnist, {root = path("none")})
    H.err("split must be \"train\" or \"test\", got val", data.fashion_mnist, {split = "val"})
    H.err("unknown option 'spilt'", data.fashion_mnist, {spilt = "test"})
  end)
end)

describe("data.mnist", function()
  it("reads the MNIST layout from any root, plain files too", function()
    assert(os.execute("mkdir -p " .. path("mn")))
    write("mn/t10k-images-idx3-ubyte", idx_bytes("uint8", {2, 2, 2}, {0, 255, 51, 102, 0, 0, 0, 0}))
    write("mn/t10k-labels-idx1-ubyte", idx_bytes("uint8", {2}, {3, 0}))
    local ds = data.mnist{root = path("mn"), split = "test"}
    assert.equal(2, #ds)
    local x, y = ds:get(1)
    assert.same({1, 2, 2}, x.shape)
    H.close(x, tide.tensor({{{0, 1}, {0.2, 0.4}}}), 1e-6, "pixels / 255")
    assert.equal(4, y)
    assert.equal(1, select(2, ds:get(2)))
    H.err("give root", data.mnist, {})
    H.err("train-images-idx3-ubyte.gz not found", data.mnist, {root = path("mn")})
  end)

  it("refuses files of the wrong shape", function()
    write("mn/train-images-idx3-ubyte", idx_bytes("uint8", {2, 4}, {0, 0, 0, 0, 0, 0, 0, 0}))
    write("mn/train-labels-idx1-ubyte", idx_bytes("uint8", {2}, {3, 0}))
    H.err("expected uint8 images N x H x W", data.mnist, {root = path("mn")})
  end)
end)

-- 10 examples: x row i = {i, -i}, y = i
local function tiny(n)
  n = n or 10
  local rows, ys = {}, {}
  for i = 1, n do rows[i] = {i, -i}; ys[i] = i end
  return tide.tensor(rows), long(ys)
end

local function epoch(loader)
  local xs, ys, sizes = {}, {}, {}
  for xb, yb in loader:iter() do
    sizes[#sizes + 1] = xb:size(1)
    for _, v in ipairs(yb:totable()) do ys[#ys + 1] = v end
    for _, r in ipairs(xb:totable()) do xs[#xs + 1] = r[1] end
  end
  return ys, sizes, xs
end

local function sorted(t)
  local c = {table.unpack(t)}
  table.sort(c)
  return c
end

local function range(n)
  local r = {}
  for i = 1, n do r[i] = i end
  return r
end

describe("data.TensorDataset", function()
  it("has #ds examples; ds[i] is the list {x_i, y_i}, ds:get(i) returns them", function()
    local ds = data.TensorDataset(tiny())
    assert.equal(10, #ds)
    local ex = ds[3]
    assert.same({3, -3}, ex[1]:totable())
    assert.equal(3, ex[2])
    local x, y = ds:get(-1)
    assert.same({10, -10}, x:totable())
    assert.equal(10, y)
    assert.truthy(tostring(ds):find("TensorDataset(10 examples", 1, true))
  end)

  it("refuses mismatched sizes, non-tensors and bad positions", function()
    local x = tiny()
    H.err("argument 2 has 3 rows but argument 1 has 10", data.TensorDataset, x, long({1, 2, 3}))
    H.err("argument 1 must be a tensor, got table", data.TensorDataset, {1, 2})
    H.err("expected at least one tensor", data.TensorDataset)
    local ds = data.TensorDataset(x)
    H.err("index 11 out of range for a dataset of 10 examples", ds.get, ds, 11)
    H.err("index 0 out of range", function() return ds[0] end)
  end)
end)

describe("data.DataLoader", function()
  local ds = data.TensorDataset(tiny())

  it("cuts an epoch into batches in order; #loader counts them", function()
    local loader = data.DataLoader(ds, {batch_size = 4})
    assert.equal(3, #loader)
    local ys, sizes, xs = epoch(loader)
    assert.same(range(10), ys)
    assert.same(range(10), xs)
    assert.same({4, 4, 2}, sizes)
    local dl = data.DataLoader(ds, {batch_size = 4, drop_last = true})
    assert.equal(2, #dl)
    ys, sizes = epoch(dl)
    assert.same({4, 4}, sizes)
    assert.same({1, 2, 3, 4, 5, 6, 7, 8}, ys)
    assert.equal(10, #data.DataLoader(ds))     -- batch_size 1 by default
    local x = data.DataLoader(ds, {batch_size = 3}):iter()()
    assert.same({3, 2}, x.shape)
    assert.is_true(x:is_contiguous())
  end)

  it("refuses a batch of ragged examples, naming their layouts", function()
    local function first_batch(ds, b) return data.DataLoader(ds, {batch_size = b or 2}):iter()() end
    H.err("DataLoader: examples of a batch differ: ds[1] is (number, number), ds[2] is (number)",
          first_batch, {{1, 2}, {3}})
    H.err("ds[1] is (2 float32 tensor, number), ds[2] is (3 float32 tensor, number)",
          first_batch, {{tide.zeros(2), 1}, {tide.zeros(3), 0}})
    H.err("ds[1] is (2 float32 tensor), ds[3] is (2 int64 tensor)", first_batch,
          {tide.zeros(2), tide.ones(2), tide.zeros(2, {dtype = "int64"})}, 3)
    local x, y = first_batch({{1, 2}, {3, 4}, {5}}) -- each batch is checked on its own
    assert.same({1, 3}, x:totable())
    assert.same({2, 4}, y:totable())
  end)

  it("batches are copies: writing one leaves the dataset alone", function()
    local x = ds._tensors[1]
    local xb = data.DataLoader(ds, {batch_size = 2}):iter()()
    xb:fill_(0)
    assert.equal(1, x[1][1])
  end)

  it("shuffles reproducibly, differently each epoch, the same sequence for the same seed",
     function()
    local a = data.DataLoader(ds, {batch_size = 3, shuffle = true, seed = 7})
    local b = data.DataLoader(ds, {batch_size = 3, shuffle = true, seed = 7})
    local a1, a2, a3 = epoch(a), epoch(a), epoch(a)
    assert.same(a1, epoch(b))
    assert.same(a2, epoch(b))
    assert.same(range(10), sorted(a1))
    assert.same(range(10), sorted(a2))
    assert.are_not.same(a1, a2)
    assert.are_not.same(a2, a3)
    assert.are_not.same(a1, epoch(data.DataLoader(ds, {batch_size = 3, shuffle = true,
                                                        seed = 8})))
    a:set_epoch(2)
    assert.same(a2, epoch(a))
    local xs, ys = select(3, epoch(data.DataLoader(ds, {shuffle = true, seed = 7}))),
                   epoch(data.DataLoader(ds, {shuffle = true, seed = 7}))
    assert.same(xs, ys)                                  -- x and y stay paired
  end)

  it("leaves tide.manual_seed's stream alone", function()
    tide.manual_seed(5)
    local r1 = tide.rand(4):totable()
    tide.manual_seed(5)
    epoch(data.DataLoader(ds, {batch_size = 2, shuffle = true, seed = 1}))
    assert.same(r1, tide.rand(4):totable())
    -- without a seed, the seed is drawn from tide's generator: reproducible under manual_seed
    tide.manual_seed(9)
    local u = epoch(data.DataLoader(ds, {shuffle = true}))
    tide.manual_seed(9)
    assert.same(u, epoch(data.DataLoader(ds, {shuffle = true})))
  end)

  it("applies transform to each batch (once per batch)", function()
    local calls = 0
    local loader = data.DataLoader(ds, {batch_size = 4, transform = function(x, y)
      calls = calls + 1
      assert.equal("int64", y.dtype)
      return x * 2
    end})
    local _, _, xs = epoch(loader)
    assert.equal(3, calls)
    assert.same({2, 4, 6, 8, 10, 12, 14, 16, 18, 20}, xs)
  end)

  it("shards: rank r takes every size-th example of the shared permutation", function()
    local o = {batch_size = 2, shuffle = true, seed = 4}
    o.shard = {1, 2}
    local s1 = data.DataLoader(ds, o)
    o.shard = {2, 2}
    local s2 = data.DataLoader(ds, o)
    assert.equal(3, #s1)
    local e1, e2 = epoch(s1), epoch(s2)
    assert.equal(5, #e1)
    local all = {table.unpack(e1)}
    for _, v in ipairs(e2) do all[#all + 1] = v end
    assert.same(range(10), sorted(all))
    o.shard = {3, 3}
    local s3 = data.DataLoader(ds, o)           -- 10 over 3 shards: 4 each, wrapping around
    assert.equal(4, #epoch(s3))
    H.err("shard must be {rank, size}", data.DataLoader, ds, {shard = {3, 2}})
  end)

  it("falls back to stacking examples for other datasets", function()
    local generic = setmetatable({}, {
      __len = function() return 5 end,
      __index = function(_, i) return {tide.full({2, 2}, i), i, i / 2} end,
    })
    local loader = data.DataLoader(generic, {batch_size = 2})
    assert.equal(3, #loader)
    local x, y, z = loader:iter()()
    assert.same({2, 2, 2}, x.shape)
    assert.equal(2, x[2][1][1])
    assert.equal("int64", y.dtype)
    assert.same({1, 2}, y:totable())
    assert.equal("float32", z.dtype)
    local list = {{tide.tensor({1}), 1}, {tide.tensor({2}), 2}, {tide.tensor({3}), 3}}
    assert.same({1, 2, 3}, select(2, data.DataLoader(list, {batch_size = 3}):iter()()):totable())
  end)

  it("checks its options", function()
    H.err("unknown option 'batchsize'", data.DataLoader, ds, {batchsize = 2})
    H.err("batch_size must be an integer >= 1, got 0", data.DataLoader, ds, {batch_size = 0})
    H.err("transform must be a function", data.DataLoader, ds, {transform = 1})
    H.err("expected a dataset", data.DataLoader, 42)
  end)
end)

describe("data.split", function()
  local ds = data.TensorDataset(tiny(20))

  it("makes disjoint subsets of the given sizes, reproducibly for a seed", function()
    local parts = data.split(ds, {0.9, 0.1}, 1)
    assert.equal(2, #parts)
    assert.equal(18, #parts[1])
    assert.equal(2, #parts[2])
    local ys = {}
    for _, p in ipairs(parts) do
      for i = 1, #p do ys[#ys + 1] = select(2, p:get(i)) end
    end
    assert.same(range(20), sorted(ys))
    local again = data.split(ds, {0.9, 0.1}, 1)
    assert.same(parts[2]._rows:totable(), again[2]._rows:totable())
    local sizes = {}
    for i, p in ipairs(data.split(ds, {0.5, 0.3, 0.2}, 2)) do sizes[i] = #p end
    assert.same({10, 6, 4}, sizes)
    sizes = {}
    for i, p in ipairs(data.split(ds, {0.34, 0.33, 0.33}, 2)) do sizes[i] = #p end
    assert.same({7, 7, 6}, sizes)
    assert.equal(5, #data.split(ds, {15, 5}, 2)[2])
  end)

  it("subsets of tensor datasets batch by index, and split again", function()
    local parts = data.split(ds, {0.5, 0.5}, 3)
    local sub = data.split(parts[1], {0.6, 0.4}, 4)[1]
    assert.equal(6, #sub)
    local loader = data.DataLoader(sub, {batch_size = 6})
    local x, y = loader:iter()()
    for i = 1, 6 do
      local xi, yi = sub:get(i)
      assert.equal(yi, y[i])
      assert.same(xi:totable(), x[i]:totable())
      assert.equal(-yi, x[i][2])
    end
  end)

  it("splits generic datasets too", function()
    local list = {}
    for i = 1, 6 do list[i] = {tide.tensor({i}), i} end
    local parts = data.split(list, {4, 2}, 0)
    assert.equal(4, #parts[1])
    local ex = parts[2][1]
    assert.equal(ex[2], ex[1][1])
  end)

  it("refuses fractions that do not add up", function()
    H.err("fractions add up to 0.9", data.split, ds, {0.5, 0.4})
    H.err("counts add up to 19 but the dataset has 20", data.split, ds, {10, 9})
    H.err("data.split: part 2 must be a finite number >= 0, got string", data.split, ds, {1, "x"})
    H.err("data.split: part 1 must be a finite number >= 0, got nan", data.split, ds, {0 / 0, 1})
    H.err("data.split: part 2 must be a finite number >= 0, got nan", data.split, ds, {1.0, 0 / 0})
    H.err("data.split: part 1 must be a finite number >= 0, got -0.5", data.split, ds, {-0.5, 1.5})
    H.err("data.split: part 2 must be a finite number >= 0, got inf", data.split, ds, {0.5, math.huge})
    H.err("data.split: fractions add up to 1.2 (expected 1)", data.split, ds, {0.6, 0.6})
  end)
end)

describe("data.csv", function()
  it("reads numeric columns into a float tensor with the header's names", function()
    local p = write("a.csv", 'x,"y, quoted",label\r\n1,2.5,a\r\n-3,"4e2",b\n\n5,,"c ""q"""\n')
    local x, names, text = data.csv(p, {strings = {"label"}})
    assert.same({3, 2}, x.shape)
    assert.equal("float32", x.dtype)
    assert.same({"x", "y, quoted"}, names)
    assert.same({"a", "b", 'c "q"'}, text.label)
    local t = x:totable()
    assert.same({1, 2.5}, t[1])
    assert.same({-3, 400}, t[2])
    assert.equal(5, t[3][1])
    assert.is_true(t[3][2] ~= t[3][2])                 -- an empty field is nan
  end)

  it("reads files without a header, other separators and float64", function()
    local p = write("b.tsv", "1\t2\n3\t4\n")
    local x, names = data.csv(p, {header = false, sep = "\t", dtype = "float64"})
    assert.is_nil(names)
    assert.equal("float64", x.dtype)
    assert.same({{1, 2}, {3, 4}}, x:totable())
    local q = write("c.csv", 'a,b\n"multi\nline",1\n')
    local _, _, text = data.csv(q, {strings = {1}})
    assert.same({"multi\nline"}, text[1])
  end)

  it("names the line of a bad row", function()
    local p = write("bad.csv", "a,b\n1,2\n3\n")
    H.err(p .. ":3: expected 2 fields (as in the header), got 1", data.csv, p)
    p = write("bad2.csv", "a,b\n1,2\n3,x4\n")
    H.err(p .. ":3: column 2 (b): \"x4\" is not a number", data.csv, p)
    p = write("bad3.csv", 'a,b\n1,"2\n')
    H.err(p .. ":2: unterminated quoted field", data.csv, p)
    p = write("bad4.csv", 'a,b\n1,"2"x\n')
    H.err(p .. ":2: unexpected \"x\" after a closing quote", data.csv, p)
    H.err("data.csv: cannot read " .. path("missing.csv") .. ": No such file or directory", data.csv,
          path("missing.csv"))
    H.err("data.csv: cannot read " .. TMP .. ": Is a directory", data.csv, TMP)
    H.err("unknown option 'headers'", data.csv, p, {headers = true})
    H.err("no column named \"z\"", data.csv, write("ok.csv", "a\n1\n"), {strings = {"z"}})
  end)
end)

describe("data.text", function()
  it("encodes bytes as ids 1..256 and decodes them back", function()
    local c = data.text("hello\n")
    assert.equal(6, #c)
    assert.equal(256, c.vocab_size)
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    local s = table.concat(all)
    local ids = c:encode(s)
    assert.equal("int64", ids.dtype)
    assert.equal(1, ids[1])
    assert.equal(256, ids[256])
    assert.equal(s, c:decode(ids))
    assert.equal("hello\n", c:decode(c.ids))
    assert.equal("he", c:decode(long({{105, 102}})))
    H.err("decode: id 257 at position 2 is not a byte id", c.decode, c, long({1, 257}))
    H.err("decode: expected an int64 tensor of byte ids", c.decode, c, tide.tensor({1}))
  end)

  it("batches windows for language modelling: y is x shifted by one", function()
    local c = data.text(string.rep("abcdefghij", 50) .. "\n")
    local x, y = c:batch(8, 16, {seed = 1})
    assert.same({8, 16}, x.shape)
    assert.equal("int64", y.dtype)
    assert.same(x:narrow(2, 2, 15):totable(), y:narrow(2, 1, 15):totable())
    for _, row in ipairs(x:totable()) do
      for j = 2, 16 do
        local prev, cur = row[j - 1] - 1, row[j] - 1       -- bytes 'a'..'j' then '\n'
        assert.is_true(cur == prev + 1 or (prev == 106 and cur == 97) or cur == 10 or prev == 10)
      end
    end
    local x2 = c:batch(8, 16, {seed = 1})
    assert.same(x:totable(), x2:totable())
    assert.are_not.same(x:totable(), c:batch(8, 16, {seed = 2}):totable())
    tide.manual_seed(1)
    local r = c:batch(4, 8)
    tide.manual_seed(1)
    assert.same(r:totable(), c:batch(4, 8):totable())
    H.err("fewer than seq_len + 1", c.batch, c, 1, 600)
    H.err("batch must be an integer >= 1", c.batch, c, 0, 4)
  end)

  it("makes a dataset of windows for a DataLoader", function()
    local c = data.text("0123456789")
    local ds = c:dataset(3)
    assert.equal(3, #ds)
    local x, y = ds:get(2)
    assert.equal("345", c:decode(x))
    assert.equal("456", c:decode(y))
  end)

  it("reads a file, a directory (files sorted by name) or a list of files", function()
    assert(os.execute("mkdir -p " .. path("txt")))
    write("txt/b.txt", "second\n")
    write("txt/a.txt", "first\n")
    assert.equal("first\n", data.text(path("txt/a.txt")):decode(data.text(path("txt/a.txt")).ids))
    local d = data.text(path("txt"))
    assert.equal("first\nsecond\n", d:decode(d.ids))
    local l = data.text({path("txt/b.txt"), path("txt/a.txt")})
    assert.equal("second\nfirst\n", l:decode(l.ids))
    H.err("no such file or directory: " .. path("txt/c.txt"), data.text, path("txt/c.txt"))
    local s = data.text(path("txt/c.txt"), {string = true})
    assert.equal(#path("txt/c.txt"), #s)
  end)

  it("reads Debian's fortunes", function()
    local f = data.fortunes()
    assert.is_true(#f > 1000000)
    local head = f:decode(f.ids:narrow(1, 1, 200))
    assert.is_nil(head:find("\0", 1, true))            -- no .dat index files
    H.err("sudo apt install fortunes", data.fortunes, path("nofortunes"))
  end)
end)

describe("tide.randperm{seed=}", function()
  it("is a function of the seed alone, as after manual_seed", function()
    local a = tide.randperm(50, {seed = 11}):totable()
    tide.manual_seed(11)
    assert.same(a, tide.randperm(50):totable())
    assert.same(a, tide.randperm(50, {seed = 11}):totable())
    H.err("seed must be an integer", tide.randperm, 5, {seed = 1.5})
  end)
end)

teardown(function() os.execute("rm -rf " .. TMP) end)
