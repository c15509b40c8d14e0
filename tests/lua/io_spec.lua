-- tests/lua/io_spec.lua: tide.save/load (safetensors), save_npy/load_npy, Module:save/load and
-- tide.checkpoint (doc/io.md), against files PyTorch and NumPy wrote (scripts/gen_io_fixtures.py):
-- values, a CNN state dict, tide's writers byte for byte, bad files, atomic writes, and a resumed
-- training run that matches an uninterrupted one bit for bit.
local tide = require "tide"
local nn = require "tide.nn"
local optim = require "tide.optim"
local H = require "helpers"

local FIX = "tests/fixtures/"
local TMP = os.tmpname()
os.remove(TMP)
assert(os.execute("mkdir -p " .. TMP))
local function path(name) return TMP .. "/" .. name end

local slurp = H.slurp

local function spit(p, s)
  local f = assert(io.open(p, "wb"))
  f:write(s)
  f:close()
end

local function same(a, b)               -- same dtype, shape and values (NaN equal to NaN)
  assert.equal(b.dtype, a.dtype)
  assert.same(b.shape, a.shape)
  assert.same(b:totable(), a:totable())
end

-- a safetensors file from a header text and data bytes
local function st(header, data) return string.pack("<I8", #header) .. header .. (data or "") end

local function load_err(bytes) -- the message of parsing bytes, which must fail
  local ok, msg = pcall(tide._io.st_parse, bytes, "bad.st")
  assert.is_false(ok, "expected an error")
  assert.is_truthy(tostring(msg):find("^safetensors: bad%.st: "), msg)
  return msg
end

describe("tide.save / tide.load", function()
  it("round-trips a single tensor of every dtype, scalars, empty and strided tensors", function()
    local cases = {
      tide.tensor{{1.5, -2}, {3, 4}}, tide.tensor({0.1, 1e300}, {dtype = "float64"}),
      tide.tensor({-2^62, 5}, {dtype = "int64"}), tide.tensor({0, 255}, {dtype = "uint8"}),
      tide.tensor({-128, 127}, {dtype = "int8"}), tide.tensor{1, 2, 3}:gt(1), tide.full({}, 7), tide.zeros(0, 3), H.range(3, 4):t(),
    }
    for i, t in ipairs(cases) do
      tide.save(path("one.st"), t)
      local back = tide.load(path("one.st"))
      assert.is_true(tide.is_tensor(back), "case " .. i)
      same(back, t)
      assert.is_true(back:is_contiguous())
    end
  end)

  it("flattens nested tables to dotted keys and brings numbers, booleans and strings back typed", function()
    local v = {w = tide.ones(2), layer = {b = tide.zeros(3), lr = 0.1, n = 3, name = "x.y", on = true},
               list = {1.5, 2, "three", false}, big = 2^53 + 0.0, huge = math.maxinteger,
               inf = math.huge, ninf = -math.huge, nan = 0 / 0, empty = {}, ["with.dot"] = 1}
    tide.save(path("nested.st"), v)
    local r = tide.load(path("nested.st"))
    same(r.w, v.w)
    same(r.layer.b, v.layer.b)
    assert.equal(0.1, r.layer.lr)
    assert.equal("float", math.type(r.layer.lr))
    assert.equal(3, r.layer.n)
    assert.equal("integer", math.type(r.layer.n))
    assert.equal("x.y", r.layer.name)
    assert.is_true(r.layer.on)
    assert.same({1.5, 2, "three", false}, r.list)
    assert.equal("float", math.type(r.big))
    assert.equal(math.maxinteger, r.huge)
    assert.equal(math.huge, r.inf)
    assert.equal(-math.huge, r.ninf)
    assert.is_true(r.nan ~= r.nan)
    assert.same({}, r.empty)
    assert.equal(1, r.with.dot)            -- a dotted key comes back nested
    local flat = tide.load(path("nested.st"), {flat = true})
    assert.equal(1, flat["with.dot"])
    assert.equal(3, flat["layer.n"])
  end)

  it("writes what the safetensors reference writer writes, byte for byte", function()
    local names = {"b.weight", "a", "steps", "mask", "pixels", "zero_d", "caf\u{e9}\t\"q\""}
    local ts = {tide.arange(0, 5):view(2, 3), tide.tensor({0.5, -1.25}, {dtype = "float64"}),
                tide.tensor({3, -4, 5}, {dtype = "int64"}), tide.tensor{true, false},
                tide.tensor({{1, 2}, {3, 250}}, {dtype = "uint8"}), tide.full({}, 2.5),
                tide.tensor{1}}
    local bytes = tide._io.st_serialize(names, ts, {z = "last", a = "first \u{e9}"})
    assert.equal(slurp(FIX .. "io_layout.safetensors"), bytes)
    tide.save(path("tide_save.st"), {w = tide.tensor{{1, 2}, {3, 4}},
                                     b = tide.tensor({5, 6}, {dtype = "int64"}), lr = 0.5})
    assert.equal(slurp(FIX .. "io_tide_save.safetensors"), slurp(path("tide_save.st")))
  end)

  it("names the problem when a value cannot be saved", function()
    H.err("tide.save: 'f' is a function", tide.save, path("x.st"), {f = print})
    H.err("is a module or an optimizer", tide.save, path("x.st"), {m = nn.Linear(2, 2)})
    H.err("keys starting with '__tide' are reserved", tide.save, path("x.st"), {__tide_x = 1})
    H.err("key 'a.b' appears twice", tide.save, path("x.st"), {["a.b"] = 1, a = {b = 2}})
    H.err("expected a tensor or a table, got number", tide.save, path("x.st"), 5)
    H.err("expected a path", tide.save, nil, {})
    H.err("cannot open '" .. path("missing.st") .. "'", tide.load, path("missing.st"))
  end)
end)

describe("files PyTorch and NumPy wrote", function()
  it("reads every safetensors dtype, converting F16 BF16 and I16 I32 U16 U32 U64", function()
    local r = tide.load(FIX .. "io_mixed.safetensors")
    same(r.f32, tide.tensor{{-0.5, -0.25, 0}, {0.25, 0.5, 0.75}})
    same(r.f64, tide.tensor({1 / 3, -2.5, 1e300}, {dtype = "float64"}))
    same(r.i64, tide.tensor({{-2^62, -1}, {0, 2^62}}, {dtype = "int64"}))
    same(r.u8, tide.tensor({0, 1, 200, 255}, {dtype = "uint8"}))
    same(r.bool, tide.tensor{1, 0, 1}:ne(0))
    same(r.f16, tide.tensor{0.5, -2, 65504, 5.9604644775390625e-08})
    same(r.bf16, tide.tensor{1, -3, 0.15625})
    same(r.i8, tide.tensor({-128, 127}, {dtype = "int8"}))
    same(r.i16, tide.tensor({-32768, 32767}, {dtype = "int64"}))
    same(r.i32, tide.tensor({-2^31, 2^31 - 1, 7}, {dtype = "int64"}))
    same(r.u16, tide.tensor({65535}, {dtype = "int64"}))
    same(r.u32, tide.tensor({2^32 - 1}, {dtype = "int64"}))
    assert.equal(math.maxinteger, r.u64[1])
    same(r.nested.scalar, tide.full({}, 7.25))
    same(r.empty, tide.zeros(0, 3))
    assert.equal("pt", r.format)
    assert.equal("caf\u{e9} \"quoted\"\n", r.note)
  end)

  it("reads numpy.save files, fortran order, big-endian and converted dtypes", function()
    local function npy(name) return tide.load_npy(FIX .. "io_" .. name .. ".npy") end
    same(npy("f4"), tide.arange(0, 5):view(2, 3) - 2.5)
    same(npy("f8"), tide.tensor({0.1, -1e-300, 3}, {dtype = "float64"}))
    same(npy("i8"), tide.tensor({{-2^40, 1}, {2, 3}}, {dtype = "int64"}))
    same(npy("u1"), tide.tensor({0, 7, 255}, {dtype = "uint8"}))
    same(npy("i1"), tide.tensor({-128, -1, 127}, {dtype = "int8"}))
    same(npy("b1"), tide.tensor{{1, 0}, {0, 1}}:ne(0))
    same(npy("scalar"), tide.tensor(4.5, {dtype = "float64"}))
    local f = npy("fortran")
    same(f, tide.arange(0, 23):view(2, 3, 4))
    assert.is_true(f:is_contiguous())
    same(npy("i4"), tide.tensor({-5, 2^31 - 1}, {dtype = "int64"}))
    same(npy("f2"), tide.tensor{1.5, -0.25})
    same(npy("big"), tide.tensor({1.5, -2, 1e10}, {dtype = "float64"}))
    same(npy("empty"), tide.zeros(0, 4))
  end)

  it("writes what numpy.save writes, byte for byte", function()
    local cases = {
      f4 = tide.arange(0, 5):view(2, 3) - 2.5, f8 = tide.tensor({0.1, -1e-300, 3}, {dtype = "float64"}),
      i8 = tide.tensor({{-2^40, 1}, {2, 3}}, {dtype = "int64"}),
      u1 = tide.tensor({0, 7, 255}, {dtype = "uint8"}), i1 = tide.tensor({-128, -1, 127}, {dtype = "int8"}),
      b1 = tide.tensor{{1, 0}, {0, 1}}:ne(0),
      scalar = tide.tensor(4.5, {dtype = "float64"}), empty = tide.zeros(0, 4),
    }
    for name, t in pairs(cases) do
      tide.save_npy(path(name .. ".npy"), t)
      assert.equal(slurp(FIX .. "io_" .. name .. ".npy"), slurp(path(name .. ".npy")), name)
      same(tide.load_npy(path(name .. ".npy")), t)
    end
  end)

  it("loads a PyTorch CNN state dict and gives PyTorch's eval-mode output", function()
    local m = nn.Sequential(nn.Conv2d(1, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU(),
                            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 5))
    local missing, unexpected = m:load(FIX .. "io_cnn_state.safetensors", {from = "pytorch"})
    assert.same({}, missing)
    assert.same({}, unexpected)
    assert.equal(17, m[2].num_batches_tracked:item())
    m:eval()
    local io = tide.load(FIX .. "io_cnn_io.safetensors")
    H.close(m(io.input), io.output, 1e-5, "CNN output")
    -- and back: tide's own file, then PyTorch names again
    m:save(path("cnn.st"))
    local m2 = nn.Sequential(nn.Conv2d(1, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 5))
    m2:load(path("cnn.st"))
    m2:eval()
    same(m2(io.input), m(io.input))
    tide.save(path("cnn_pt.st"), m:state_dict{to = "pytorch"})
    assert.is_truthy(tide.load(path("cnn_pt.st"), {flat = true})["0.weight"])
  end)

  it("m:load and m:save errors point at the caller, and a failed load changes nothing", function()
    local m = nn.Linear(2, 2)
    local w = m.weight:clone()
    tide.save(path("lin3.st"), {weight = tide.zeros(3, 3), bias = tide.zeros(2)})
    for _, call in ipairs({function() m:load(path("nothing.st")) end,
                           function() m:load(path("lin3.st")) end,
                           function() m:save(TMP .. "/no/dir/m.st") end}) do
      local ok, err = pcall(call)
      assert.is_false(ok)
      assert.matches("^[^:]*io_spec%.lua:%d+: ", err)
    end
    assert.same(w:totable(), m.weight:totable())
  end)
end)

describe("bad files", function()
  it("reports truncation at every byte of a small valid file", function()
    local good = slurp(FIX .. "io_tide_save.safetensors")
    for n = 0, #good - 1 do load_err(good:sub(1, n)) end
    assert.is_truthy(load_err(good:sub(1, 100)):find("truncated"))
    assert.is_truthy(load_err(good:sub(1, #good - 1)):find("truncated"))
    assert.is_truthy(load_err(good .. "x"):find("1 bytes after the last tensor"))
    local npy = slurp(FIX .. "io_f4.npy")
    for n = 0, #npy - 1 do
      local ok, msg = pcall(tide._io.npy_parse, npy:sub(1, n), "bad.npy")
      assert.is_false(ok)
      assert.is_truthy(msg:find("^npy: bad%.npy: "), msg)
    end
  end)

  it("checks the header length, offsets, dtypes and shapes", function()
    local function one(entry, data) return st('{"w":' .. entry .. '}', data) end
    local ok24 = '{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}'
    assert.is_truthy(load_err(string.pack("<I8", 2^40) .. "{}"):find("exceeds the 100000000%-byte limit"))
    assert.is_truthy(load_err(string.pack("<I8", 50) .. "{}"):find("runs past the end of the file"))
    assert.equal("safetensors: bad.st: tensor 'w': data_offsets [0, 12] do not match shape 2x3 F32 (24 bytes)",
                 load_err(one('{"dtype":"F32","shape":[2,3],"data_offsets":[0,12]}', ("\0"):rep(12))))
    assert.is_truthy(load_err(st('{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},'
                                 .. '"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}', ("\0"):rep(6)))
                     :find("tensor 'b': data_offsets %[2, 6%] overlap tensor 'a'"))
    assert.is_truthy(load_err(one('{"dtype":"U8","shape":[4],"data_offsets":[2,6]}', ("\0"):rep(6)))
                     :find("leave a hole"))
    assert.is_truthy(load_err(one('{"dtype":"U8","shape":[4],"data_offsets":[4,0]}')):find("end before they begin"))
    assert.is_truthy(load_err(one('{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}', "\0"))
                     :find("tensor 'w': unknown dtype 'Q7'"))
    assert.is_truthy(load_err(one('{"dtype":"C64","shape":[1],"data_offsets":[0,8]}', ("\0"):rep(8)))
                     :find("unsupported dtype 'C64'"))
    assert.is_truthy(load_err(one('{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}'))
                     :find("tensor 'w': shape: negative value"))
    assert.is_truthy(load_err(one('{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}'))
                     :find("too large"))
    assert.is_truthy(load_err(one('{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,0]}'))
                     :find("integer too large"))
    assert.is_truthy(load_err(one('{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}', "\0\0\0\0"))
                     :find("fraction"))
    assert.is_truthy(load_err(one('{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}', "\0\0\0\0"))
                     :find("more than 8 entries"))
    assert.is_truthy(load_err(one('{"dtype":"F32","shape":[],"data_offsets":[0,4],"x":1}', "\0\0\0\0"))
                     :find("unknown field 'x'"))
    assert.is_truthy(load_err(one('{"dtype":"F32","shape":[]}')):find("missing field 'data_offsets'"))
    assert.is_truthy(load_err(st('{"w":' .. ok24 .. ',"w":' .. ok24 .. '}', ("\0"):rep(24)))
                     :find("duplicate tensor name 'w'"))
    assert.is_truthy(load_err(st('{"__metadata__":{"a":1}}')):find("values must be strings"))
    assert.is_truthy(load_err(st('{"__metadata__":{"a":"b","a":"c"}}')):find("duplicate __metadata__ key 'a'"))
    -- legal safetensors, but tide.load's one table would keep the string and drop the tensor
    spit(path("clash.st"), st('{"__metadata__":{"w":"text"},"w":' .. ok24 .. '}', ("\0"):rep(24)))
    for _, o in ipairs({{}, {flat = true}}) do
      H.err("tide.load: " .. path("clash.st") .. ": metadata key 'w' is also the name of a tensor",
            tide.load, path("clash.st"), o)
    end
    H.err("metadata key 'w' is also the name of a tensor", tide.checkpoint.load, path("clash.st"))
    assert.is_truthy(load_err(st(' {}')):find("must begin with '{'"))
    assert.is_truthy(load_err(st('{}x')):find("unexpected data after the header"))
    assert.is_truthy(load_err(st('{"\255":1}')):find("not valid UTF%-8"))
    assert.is_truthy(load_err(st('{"a\nb":1}')):find("control character"))
    assert.is_truthy(load_err(st('{"\\u0000":1}')):find("NUL"))
    assert.is_truthy(load_err(st('{"\\ud800":1}')):find("lone high surrogate"))
    assert.is_truthy(load_err(st('{"w":{')):find("header byte"))
    -- accepted: escapes decoded, trailing JSON whitespace, unpadded headers, zero tensors
    local r = tide._io.st_parse(st('{"\\u00e9\\ud83d\\ude00":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}} \n', "\7"))
    assert.equal("\u{e9}\u{1F600}", r[1])
    assert.equal(0, #tide._io.st_parse(st("{}")))
  end)

  it("refuses bad .npy files with a reason", function()
    local good = slurp(FIX .. "io_f4.npy")
    local function err(bytes, pattern)
      local ok, msg = pcall(tide._io.npy_parse, bytes, "bad.npy")
      assert.is_false(ok)
      assert.is_truthy(msg:find(pattern), msg)
    end
    local function with_header(h, data)
      h = h .. (" "):rep(63 - (10 + #h) % 64) .. "\n"
      return "\147NUMPY\1\0" .. string.pack("<I2", #h) .. h .. (data or "")
    end
    err("GIF89a....", "no \\x93NUMPY magic")
    err("\147NUMPY\4\0" .. good:sub(9), "unsupported format version 4.0")
    err(good .. "x", "1 bytes after the data")
    err(with_header("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", ("\0"):rep(8)), "pickles")
    err(with_header("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", ("\0"):rep(8)), "unsupported descr '<c8'")
    err(with_header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }"), "structured")
    err(with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"), "negative")
    err(with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (3), }"), "not a tuple")
    err(with_header("{'descr': '<f4', 'fortran_order': 0, 'shape': (3,), }"), "True or False")
    err(with_header("{'descr': '<f4', 'shape': (3,), }"), "no 'fortran_order'")
    err(with_header("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (), }"), "duplicate key")
    err(with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}"), "unknown key")
    err(with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }"),
        "truncated")
    err(with_header("__import__('os')"), "expected '{'")
    local t = tide._io.npy_parse(with_header("{\"shape\":(2,),\"fortran_order\":False,\"descr\":\"<i2\"}", "\1\0\255\255"))
    same(t, tide.tensor({1, -1}, {dtype = "int64"}))
  end)
end)

describe("tide.checkpoint", function()
  local function make(seed)
    tide.manual_seed(seed)
    local m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.25), nn.Linear(8, 1))
    local o = optim.Adam(m:parameters(), {lr = 0.01})
    return m, o, optim.StepLR(o, {step_size = 2, gamma = 0.5})
  end
  local function step(m, o, s)   -- draws data and dropout masks from the generator
    local x = tide.randn(16, 4)
    local loss = ((m(x) - x:sum(2, true)) ^ 2):mean()
    o:zero_grad()
    loss:backward()
    o:step()
    s:step()
    return loss:item()
  end

  it("resumes training with the same losses bit for bit", function()
    local ma, oa, sa = make(1)
    local straight = {}
    for i = 1, 6 do straight[i] = step(ma, oa, sa) end

    local m, o, s = make(1)
    for _ = 1, 3 do step(m, o, s) end
    tide.checkpoint.save(path("ck.st"), {model = m, optimizer = o, scheduler = s, epoch = 1, step = 3,
                                         extra = {best = 0.25, tag = "run"}})
    local m2, o2, s2 = make(99)                  -- other weights, other generator state
    local epoch, stp, extra, ck = tide.checkpoint.load(path("ck.st"), {model = m2, optimizer = o2, scheduler = s2})
    assert.equal(1, epoch)
    assert.equal(3, stp)
    assert.same({best = 0.25, tag = "run"}, extra)
    assert.equal(3, ck.optimizer.state[1].step)
    for i = 4, 6 do assert.equal(straight[i], step(m2, o2, s2), "step " .. i) end
    assert.equal(oa.lr, o2.lr)

    local plain = tide.checkpoint.load(path("ck.st"))   -- no targets: a table, nothing restored
    assert.is_truthy(plain.model["1"] or plain.model[1])
    assert.equal("integer", math.type(plain.rng.offset))
    H.err("is not a checkpoint", tide.checkpoint.load, FIX .. "io_mixed.safetensors")
    H.err("unknown option 'modle'", tide.checkpoint.save, path("x.st"), {modle = m})
    H.err("holds no scheduler state", tide.checkpoint.load, path("ck_m.st"), {scheduler = s})
  end)

  setup(function() tide.checkpoint.save(path("ck_m.st"), {model = nn.Linear(2, 2)}) end)

  -- every value of a model's, optimizer's and scheduler's state and of the generator
  local function snap(...)
    local out = {}
    local function walk(v)
      if tide.is_tensor(v) then out[#out + 1] = table.concat(v:reshape(-1):totable(), ",") return end
      if type(v) ~= "table" then out[#out + 1] = tostring(v) return end
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
      for _, k in ipairs(keys) do out[#out + 1] = tostring(k); walk(v[k]) end
    end
    for _, x in ipairs({...}) do walk(x:state_dict()) end
    walk(tide.get_rng_state())
    return table.concat(out, " ")
  end

  it("restores all or nothing: a part that does not fit leaves every target as it was", function()
    local m, o, s = make(1)
    for _ = 1, 2 do step(m, o, s) end
    tide.checkpoint.save(path("ck_all.st"), {model = m, optimizer = o, scheduler = s, step = 2})
    local function refused(want, build, file)
      local m2, o2, s2 = make(7)
      step(m2, o2, s2)
      local into = build(m2, o2, s2)
      local before = snap(m2, o2, s2)
      local ok, err = pcall(tide.checkpoint.load, path(file or "ck_all.st"), into)
      assert.is_false(ok)
      assert.truthy(err:find(want, 1, true), err)
      assert.equal(before, snap(m2, o2, s2))
    end
    -- the model fits, the optimizer is of another class: the model must not be overwritten
    refused("the optimizer part does not fit: SGD: load_state_dict: the state_dict is of Adam",
            function(m2) return {model = m2, optimizer = optim.SGD(m2:parameters(), {lr = 0.1})} end)
    refused("the scheduler part does not fit", function(m2, o2)
      return {model = m2, optimizer = o2, scheduler = optim.ExponentialLR(o2, {gamma = 0.5})} end)
    refused("the model part does not fit: load_state_dict: size mismatch", function(_, o2, s2)
      return {model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.25), nn.Linear(8, 2)),
              optimizer = o2, scheduler = s2} end)
    -- a generator state without its offset (the key renamed in the file), checked last
    local bytes = slurp(path("ck_all.st"))
    local renamed, n = bytes:gsub('"rng%.offset"', '"rng.offsex"')
    assert.equal(1, n)
    spit(path("ck_rng.st"), renamed)
    refused("the rng part does not fit: set_rng_state", function(m2, o2, s2)
      return {model = m2, optimizer = o2, scheduler = s2} end, "ck_rng.st")
  end)

  it("keeps the previous file when a writer is killed mid-write", function()
    local m = nn.Linear(4, 4)
    tide.checkpoint.save(path("kill.st"), {model = m, step = 1})
    local before = slurp(path("kill.st"))
    spit(path("kill.st.tmp-dead00"), "a stale temporary of a crashed writer")
    -- a writer that dies from SIGXFSZ after 8 KB of a ~1 MB file
    local script = path("kill.lua")
    spit(script, ([[
      package.path = "stdlib/?.lua;stdlib/?/init.lua;" .. package.path
      local tide = require "tide"
      tide.save(%q, {big = tide.zeros(512, 512), step = 2})
    ]]):format(path("kill.st")))
    local ok = os.execute("ulimit -f 16; exec lua5.4 " .. script .. " 2>/dev/null")
    assert.is_falsy(ok)
    assert.equal(before, slurp(path("kill.st")))
    local _, stp = tide.checkpoint.load(path("kill.st"), {model = nn.Linear(4, 4)})
    assert.equal(1, stp)
    tide.checkpoint.save(path("kill.st"), {model = m, step = 3})   -- stale temporaries do not matter
    assert.equal(3, tide.checkpoint.load(path("kill.st")).step)
  end)

  local function listing(dir)
    local p = io.popen("ls -a " .. dir)
    local names = {}
    for n in p:lines() do names[#names + 1] = n end
    p:close()
    table.sort(names)
    return table.concat(names, " ")
  end

  it("removes the temporaries of writers that died, and only those", function()
    local dir = path("stale")
    os.execute("rm -rf " .. dir .. "; mkdir -p " .. dir)
    local p = io.popen("uname -n; sh -c 'echo $$'")
    local host, dead = p:read("l"), p:read("l")   -- the pid of a process that has exited
    p:close()
    -- a writer that dies from SIGXFSZ leaves its temporary
    spit(path("die.lua"), ([[
      package.path = "stdlib/?.lua;stdlib/?/init.lua;" .. package.path
      local tide = require "tide"
      tide.checkpoint.save(%q, {model = require("tide.nn").Linear(512, 512)})
    ]]):format(dir .. "/ck.st"))
    assert.is_falsy(os.execute("ulimit -f 16; exec lua5.4 " .. path("die.lua") .. " 2>/dev/null"))
    local t = dir .. "/ck.st.tmp-"
    spit(t .. host .. "-" .. dead .. "-00dead", "left by a writer killed with -9")
    spit(t .. host .. "-1-0a11fe", "pid 1 is alive: a writer still at work")
    spit(t .. "otherhost-" .. dead .. "-00beef", "another host's: its pid means nothing here")
    spit(t .. "otherhost-7-00c0de", "another host's, two days without a write")
    os.execute("touch -d '2 days ago' " .. t .. "otherhost-7-00c0de")
    spit(t .. "abc123", "an older name without a pid, fresh")
    spit(dir .. "/other.st.tmp-" .. host .. "-" .. dead .. "-00dead", "another target's")
    local before = listing(dir)
    assert.equal(7, select(2, before:gsub("%.tmp%-", "")), before)
    tide.checkpoint.save(dir .. "/ck.st", {model = nn.Linear(2, 2), step = 1})
    local kept = {".", "..", "ck.st", "ck.st.tmp-" .. host .. "-1-0a11fe", "ck.st.tmp-abc123",
                  "ck.st.tmp-otherhost-" .. dead .. "-00beef", "other.st.tmp-" .. host .. "-" .. dead .. "-00dead"}
    table.sort(kept)
    assert.equal(table.concat(kept, " "), listing(dir))
    assert.equal(1, tide.checkpoint.load(dir .. "/ck.st").step)
  end)

  it("names the function and the path when the disk is full", function()
    -- a file size limit with SIGXFSZ ignored: write() fails with EFBIG as on a full disk
    local out = path("full.st")
    spit(path("full.lua"), ([[
      package.path = "stdlib/?.lua;stdlib/?/init.lua;" .. package.path
      local tide, nn = require "tide", require "tide.nn"
      for _, f in ipairs({
        function() tide.save(%q, {big = tide.zeros(512, 512)}) end,
        function() tide.checkpoint.save(%q, {model = nn.Linear(512, 512)}) end,
        function() nn.Linear(512, 512):save(%q) end,
        function() tide.save_npy(%q, tide.zeros(512, 512)) end}) do
        print((select(2, pcall(f))))
      end
    ]]):format(out, out, out, out))
    local p = io.popen("trap '' XFSZ; ulimit -f 16; exec lua5.4 " .. path("full.lua") .. " 2>&1")
    local lines = {}
    for l in p:lines() do lines[#lines + 1] = l:gsub("^[^:]*:%d+: ", "") end
    p:close()
    local tail = "cannot write '" .. out .. "': File too large (the previous file, if any, is unchanged)"
    assert.same({"tide.save: " .. tail, "checkpoint.save: " .. tail, "tide.save: " .. tail,
                 "tide.save_npy: " .. tail}, lines)
    assert.is_falsy(listing(TMP):find("full.st.tmp", 1, true))
  end)

  it("keeps the previous file when the directory cannot be written", function()
    local dir = path("ro")
    os.execute("mkdir -p " .. dir)
    tide.checkpoint.save(dir .. "/ck.st", {model = nn.Linear(2, 2), step = 5})
    local before = slurp(dir .. "/ck.st")
    -- root ignores permissions; an immutable directory (ext4 chattr) stops root too
    local locked = os.execute("chmod 555 " .. dir) and os.execute("[ $(id -u) != 0 ] || chattr +i " .. dir .. " 2>/dev/null")
    if not locked then pending("cannot make a read-only directory here") return end
    local ok, msg = pcall(tide.checkpoint.save, dir .. "/ck.st", {model = nn.Linear(2, 2), step = 6})
    os.execute("chattr -i " .. dir .. " 2>/dev/null; chmod 755 " .. dir)
    assert.is_false(ok)
    assert.is_truthy(msg:find("cannot write '" .. dir .. "/ck.st'", 1, true), msg)
    assert.equal(before, slurp(dir .. "/ck.st"))
    -- a failed rename (the target is a directory) leaves no temporary behind
    os.execute("mkdir -p " .. dir .. "/sub/inner")
    assert.is_false(pcall(tide.save, dir .. "/sub", {x = tide.ones(1)}))
    local p = io.popen("ls " .. dir)
    local listing = p:read("a")
    p:close()
    assert.is_falsy(listing:find("tmp"))
  end)

  teardown(function() os.execute("chattr -i " .. TMP .. "/ro 2>/dev/null; rm -rf " .. TMP) end)
end)
