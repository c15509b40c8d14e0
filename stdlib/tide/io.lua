-- stdlib/tide/io.lua: tide.save / tide.load (safetensors), tide.save_npy / tide.load_npy and
-- tide.checkpoint, on the raw calls of tide._io (vm/io.c, tensor/io/). Tables are flattened to
-- dotted keys: tensors become the file's tensors, numbers, booleans and strings its
-- __metadata__ (strings, as the format requires), and one reserved metadata entry,
-- "__tide_types__", records which values were integers (i), floats (f), booleans (b) or empty
-- tables (e), so they load back as they were saved. Files without it load every metadata value
-- as a string. "__tide_root__" marks a single tensor ("tensor") or a checkpoint ("checkpoint").
return function(tide)
  local C = tide._io
  local is_tensor = tide.is_tensor
  local TYPES, ROOT = "__tide_types__", "__tide_root__"

  -- Errors carry no position inside this file; guard re-raises them at the public caller.
  local function fail(fn, msg) error(fn .. ": " .. msg, 0) end

  local function guard(f)
    return function(...)
      local r = table.pack(pcall(f, ...))
      if not r[1] then -- a position inside this file says nothing to the caller
        error(type(r[2]) == "string" and r[2]:gsub("^[^\n:]*tide/io%.lua:%d+: ", "") or r[2], 2)
      end
      return table.unpack(r, 2, r.n)
    end
  end

  -- f(...), its error prefixed with the public function's name (a full disk says who wrote)
  local function named(fn, f, ...)
    local r = table.pack(pcall(f, ...))
    if not r[1] then fail(fn, (tostring(r[2]):gsub("^save: ", ""):gsub("^save_npy: ", ""))) end
    return table.unpack(r, 2, r.n)
  end

  -- %.17g gives back the same double; inf and nan have no Lua literal so they are spelled out
  local function float_str(x)
    if x ~= x then return "nan" end
    if x == math.huge then return "inf" elseif x == -math.huge then return "-inf" end
    return ("%.17g"):format(x)
  end

  local function float_of(s)
    if s == "nan" then return 0 / 0 elseif s == "inf" then return math.huge
    elseif s == "-inf" then return -math.huge end
    local v = tonumber(s)
    return v and v + 0.0
  end

  -- value -> out.names/out.tensors (parallel lists), out.meta, out.types (name -> letter)
  local function flatten(fn, v, name, out)
    if out.seen[name] then
      fail(fn, "key '" .. name .. "' appears twice (a dotted key and a nested table?)")
    end
    if name:sub(1, 6) == "__tide" then
      fail(fn, "keys starting with '__tide' are reserved, got '" .. name .. "'")
    end
    out.seen[name] = true
    local ty = type(v)
    if is_tensor(v) then
      out.names[#out.names + 1], out.tensors[#out.tensors + 1] = name, v
    elseif ty == "string" then
      out.meta[name] = v
    elseif ty == "number" then
      local int = math.type(v) == "integer"
      out.meta[name], out.types[name] = int and tostring(v) or float_str(v), int and "i" or "f"
    elseif ty == "boolean" then
      out.meta[name], out.types[name] = tostring(v), "b"
    elseif ty == "table" then
      if type(v.state_dict) == "function" then
        fail(fn, "'" .. name .. "' is a module or an optimizer: save its state_dict() (or use m:save(path))")
      end
      if next(v) == nil then
        out.meta[name], out.types[name] = "", "e"
      end
      for k, x in pairs(v) do
        if math.type(k) ~= "integer" and type(k) ~= "string" then
          fail(fn, ("'%s' has a %s key; only string and integer keys can be saved"):format(name, type(k)))
        end
        flatten(fn, x, name == "" and tostring(k) or name .. "." .. tostring(k), out)
      end
    else
      fail(fn, ("'%s' is a %s: only tensors, numbers, strings, booleans and tables can be saved")
           :format(name, ty))
    end
  end

  local function write(fn, path, root, kind)
    if type(path) ~= "string" then fail(fn, "expected a path (a string), got " .. type(path)) end
    local out = {names = {}, tensors = {}, meta = {}, types = {}, seen = {}}
    if is_tensor(root) then
      out.names[1], out.tensors[1], out.meta[ROOT] = "tensor", root, "tensor"
    elseif type(root) == "table" then
      if type(root.state_dict) == "function" then
        fail(fn, "got a module or an optimizer: save its state_dict() (or use m:save(path))")
      end
      for k, x in pairs(root) do
        if math.type(k) ~= "integer" and type(k) ~= "string" then
          fail(fn, "only string and integer keys can be saved, got a " .. type(k) .. " key")
        end
        flatten(fn, x, tostring(k), out)
      end
      out.meta[ROOT] = kind
    else
      fail(fn, "expected a tensor or a table, got " .. type(root))
    end
    local lines = {}
    for name, letter in pairs(out.types) do
      if name:find("\n", 1, true) then fail(fn, "key " .. ("%q"):format(name) .. " contains a newline") end
      lines[#lines + 1] = letter .. name
    end
    table.sort(lines)
    if #lines > 0 then out.meta[TYPES] = table.concat(lines, "\n") end
    named(fn, C.st_save, path, out.names, out.tensors, out.meta)
  end

  -- "1" -> 1, "-2" -> -2 (what tostring(k) of an integer key gives); other text stays a string
  local function key_of(s)
    if s:match("^%-?%d+$") then
      local v = math.tointeger(tonumber(s))
      if v and tostring(v) == s then return v end
    end
    return s
  end

  local function unflatten(fn, flat)
    local root, names = {}, {}
    for name in pairs(flat) do names[#names + 1] = name end
    table.sort(names) -- "a" before "a.b": a conflict is reported the same way every time
    for _, name in ipairs(names) do
      local node, parts, start = root, {}, 1
      while true do
        local dot = name:find(".", start, true)
        parts[#parts + 1] = name:sub(start, (dot or 0) - 1)
        if not dot then break end
        start = dot + 1
      end
      for i = 1, #parts - 1 do
        local k = key_of(parts[i])
        local nxt = node[k]
        if nxt == nil then nxt = {}; node[k] = nxt
        elseif type(nxt) ~= "table" or is_tensor(nxt) then
          fail(fn, ("key '%s' is inside '%s', which is not a table (load with {flat = true})")
               :format(name, table.concat(parts, ".", 1, i)))
        end
        node = nxt
      end
      local k, v = key_of(parts[#parts]), flat[name]
      if node[k] ~= nil then
        if not (type(v) == "table" and type(node[k]) == "table" and next(v) == nil) then
          fail(fn, ("key '%s' is both a value and a table (load with {flat = true})"):format(name))
        end
      else
        node[k] = v
      end
    end
    return root
  end

  -- the flat table of a file (dotted name -> tensor or typed value) and its root kind
  local function read(fn, path)
    if type(path) ~= "string" then fail(fn, "expected a path (a string), got " .. type(path)) end
    local names, tensors, meta = C.st_load(path)
    local types = {}
    for line in (meta[TYPES] or ""):gmatch("[^\n]+") do types[line:sub(2)] = line:sub(1, 1) end
    local flat = {}
    for i, name in ipairs(names) do flat[name] = tensors[i] end
    for name, s in pairs(meta) do
      if flat[name] ~= nil then -- one table holds both: either would silently hide the other
        fail(fn, ("%s: metadata key '%s' is also the name of a tensor"):format(path, name))
      end
      if name ~= TYPES and name ~= ROOT then
        local ty, v = types[name], s
        if ty == "i" then v = math.tointeger(tonumber(s))
        elseif ty == "f" then v = float_of(s)
        elseif ty == "b" then v = s == "true"
        elseif ty == "e" then v = {} end
        if v == nil then
          fail(fn, ("%s: metadata '%s' = '%s' is not a valid %s"):format(path, name, s, ty))
        end
        flat[name] = v
      end
    end
    return flat, meta[ROOT], names, tensors
  end

  tide.save = guard(function(path, value) write("tide.save", path, value, "table") end)

  -- {flat = true}: the dotted keys as they are in the file, and the file's kind as a second
  -- value ("tensor", "table", "checkpoint", or nil for files other tools wrote)
  tide.load = guard(function(path, opts)
    local flat, root, names, tensors = read("tide.load", path)
    if opts and opts.flat then return flat, root end
    if root == "tensor" and #names == 1 then return tensors[1] end
    return unflatten("tide.load", flat)
  end)

  tide.save_npy = guard(function(path, t)
    if type(path) ~= "string" then fail("tide.save_npy", "expected a path (a string), got " .. type(path)) end
    if not is_tensor(t) then fail("tide.save_npy", "expected a tensor, got " .. type(t)) end
    named("tide.save_npy", C.npy_save, path, t)
  end)

  tide.load_npy = guard(function(path)
    if type(path) ~= "string" then fail("tide.load_npy", "expected a path (a string), got " .. type(path)) end
    return C.npy_load(path)
  end)

  ---- checkpoints ------------------------------------------------------------------------------

  local checkpoint = {}
  tide.checkpoint = checkpoint
  local KNOWN = {model = true, optimizer = true, scheduler = true, epoch = true, step = true,
                 rng = true, extra = true}

  local function check_opts(fn, o)
    if type(o) ~= "table" then fail(fn, "expected a table of options, got " .. type(o)) end
    for k in pairs(o) do
      if not KNOWN[k] then
        fail(fn, "unknown option '" .. tostring(k) .. "' (expected model, optimizer, scheduler, "
             .. "epoch, step, rng, extra)")
      end
    end
  end

  local function state_of(fn, what, obj)
    if obj == nil then return nil end
    local ok, f = pcall(function() return obj.state_dict end)
    if not ok or type(f) ~= "function" then fail(fn, what .. " has no state_dict method") end
    return obj:state_dict()
  end

  checkpoint.save = guard(function(path, o)
    local fn = "checkpoint.save"
    check_opts(fn, o)
    for _, k in ipairs({"epoch", "step"}) do
      if o[k] ~= nil and math.type(o[k]) ~= "integer" then
        fail(fn, k .. " must be an integer, got " .. tostring(o[k]))
      end
    end
    local root = {model = state_of(fn, "model", o.model),
                  optimizer = state_of(fn, "optimizer", o.optimizer),
                  scheduler = state_of(fn, "scheduler", o.scheduler),
                  epoch = o.epoch, step = o.step, extra = o.extra}
    if o.rng ~= false then root.rng = tide.get_rng_state() end
    write(fn, path, root, "checkpoint")
  end)

  -- checkpoint.load(path) -> {model=, optimizer=, scheduler=, epoch=, step=, rng=, extra=}
  -- checkpoint.load(path, {model=m, optimizer=o, scheduler=s, rng=true}) restores in place and
  -- returns epoch, step, extra, and the table above.
  checkpoint.load = guard(function(path, into)
    local fn = "checkpoint.load"
    local flat, root = read(fn, path)
    if root ~= "checkpoint" then
      fail(fn, path .. " is not a checkpoint (written by tide.save or another tool? use tide.load)")
    end
    local ck = unflatten(fn, flat)
    if into == nil then return ck end
    check_opts(fn, into)
    for _, k in ipairs({"model", "optimizer", "scheduler"}) do
      if into[k] ~= nil and ck[k] == nil then fail(fn, path .. " holds no " .. k .. " state") end
    end
    -- all or nothing: every part is checked against its target before any is applied
    local apply, unchecked = {}, {}
    for _, k in ipairs({"model", "optimizer", "scheduler"}) do
      local obj, part = into[k], ck[k]
      if obj ~= nil then
        local ok, prepare = pcall(function() return obj._prepare_load end)
        if ok and type(prepare) == "function" then
          local fine, commit = pcall(prepare, obj, part)
          if not fine then
            fail(fn, ("%s: the %s part does not fit: %s"):format(path, k, tostring(commit)))
          end
          apply[#apply + 1] = commit
        else -- an object of the user's own: its load_state_dict runs first, before ours apply
          unchecked[#unchecked + 1] = function() obj:load_state_dict(part) end
        end
      end
    end
    if into.rng ~= false and ck.rng then -- checked by setting it, then the current one back
      local cur = tide.get_rng_state()
      local ok, err = pcall(tide.set_rng_state, ck.rng)
      tide.set_rng_state(cur)
      if not ok then fail(fn, ("%s: the rng part does not fit: %s"):format(path, tostring(err))) end
      local rng = ck.rng
      apply[#apply + 1] = function() tide.set_rng_state(rng) end
    end
    for _, commit in ipairs(unchecked) do commit() end
    for _, commit in ipairs(apply) do commit() end
    return ck.epoch, ck.step, ck.extra, ck
  end)
end
