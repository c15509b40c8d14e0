-- stdlib/tide/data/csv.lua: data.csv, numeric CSV files to one float tensor (RFC 4180 quoting:
-- "a, b" and "say ""hi""" are one field each, and a quoted field may span lines).
local tide = require "tide"

local KNOWN = {header = true, sep = true, dtype = true, strings = true}
local NONFINITE = {nan = 0 / 0, ["-nan"] = 0 / 0, inf = math.huge, ["+inf"] = math.huge,
                   ["-inf"] = -math.huge, infinity = math.huge, ["-infinity"] = -math.huge}

-- An iterator over the records of s: fields (a list of strings), the line it starts on.
local function records(s, sep, where)
  local pos, line, n = 1, 1, #s
  local stop = "[" .. (sep == "%" and "%%" or sep:gsub("[%^%]%-]", "%%%0")) .. "\"\r\n]"
  return function()
    while pos <= n and s:find("^\r?\n", pos) do    -- blank lines
      pos = s:find("\n", pos, true) + 1
      line = line + 1
    end
    if pos > n then return nil end
    local fields, first = {}, line
    while true do
      if s:byte(pos) == 34 then                      -- '"': a quoted field
        local parts, p = {}, pos + 1
        while true do
          local q = s:find('"', p, true)
          if not q then error(string.format("data.csv: %s:%d: unterminated quoted field", where,
                                            first), 0) end
          local seg = s:sub(p, q - 1)
          parts[#parts + 1] = seg
          for _ in seg:gmatch("\n") do line = line + 1 end
          if s:byte(q + 1) == 34 then parts[#parts + 1] = '"'; p = q + 2
          else pos = q + 1; break end
        end
        fields[#fields + 1] = table.concat(parts)
      else
        local e = s:find(stop, pos) or n + 1
        if s:byte(e) == 34 then
          error(string.format("data.csv: %s:%d: a quote inside an unquoted field (field %d)",
                              where, line, #fields + 1), 0)
        end
        fields[#fields + 1] = s:sub(pos, e - 1)
        pos = e
      end
      local c = s:sub(pos, pos)
      if c == sep then
        pos = pos + #sep
      elseif c == "" or c == "\n" or c == "\r" then
        if c == "\r" then pos = pos + 1 end
        if s:sub(pos, pos) == "\n" then pos = pos + 1; line = line + 1 end
        return fields, first
      else
        error(string.format("data.csv: %s:%d: unexpected %q after a closing quote (field %d)",
                            where, line, c, #fields), 0)
      end
    end
  end
end

local function number(v, where, line, col, name)
  local x = tonumber(v)
  if x then return x end
  local t = v:match("^%s*(.-)%s*$")
  x = tonumber(t) or NONFINITE[t:lower()]
  if x then return x end
  if t == "" then return 0 / 0 end                  -- an empty field is missing: nan
  error(string.format("data.csv: %s:%d: column %d%s: %q is not a number (list the column in "
                      .. "{strings = {...}} to keep it as text)", where, line, col,
                      name and (" (" .. name .. ")") or "", v), 0)
end

-- data.csv(path, {header = true, sep = ",", dtype = "float32", strings = {...}}):
-- x (N x C, the numeric columns), names (their header names, or nil without a header), and
-- text (column name or index -> list of N strings, for the columns named in `strings`).
return function(path, o)
  o = o or {}
  if type(path) ~= "string" then error("data.csv: expected a path, got " .. type(path), 2) end
  if type(o) ~= "table" then error("data.csv: options must be a table", 2) end
  for k in pairs(o) do
    if not KNOWN[k] then error(string.format("data.csv: unknown option '%s'", tostring(k)), 2) end
  end
  local sep = o.sep or ","
  if type(sep) ~= "string" or #sep ~= 1 or sep == '"' or sep == "\n" then
    error("data.csv: sep must be one character other than a quote or newline", 2)
  end
  local f, err = io.open(path, "rb")
  if not f then error("data.csv: cannot read " .. err, 2) end
  local s, rerr = f:read("a") -- io.open succeeds on a directory; reading it fails
  f:close()
  if not s then error("data.csv: cannot read " .. path .. ": " .. tostring(rerr), 2) end
  local header = o.header ~= false
  local next_record = records(s, sep, path)
  local names, width
  if header then
    names = next_record()
    if not names then error("data.csv: " .. path .. " is empty (expected a header line)", 2) end
    width = #names
  end
  local keep, kept = {}, {}
  for _, c in ipairs(o.strings or {}) do
    local k = c
    if type(c) == "string" then
      for i, nm in ipairs(names or {}) do if nm == c then k = i end end
      if type(k) ~= "number" then
        error(string.format("data.csv: strings: no column named %q in %s", c, path), 2)
      end
    end
    keep[k] = c
    kept[c] = {}
  end
  local flat, rows = {}, 0
  for fields, line in next_record do
    width = width or #fields
    if #fields ~= width then
      error(string.format("data.csv: %s:%d: expected %d fields (as in the %s), got %d", path, line,
                          width, header and "header" or "first row", #fields), 2)
    end
    rows = rows + 1
    for c = 1, width do
      local v = fields[c]
      if keep[c] then
        kept[keep[c]][rows] = v
      else
        flat[#flat + 1] = number(v, path, line, c, names and names[c])
      end
    end
  end
  local cols = width or 0
  for _ in pairs(keep) do cols = cols - 1 end
  local numeric_names
  if names then
    numeric_names = {}
    for c, nm in ipairs(names) do if not keep[c] then numeric_names[#numeric_names + 1] = nm end end
  end
  local x = #flat > 0 and tide.tensor(flat, {dtype = o.dtype or "float32"}):view(rows, cols)
            or tide.empty(rows, cols, {dtype = o.dtype or "float32"})
  return x, numeric_names, kept
end
