-- tide.kernel: `tide --kernel FILE`, the Jupyter kernel's message handlers (doc/jupyter.md).
-- The sockets, signatures and streams are C (vm/kernel/, the tide.kernelwire module); the cells
-- run as the REPL runs a statement (its compile rule, Ctrl-C, traceback and value text).
local M = {}

local wire, repl
local count = 0      -- execution_count
local current        -- the execute_request being run (input and displays answer it)

local function is_tensor(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__name == "tide.Tensor"
end

local function esc(s)
  if math.type(s) == "float" then s = ("%.6g"):format(s) end
  return (tostring(s):gsub("[&<>\"]", {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;"}))
end

local MAXCELLS = 400 -- a larger tensor's table shows its corners (the text shows the rest)

-- a tensor of 0 to 2 dims as an HTML table (its values as tide prints them), or nil
function M.html(t)
  if not is_tensor(t) or t.ndim > 2 then return nil end
  local rows = t.ndim == 2 and t.shape[1] or 1
  local cols = t.ndim == 0 and 1 or t.shape[t.ndim]
  if rows * cols > MAXCELLS then return nil end
  local v = t:totable()
  local out = {("<table><caption>%s, %s</caption>"):format(esc(t.dtype),
    esc(table.concat(t.shape, "x")))}
  for i = 1, rows do
    local row = t.ndim == 2 and v[i] or (t.ndim == 1 and v or {v})
    out[#out + 1] = "<tr>"
    for j = 1, cols do out[#out + 1] = "<td>" .. esc(row[j]) .. "</td>" end
    out[#out + 1] = "</tr>"
  end
  out[#out + 1] = "</table>"
  return table.concat(out)
end

local function status(state, parent)
  wire.send("iopub", "status", {execution_state = state}, parent)
end

---- execute ------------------------------------------------------------------------------

local function lines(s)
  local out = wire.array()
  for l in (s .. "\n"):gmatch("([^\n]*)\n") do out[#out + 1] = l end
  return out
end

local function execute(msg)
  local c = msg.content
  local code = type(c.code) == "string" and c.code or ""
  local silent = c.silent == true
  if not silent and c.store_history ~= false then count = count + 1 end
  if not silent then
    wire.send("iopub", "execute_input", {code = code, execution_count = count}, msg)
  end
  wire.parent(msg)
  current = msg
  local reply
  local f, err = wire.compile(code)
  local r = f and table.pack(wire.run(f)) or {false, err, n = 2}
  current = nil
  wire.flush() -- what the cell wrote goes before its result
  if r[1] then
    if r.n > 1 and not silent then
      local text = repl.text(table.unpack(r, 2, r.n))
      if text then
        local data = {["text/plain"] = text}
        if r.n == 2 then data["text/html"] = M.html(r[2]) end
        wire.send("iopub", "execute_result",
          {execution_count = count, data = data, metadata = {}}, msg)
      end
    end
    reply = {status = "ok", execution_count = count, user_expressions = {},
      payload = wire.array()}
  else
    local text = tostring(r[2])
    local ename = f and "error" or "syntax error"
    if text:find("interrupted!", 1, true) then ename = "interrupted" end
    reply = {status = "error", execution_count = count, ename = ename,
      evalue = text:match("^[^\n]*"), traceback = lines(text)}
    if not silent then wire.send("iopub", "error", reply, msg) end
  end
  wire.flush()
  return reply
end

---- introspection --------------------------------------------------------------------------

-- the word before byte `pos` of code, as the REPL's readline splits words
local function word_before(code, pos)
  local head = code:sub(1, pos)
  local w = head:match("[%w_%.:]*$")
  return w, pos - #w
end

-- Jupyter counts cursor_pos in characters (code points); Lua in bytes
local function bytepos(code, cursor)
  if type(cursor) ~= "number" then return #code end
  return utf8.offset(code, math.floor(cursor) + 1) and utf8.offset(code, math.floor(cursor) + 1) - 1 or #code
end

local function charpos(code, byte) return utf8.len(code, 1, byte) or byte end

local function complete(msg)
  local code = type(msg.content.code) == "string" and msg.content.code or ""
  local pos = bytepos(code, msg.content.cursor_pos)
  local word, start = word_before(code, pos)
  local ok, found = pcall(repl.complete, word)
  local matches = wire.array()
  for _, m in ipairs(ok and found or {}) do matches[#matches + 1] = m end
  return {status = "ok", matches = matches, cursor_start = charpos(code, start),
    cursor_end = charpos(code, pos), metadata = {}}
end

local function inspect(msg)
  local code = type(msg.content.code) == "string" and msg.content.code or ""
  local pos = bytepos(code, msg.content.cursor_pos)
  local name = (code:sub(1, pos):match("[%w_%.:]*$") or "") .. (code:sub(pos + 1):match("^[%w_]*") or "")
  name = name:gsub("[%.:]$", "")
  if name == "" then return {status = "ok", found = false, data = {}, metadata = {}} end
  local ok, text = pcall(function() return require("tide.help").text(name) end)
  if not ok then return {status = "ok", found = false, data = {}, metadata = {}} end
  return {status = "ok", found = true, data = {["text/plain"] = text}, metadata = {}}
end

local function is_complete(msg)
  local code = type(msg.content.code) == "string" and msg.content.code or ""
  local s = wire.status(code)
  if s == "complete" and wire.compile(code) == nil then s = "invalid" end
  return s == "incomplete" and {status = s, indent = "  "} or {status = s}
end

local function kernel_info()
  return {status = "ok", protocol_version = "5.3", implementation = "tide",
    implementation_version = "0.1",
    language_info = {name = "lua", version = _VERSION:match("[%d%.]+"), mimetype = "text/x-lua",
      file_extension = ".lua", pygments_lexer = "lua", codemirror_mode = "lua"},
    banner = wire.version .. "   help() for help", help_links = wire.array()}
end

local handlers = {
  kernel_info_request = kernel_info,
  execute_request = execute,
  complete_request = complete,
  inspect_request = inspect,
  is_complete_request = is_complete,
  comm_info_request = function() return {status = "ok", comms = {}} end,
  history_request = function() return {status = "ok", history = wire.array()} end,
  -- interrupt_mode is "signal": a message-mode client's request has nothing to stop when idle
  interrupt_request = function() return {status = "ok"} end,
}

---- displays -------------------------------------------------------------------------------

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a << 16 | (b or 0) << 8 | (c or 0)
    local q = {}
    for k = 1, 4 do
      local d = n >> (6 * (4 - k)) & 63
      q[k] = B64:sub(d + 1, d + 1)
    end
    if not b then q[3] = "=" end
    if not c then q[4] = "=" end
    out[#out + 1] = table.concat(q)
  end
  return table.concat(out)
end

-- Sends a display_data (or update_display_data when update) for the running cell: data is
-- {[mime] = text}, image types other than SVG as raw bytes (sent base64); id names the display
-- that later updates replace. Outside a kernel: false.
function M.display(data, id, update)
  if type(data) ~= "table" then
    error("kernel.display: expects a table of MIME type -> text, got " .. type(data), 2)
  end
  if not current then return false end
  local sent = {}
  for mime, v in pairs(data) do
    if type(mime) ~= "string" or type(v) ~= "string" then
      error(("kernel.display: data[%s] must be a string, got %s"):format(tostring(mime), type(v)), 2)
    end
    sent[mime] = mime:match("^image/") and mime ~= "image/svg+xml" and base64(v) or v
  end
  wire.send("iopub", update and "update_display_data" or "display_data",
    {data = sent, metadata = {}, transient = id and {display_id = tostring(id)} or {}}, current)
  return true
end

function M.active() return current ~= nil end

---- the loop -------------------------------------------------------------------------------

-- io.read in a cell asks the notebook (input_request) when the cell allows it
local function install_input()
  local read = io.read
  io.read = function(...) -- luacheck: ignore 122
    if not current then return read(...) end
    if current.content.allow_stdin == false then
      error("io.read: this notebook client does not accept input (allow_stdin is false)", 2)
    end
    local fmt = ... or "l"
    if type(fmt) == "string" then fmt = fmt:gsub("^%*", "") end
    local line = wire.input("", false, current)
    if line == nil then return nil end
    if fmt == "n" then return tonumber(line) end
    if fmt == "L" then return line .. "\n" end
    return line
  end
end

function M.run(file)
  wire = require "tide.kernelwire"
  repl = require "tide.repl"
  local f = assert(io.open(file, "rb"))
  local cfg = wire.decode(f:read("a"), file)
  f:close()
  wire.open(cfg)
  package.loaded["tide.kernel"] = M
  install_input()
  while true do
    local chan, msg = wire.recv()
    local t = msg.header.msg_type
    local name = type(t) == "string" and t:match("^(.*)_request$")
    if t == "shutdown_request" then
      local restart = msg.content.restart == true
      wire.send(chan, "shutdown_reply", {status = "ok", restart = restart}, msg)
      status("idle", msg)
      wire.flush()
      return
    elseif name and handlers[t] then
      status("busy", msg)
      local ok, reply = pcall(handlers[t], msg)
      if not ok then reply = {status = "error", ename = "kernel", evalue = tostring(reply),
        traceback = wire.array{tostring(reply)}} end
      wire.send(chan, name .. "_reply", reply, msg)
      status("idle", msg)
    elseif name then
      status("busy", msg)
      wire.send(chan, name .. "_reply", {status = "error", ename = "unknown message",
        evalue = t, traceback = wire.array()}, msg)
      status("idle", msg)
    end
  end
end

return M
