-- tests/lua/doc_spec.lua: every ```lua example of doc/*.md runs (doc/README.md: each entry has
-- one). An example runs under stock lua5.4 with `tide` and the program's other globals (nn, optim,
-- data, plot, models, help), as the REPL has them.
local tide = require "tide"

local DOC = os.getenv("TIDE_DOC_DIR") or "doc"

local function doc_files()
  local files = {}
  local p = io.popen("ls " .. DOC .. "/*.md 2>/dev/null")
  for path in p:lines() do files[#files + 1] = path end
  p:close()
  table.sort(files)
  return files
end

-- Blocks: {file, line, heading, code}. Only fences at the start of a line count (doc/README.md
-- shows the entry format in an indented block, which is not an example).
local function examples(path)
  local blocks, heading, code, start, n = {}, "(top)", nil, 0, 0
  for line in io.lines(path) do
    n = n + 1
    if code then
      if line:match("^```%s*$") then
        blocks[#blocks + 1] = {file = path, line = start, heading = heading,
                               code = table.concat(code, "\n")}
        code = nil
      else
        code[#code + 1] = line
      end
    elseif line:match("^```lua%s*$") then
      code, start = {}, n
    elseif line:match("^#+ ") then
      heading = line
    end
  end
  return blocks
end

-- The globals the `tide` program preloads besides tide: examples use them as it does.
local GLOBALS = {nn = require "tide.nn", optim = require "tide.optim", data = require "tide.data",
                 plot = require "tide.plot", models = require "tide.models",
                 help = require "tide.help"}

local function run(block, env)
  local out = {}
  env.print = function(...)
    local parts = table.pack(...)
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    out[#out + 1] = table.concat(parts, "\t")
  end
  -- blank lines before the code make error positions the page's own line numbers
  local chunk, err = load(string.rep("\n", block.line) .. block.code, "=" .. block.file, "t", env)
  if not chunk then error(err, 0) end
  local ok, msg = xpcall(chunk, debug.traceback)
  if not ok then error((tostring(msg):gsub("\n%s*%[C%]: in function 'xpcall'.*$", "")), 0) end
  return out
end

describe("doc examples", function()
  local files = doc_files()

  it("doc/ has pages with examples", function()
    local n = 0
    for _, path in ipairs(files) do n = n + #examples(path) end
    assert(n > 0, "no ```lua examples found in " .. DOC .. "/*.md")
  end)

  it("every ### entry has a ```lua example", function()
    local bare = {}
    for _, path in ipairs(files) do
      local entry, has, ln, n = nil, false, 0, 0
      local function close()
        if entry and not has then bare[#bare + 1] = path .. ":" .. ln .. " " .. entry end
      end
      for line in io.lines(path) do
        n = n + 1
        if line:match("^#+ ") then
          close()
          entry, has, ln = line:match("^### ") and line or nil, false, n
        elseif line:match("^```lua%s*$") then
          has = true
        end
      end
      close()
    end
    assert(#bare == 0, "entries without an example:\n" .. table.concat(bare, "\n"))
  end)

  for _, path in ipairs(files) do
    for _, block in ipairs(examples(path)) do
      local name = string.format("%s:%d %s", block.file, block.line, block.heading)
      local env = setmetatable({tide = tide}, {__index = _G})
      for g, m in pairs(GLOBALS) do env[g] = m end
      it(name, function() run(block, env) end)
    end
  end
end)
