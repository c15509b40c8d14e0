-- stdlib/tide/tensor.lua: tensor methods written in Lua on top of the C views: split and chunk,
-- which return Lua lists of narrow views (so autograd sees each piece).
return function(tide)
  local Tensor = tide.Tensor

  local function checkdim(t, d, fn)
    local n = math.max(t:dim(), 1)
    d = math.tointeger(d or 1)
    if not d then error(fn .. ": dim must be an integer", 3) end
    if d == 0 or d > n or d < -n then
      error(string.format("%s: dim %d out of range for a %d-D tensor (expected 1..%d or -%d..-1)",
                          fn, d, t:dim(), n, n), 3)
    end
    if t:dim() == 0 then error(fn .. ": a 0-D tensor cannot be split", 3) end
    return d < 0 and n + d + 1 or d
  end

  -- Pieces of `size` positions along d (the last may be smaller), or of the sizes in a list.
  function Tensor:split(size, d)
    d = checkdim(self, d, "split")
    local n, pieces, start = self:size(d), {}, 1
    if type(size) == "table" then
      local total = 0
      for i, s in ipairs(size) do
        if not math.tointeger(s) or s < 0 then
          error("split: size " .. i .. " must be a non-negative integer, got " .. tostring(s), 2)
        end
        total = total + s
      end
      if total ~= n then
        error(string.format("split: sizes add up to %d but dim %d has size %d", total, d, n), 2)
      end
      for i, s in ipairs(size) do
        pieces[i] = self:narrow(d, start, s)
        start = start + s
      end
      return pieces
    end
    size = math.tointeger(size) or 0
    if size < 1 then
      error("split: size must be a positive integer (or a list of sizes)", 2)
    end
    if n == 0 then return {self:narrow(d, 1, 0)} end
    while start <= n do
      pieces[#pieces + 1] = self:narrow(d, start, math.min(size, n - start + 1))
      start = start + size
    end
    return pieces
  end

  -- At most `chunks` pieces of equal size along d (the last may be smaller), as torch.chunk.
  function Tensor:chunk(chunks, d)
    d = checkdim(self, d, "chunk")
    chunks = math.tointeger(chunks) or 0
    if chunks < 1 then
      error("chunk: the number of chunks must be a positive integer", 2)
    end
    local n = self:size(d)
    return self:split(math.max((n + chunks - 1) // chunks, 1), d)
  end

  function tide.split(t, size, d) return Tensor.split(t, size, d) end
  function tide.chunk(t, chunks, d) return Tensor.chunk(t, chunks, d) end
end
