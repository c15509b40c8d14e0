-- tests/lua/errors_spec.lua: misuse raises a Lua error naming the function (and the offending
-- shapes, dims or values) and never crashes the process (doc/README.md, "Errors").
-- Every case runs in a child lua5.4 (one child for all, restarted after the case that killed
-- it), so a segfault, an abort or a hang fails that one case instead of the whole suite.
local LUA = os.getenv("LUA") or "lua5.4"
local TIMEOUT = os.getenv("TIDE_ERRORS_TIMEOUT") or "120"

local cases = {}

-- bad(fn, code, patterns): running code must raise an error whose message contains fn (in any
-- case: "ExpBackward" names exp) and every string of patterns (plain text).
local function bad(fn, code, patterns)
  cases[#cases + 1] = {fn = fn, code = code, patterns = patterns or {}}
end

-- survives(code): the process must survive; an error or a result are both fine.
local function survives(code)
  cases[#cases + 1] = {code = code, survive = true}
end

local P = "local t, v, b, i = tide.ones(3, 4), tide.ones(5), tide.ones(3, 4):gt(0), " ..
          "tide.tensor({{1, 2}, {2, 1}, {1, 1}}, {dtype = 'int64'}); "

-- shape mismatches name both shapes
bad("add", P .. "return t + tide.ones(5, 6)", {"3x4", "5x6"})
bad("add", P .. "return t:add(tide.ones(2, 4))", {"3x4", "2x4"})
bad("sub", P .. "return t - tide.ones(4, 3)", {"3x4", "4x3"})
bad("mul", P .. "return tide.mul(t, v)", {"3x4", "5"})
bad("div", P .. "return t / tide.ones(2, 3, 5)", {"3x4", "2x3x5"})
bad("matmul", P .. "return tide.matmul(t, tide.ones(5, 6))", {"3x4", "5x6"})
bad("matmul", P .. "return t:matmul(v)", {"3x4", "5"})
bad("matmul", P .. "return tide.matmul(tide.ones(2, 3, 4), tide.ones(3, 4, 5))", {"2x3x4", "3x4x5"})
bad("mm", P .. "return tide.mm(t, t)", {"3x4"})
bad("mm", P .. "return tide.mm(v, t)", {"5"})
bad("bmm", P .. "return tide.bmm(t, t)", {"3x4"})
bad("mv", P .. "return tide.mv(t, v)", {"3x4", "5"})
bad("dot", P .. "return tide.dot(tide.ones(3), tide.ones(4))", {"3", "4"})
bad("addmm", P .. "return tide.addmm(tide.ones(2, 2), t, tide.ones(4, 5))", {"2x2"})
bad("cat", P .. "return tide.cat({tide.ones(2, 3), tide.ones(2, 4)}, 1)", {"2x3", "2x4"})
bad("stack", P .. "return tide.stack({tide.ones(2, 3), tide.ones(3, 2)})", {"2x3", "3x2"})
bad("where", P .. "return tide.where(b, t, tide.ones(2, 4))", {"2x4"})
bad("view", P .. "return t:view(5, 5)", {"3x4"})
bad("view", P .. "return t:view(-1, -1)", {"-1"})
bad("view", P .. "return t.T:view(12)", {"4x3"})
bad("reshape", P .. "return t:reshape(7)", {"3x4", "7"})
bad("expand", P .. "return t:expand(3, 5)", {"3x4", "3x5"})
bad("expand", P .. "return t:expand(4)", {"3x4"})
bad("copy_", P .. "return t:copy_(v)", {"3x4", "5"})
bad("masked_fill", P .. "return t:masked_fill(tide.ones(5):gt(0), 0)", {"3x4", "5"})
bad("masked_select", P .. "return t:masked_select(tide.ones(2, 4):gt(0))", {"3x4", "2x4"})
bad("gather", P .. "return t:gather(2, tide.tensor({1, 2}, {dtype = 'int64'}))", {"3x4", "2"})
bad("scatter", P .. "return t:scatter(2, i, tide.ones(2))", {})
bad("index", P .. "return t:index(1, i)", {"3x2"})

-- dims out of range: 0 and n + 1
for _, c in ipairs({
  {"sum", "t:sum(0)"}, {"sum", "t:sum(3)"}, {"mean", "t:mean(-3)"}, {"max", "t:max(3)"},
  {"argmax", "t:argmax(0)"}, {"var", "t:var(3)"}, {"cumsum", "t:cumsum(0)"},
  {"logsumexp", "t:logsumexp(3)"}, {"softmax", "t:softmax(0)"}, {"log_softmax", "t:log_softmax(3)"},
  {"transpose", "t:transpose(1, 3)"}, {"transpose", "t:transpose(0, 1)"},
  {"narrow", "t:narrow(0, 1, 1)"}, {"select", "t:select(3, 1)"}, {"squeeze", "t:squeeze(3)"},
  {"unsqueeze", "t:unsqueeze(0)"}, {"unsqueeze", "t:unsqueeze(4)"}, {"flatten", "t:flatten(0)"},
  {"flatten", "t:flatten(1, 3)"}, {"permute", "t:permute(1, 3)"}, {"permute", "t:permute(1, 1)"},
  {"permute", "t:permute(1)"}, {"size", "t:size(0)"}, {"size", "t:size(3)"}, {"stride", "t:stride(3)"},
  {"cat", "tide.cat({t, t}, 0)"}, {"cat", "tide.cat({t, t}, 3)"}, {"stack", "tide.stack({t, t}, 4)"},
  {"split", "t:split(2, 3)"}, {"chunk", "t:chunk(2, 0)"}, {"gather", "t:gather(0, i)"},
  {"gather", "t:gather(3, i)"}, {"index", "t:index(3, tide.tensor({1}, {dtype = 'int64'}))"},
  {"scatter", "t:scatter(3, i, 1)"}, {"prod", "t:prod(3)"}, {"norm", "t:norm(0)"},
}) do
  bad(c[1], P .. "return " .. c[2], {})
end

-- positions out of range: 0 and n + 1, in indexing and in index tensors
bad("select", P .. "return t:select(1, 0)", {"0"})
bad("select", P .. "return t:select(2, 5)", {"5"})
bad("narrow", P .. "return t:narrow(1, 0, 1)", {"0"})
bad("narrow", P .. "return t:narrow(2, 3, 3)", {"3"})
bad("narrow", P .. "return t:narrow(1, 2, -1)", {"-1"})
for _, c in ipairs({
  {"t[0]", "0"}, {"t[4]", "4"}, {"t[-4]", "-4"}, {"v[0]", "0"}, {"v[6]", "6"},
  {"t[{1, 5}]", "5"}, {"t[{{0, 2}}]", "0"}, {"t[{{2, 5}}]", "5"}, {"t[{{}, {3, 5}}]", "5"},
  {"t[{1, 1, 1}]", "3"}, {"t[1.5]", "1.5"}, {"t[{'a'}]", "string"}, {"t[true]", "boolean"},
}) do
  bad("index", P .. "return " .. c[1], {c[2]})
end
bad("index", P .. "t[0] = 1", {"0"})
bad("index", P .. "t[4] = 1", {"4"})
bad("index", P .. "t[{{}, 5}] = 1", {"5"})
bad("index", P .. "t[1] = tide.ones(5)", {"4", "5"})
bad("index", P .. "t[1] = 'x'", {"string"})
bad("index", P .. "return t:index(1, tide.tensor({0, 1}, {dtype = 'int64'}))", {"0"})
bad("index", P .. "return t:index(1, tide.tensor({1, 4}, {dtype = 'int64'}))", {"4"})
bad("gather", P .. "return t:gather(2, tide.tensor({{0}, {1}, {1}}, {dtype = 'int64'}))", {"0"})
bad("gather", P .. "return t:gather(2, tide.tensor({{5}, {1}, {1}}, {dtype = 'int64'}))", {"5"})
bad("gather", P .. "return t:gather(1, tide.tensor({{1, 1, 1, 1000000}}, {dtype = 'int64'}))",
    {"1000000"})
bad("scatter", P .. "return t:scatter(2, tide.tensor({{0}, {1}, {1}}, {dtype = 'int64'}), 1)", {"0"})
bad("scatter", P .. "return t:scatter(2, tide.tensor({{5}, {1}, {1}}, {dtype = 'int64'}), 1)", {"5"})
bad("scatter", P .. "return t:scatter_(1, tide.tensor({{-7, 1, 1, 1}}, {dtype = 'int64'}), 0)", {"-7"})

-- ragged nested tables, non-numbers, too deep
bad("tensor", "return tide.tensor({{1, 2}, {3}})", {"ragged"})
bad("tensor", "return tide.tensor({{1, 2}, 3})", {"ragged"})
bad("tensor", "return tide.tensor({1, {2}})", {})
bad("tensor", "return tide.tensor({{{1}}, {{1, 2}}})", {"ragged"})
bad("tensor", "return tide.tensor({1, 'a'})", {"string"})
bad("tensor", "return tide.tensor({{1, 2}, {3, nil}})", {})
bad("tensor", "return tide.tensor({{{{{{{{{1}}}}}}}}})", {})
bad("tensor", "return tide.tensor('abc')", {"string"})
bad("tensor", "return tide.tensor()", {})

-- negative sizes and absurd allocations fail fast, without trying
bad("zeros", "return tide.zeros(-1)", {"-1"})
bad("zeros", "return tide.zeros(2, -3)", {"-3"})
bad("ones", "return tide.ones({2, -1})", {"-1"})
bad("full", "return tide.full({-1}, 1)", {"-1"})
bad("empty", "return tide.empty(-5)", {"-5"})
bad("rand", "return tide.rand(-1)", {"-1"})
bad("randn", "return tide.randn(3, -2)", {"-2"})
bad("eye", "return tide.eye(-1)", {"-1"})
bad("linspace", "return tide.linspace(0, 1, -1)", {"-1"})
bad("randperm", "return tide.randperm(-1)", {"-1"})
bad("arange", "return tide.arange(1, 5, 0)", {"step"})
bad("zeros", "return tide.zeros(1.5)", {"1.5"})
bad("zeros", "return tide.zeros(1e6, 1e6, 1e6)", {})
bad("zeros", "return tide.zeros(2^31, 2^31, 2^31)", {})
bad("ones", "return tide.ones(1 << 62, 4)", {})
bad("empty", "return tide.empty(math.maxinteger)", {})
bad("full", "return tide.full({1e9, 1e9}, 1)", {})
bad("rand", "return tide.rand(1e6, 1e6, 1e6)", {})
bad("randn", "return tide.randn(1e6, 1e6, 1e6)", {})
bad("randint", "return tide.randint(1, 6, {1e6, 1e6, 1e6})", {})
bad("arange", "return tide.arange(1, 1e18)", {})
bad("linspace", "return tide.linspace(0, 1, 1e18)", {})
bad("eye", "return tide.eye(1e10)", {})
bad("randperm", "return tide.randperm(1e18)", {})
bad("zeros", "return tide.zeros(1, 1, 1, 1, 1, 1, 1, 1, 1)", {"8"})
bad("contiguous", "return tide.ones(1):expand(1e6, 1e6, 1e6):contiguous()", {})
bad("add", "return tide.ones(1):expand(1e6, 1e6, 1e6) + 1", {})
bad("zeros_like", "return tide.zeros_like(tide.ones(1):expand(1e6, 1e6, 1e6))", {})
bad("view", "return tide.ones(4):view(-1, 0)", {})

-- wrong dtypes
bad("tensor", "return tide.tensor({1}, {dtype = 'float16'})", {"float16"})
bad("zeros", "return tide.zeros(2, {dtype = 'int32'})", {"int32"})
bad("to", "return tide.ones(2):to('complex64')", {"complex64"})
bad("tensor", "return tide.tensor({1}, {dtype = 'int64', requires_grad = true})", {"int64"})
bad("requires_grad", "local x = tide.tensor({1}, {dtype = 'int64'}); x.requires_grad = true", {"int64"})
bad("index", P .. "return t:index(1, tide.tensor({1, 2}))", {"float32"})
bad("gather", P .. "return t:gather(2, tide.ones(3, 1))", {"float32"})
bad("scatter", P .. "return t:scatter(2, tide.ones(3, 1), 0)", {"float32"})
bad("masked_fill", P .. "return t:masked_fill(tide.ones(3, 4), 0)", {"float32"})
bad("masked_select", P .. "return t:masked_select(tide.ones(3, 4))", {"float32"})
bad("where", P .. "return tide.where(tide.ones(3, 4), t, t)", {"float32"})
bad("floor_divide", "return tide.tensor({1, 2}, {dtype = 'int64'}) // 0", {"zero"})
bad("remainder", "return tide.tensor({1, 2}, {dtype = 'int64'}) % 0", {"zero"})
bad("floor_divide",
    "return tide.tensor({1, 2}, {dtype = 'int64'}) // tide.tensor({1, 0}, {dtype = 'int64'})",
    {"zero"})
survives("return tide.tensor({math.mininteger}, {dtype = 'int64'}) // -1")
survives("return tide.tensor({math.mininteger}, {dtype = 'int64'}) % -1")
survives("return tide.tensor({1e300}):to('int64')")
survives("return tide.tensor({0/0, 1/0, -1/0}, {dtype = 'float64'}):to('int64')")
survives("return tide.tensor({-1, 300, 0/0}):to('uint8')")

-- non-tensor arguments
for _, c in ipairs({
  {"exp", "tide.exp('x')"}, {"exp", "tide.exp(nil)"}, {"exp", "tide.exp({1, 2})"},
  {"exp", "tide.Tensor.exp(5)"}, {"add", "t:add('a')"}, {"add", "t:add(nil)"},
  {"add", "t:add({1})"}, {"add", "t + 'a'"}, {"add", "t + {}"}, {"matmul", "tide.matmul(1, 2)"},
  {"matmul", "t:matmul(3)"}, {"cat", "tide.cat(t)"}, {"cat", "tide.cat({t, 3})"},
  {"cat", "tide.cat({})"}, {"stack", "tide.stack({})"}, {"stack", "tide.stack(5)"},
  {"view", "t:view('a')"}, {"view", "t:view({2, 'b'})"}, {"sum", "t:sum('x')"},
  {"gather", "t:gather(1, {1, 2})"}, {"masked_fill", "t:masked_fill(true, 0)"},
  {"masked_fill", "t:masked_fill(b, 'x')"}, {"copy_", "t:copy_(3)"}, {"fill_", "t:fill_('x')"},
  {"zeros", "tide.zeros('a')"}, {"full", "tide.full('a', 3)"}, {"transpose", "t:transpose(1)"},
  {"narrow", "t:narrow(1, 1)"}, {"select", "t:select(1)"}, {"to", "t:to(5)"}, {"to", "t:to()"},
  {"size", "t:size('x')"}, {"clamp", "t:clamp('a')"}, {"pow", "t:pow('a')"},
  {"item", "t:item()"}, {"softmax", "t:softmax()"}, {"where", "tide.where(1, t, t)"},
  {"index", "t:index(1, 2)"}, {"expand", "t:expand('x')"}, {"permute", "t:permute('x')"},
  {"arange", "tide.arange('a', 2)"}, {"manual_seed", "tide.manual_seed('x')"},
  {"set_num_threads", "tide.set_num_threads(0)"}, {"split", "t:split('x')"},
  {"chunk", "t:chunk(0)"}, {"dropout", "t:dropout(1.5, true)"}, {"dropout", "t:dropout(-0.1, true)"},
}) do
  bad(c[1], P .. "return " .. c[2], {})
end
bad("#", "return #tide.tensor(1)", {})
bad("exp", "local x = tide.ones(2); x:close(); return x:exp()", {"closed"})
bad("grad", "local x = tide.ones(2); x.grad = tide.ones(3)", {"2", "3"})
bad("foo", "local x = tide.ones(2); x.foo = 1", {})

-- unknown options name the option
bad("zeros", "return tide.zeros(2, {dtpye = 'float64'})", {"dtpye"})
bad("ones", "return tide.ones(2, {dtype = 'float64', foo = 1})", {"foo"})
bad("tensor", "return tide.tensor({1}, {requires_gard = true})", {"requires_gard"})
bad("sum", P .. "return t:sum(1, {keepdims = true})", {"keepdims"})
bad("var", P .. "return t:var({unbaised = false})", {"unbaised"})
bad("addmm", "return tide.addmm(tide.ones(2, 2), tide.ones(2, 2), tide.ones(2, 2), {alhpa = 2})",
    {"alhpa"})
bad("backward", "local x = tide.ones(2, {requires_grad = true}); x:sum():backward({retain = true})",
    {"retain"})

-- autograd misuse
bad("backward", "return tide.ones(2):sum():backward()", {})
bad("backward", "local x = tide.ones(2, {requires_grad = true}); (x * 2):backward()", {"2"})
bad("backward", "local x = tide.ones(2, {requires_grad = true}); (x * 2):backward(tide.ones(3))",
    {"2", "3"})
bad("exp", "local x = tide.ones(3, {requires_grad = true}); local y = x:exp(); y:add_(1); " ..
           "y:sum():backward()", {})
bad("backward", "local x = tide.ones(2, {requires_grad = true}); local y = (x * x):sum(); " ..
                "y:backward(); y:backward()", {})

-- ---- running the cases in a child process ---------------------------------------------------------
local RUNNER = [[
local cases, start = dofile(arg[1]), tonumber(arg[2])
tide = require "tide"
for i = start, #cases do
  io.stdout:write("BEGIN ", i, "\n")
  io.stdout:flush()
  local f, err = load(cases[i], "=case", "t")
  local ok, msg
  if f then ok, msg = pcall(f) else ok, msg = "syntax", err end
  local kind = type(msg)
  msg = tostring(msg):gsub("\n", " ")
  io.stdout:write("END ", i, " ", tostring(ok), " ", kind, " ", msg, "\n")
  io.stdout:flush()
  collectgarbage()
end
]]

local results
local function run_all()
  if results then return results end
  results = {}
  local dir = os.tmpname()
  os.remove(dir)
  local runner, list, errf = dir .. ".runner.lua", dir .. ".cases.lua", dir .. ".stderr"
  local f = assert(io.open(runner, "w"))
  f:write(RUNNER)
  f:close()
  f = assert(io.open(list, "w"))
  f:write("return {\n")
  for _, c in ipairs(cases) do f:write(string.format("%q,\n", c.code)) end
  f:write("}\n")
  f:close()
  local start = 1
  while start <= #cases do
    local cmd = string.format("timeout %s %s %s %s %d 2>%s", TIMEOUT, LUA, runner, list, start, errf)
    local p = assert(io.popen(cmd))
    local last = start - 1
    for line in p:lines() do
      local i = tonumber(line:match("^BEGIN (%d+)"))
      if i then last = i end
      local j, ok, kind, msg = line:match("^END (%d+) (%S+) (%S+) ?(.*)$")
      if j then results[tonumber(j)] = {ok = ok, kind = kind, msg = msg} end
    end
    local _, how, code = p:close()
    if last >= start and not results[last] then
      local e = io.open(errf)
      local stderr = e and e:read("a"):sub(1, 600) or ""
      if e then e:close() end
      results[last] = {crashed = string.format("%s %s%s", how, tostring(code),
                                               code == 124 and " (timed out)" or ""),
                       stderr = stderr}
      start = last + 1
    elseif last < start then
      results[start] = {crashed = "the child never started: " .. how .. " " .. tostring(code)}
      start = start + 1
    else
      start = last + 1
    end
  end
  os.remove(runner)
  os.remove(list)
  os.remove(errf)
  return results
end

local PREFIX = "^" .. P:gsub("%p", "%%%0")

describe("misuse", function()
  for i, c in ipairs(cases) do
    local label = (c.survive and "survives: " or (c.fn .. ": ")) .. c.code:gsub(PREFIX, "")
    it(label, function()
      local r = run_all()[i]
      assert(r, "no result for case " .. i)
      if r.crashed then
        error(string.format("crashed the process (%s)\n%s", r.crashed, r.stderr or ""), 0)
      end
      if c.survive then return end
      assert(r.ok == "false", "no error raised (pcall returned " .. r.ok .. ")")
      assert(r.kind == "string", "the error value is a " .. r.kind .. ", not a message")
      assert(r.msg:lower():find(c.fn:lower(), 1, true),
             "the message does not name '" .. c.fn .. "': " .. r.msg)
      for _, pat in ipairs(c.patterns) do
        assert(r.msg:find(pat, 1, true), "the message does not mention '" .. pat .. "': " .. r.msg)
      end
    end)
  end
end)
