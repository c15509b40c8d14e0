-- stdlib/tide/prune/topk.lua: which k of n values torch.topk picks on the CPU, ties included, so
-- tide's pruning masks are PyTorch's bit for bit. PyTorch's topk (ATen's topk_impl_loop) copies
-- the values with their indices and runs the C++ standard library on them: std::partial_sort
-- when k * 64 <= n, else std::nth_element; among equal values the winner is whatever those
-- algorithms leave in front. This file replays the selection steps of GCC's libstdc++ (the
-- library Debian's torch is built with: introselect with a median-of-three pivot and insertion
-- sort below 4 elements; heap selection for partial_sort), comparing values only, as ATen does.
-- Positions are 1-based and ranges half-open [first, last).
local M = {}

local function floor_log2(n)
  local r = 0
  while n > 1 do n, r = n // 2, r + 1 end
  return r
end

-- the k positions (1-based, into values) that torch.topk(values, k, largest) returns, unordered
function M.select(values, k, largest)
  local n = #values
  if k <= 0 then return {} end
  local v, ix = {}, {}
  for i = 1, n do v[i], ix[i] = values[i], i end
  local less
  if largest then less = function(a, b) return a > b end else less = function(a, b) return a < b end end

  local function swap(i, j) v[i], v[j], ix[i], ix[j] = v[j], v[i], ix[j], ix[i] end
  local function move(to, from) v[to], ix[to] = v[from], ix[from] end

  local function push_heap(first, hole, top, val, id)
    local parent = (hole - 1) // 2
    while hole > top and less(v[first + parent], val) do
      move(first + hole, first + parent)
      hole = parent
      parent = (hole - 1) // 2
    end
    v[first + hole], ix[first + hole] = val, id
  end

  local function adjust_heap(first, hole, len, val, id)
    local top, second = hole, hole
    while second < (len - 1) // 2 do
      second = 2 * (second + 1)
      if less(v[first + second], v[first + second - 1]) then second = second - 1 end
      move(first + hole, first + second)
      hole = second
    end
    if len % 2 == 0 and second == (len - 2) // 2 then
      second = 2 * (second + 1)
      move(first + hole, first + second - 1)
      hole = second - 1
    end
    push_heap(first, hole, top, val, id)
  end

  local function heap_select(first, middle, last)
    local len = middle - first
    if len >= 2 then                           -- make_heap
      local parent = (len - 2) // 2
      while true do
        adjust_heap(first, parent, len, v[first + parent], ix[first + parent])
        if parent == 0 then break end
        parent = parent - 1
      end
    end
    for i = middle, last - 1 do
      if less(v[i], v[first]) then             -- pop_heap(first, middle, i)
        local val, id = v[i], ix[i]
        move(i, first)
        adjust_heap(first, 0, len, val, id)
      end
    end
  end

  local function insertion_sort(first, last)
    for i = first + 1, last - 1 do
      local val, id = v[i], ix[i]
      if less(val, v[first]) then
        for j = i, first + 1, -1 do move(j, j - 1) end
        v[first], ix[first] = val, id
      else                                     -- unguarded linear insert
        local j = i
        while less(val, v[j - 1]) do
          move(j, j - 1)
          j = j - 1
        end
        v[j], ix[j] = val, id
      end
    end
  end

  local function median_to_first(result, a, b, c)
    if less(v[a], v[b]) then
      if less(v[b], v[c]) then swap(result, b)
      elseif less(v[a], v[c]) then swap(result, c)
      else swap(result, a) end
    elseif less(v[a], v[c]) then swap(result, a)
    elseif less(v[b], v[c]) then swap(result, c)
    else swap(result, b) end
  end

  local function partition_pivot(first, last)
    median_to_first(first, first + 1, first + (last - first) // 2, last - 1)
    local lo, hi, pivot = first + 1, last, first
    while true do
      while less(v[lo], v[pivot]) do lo = lo + 1 end
      hi = hi - 1
      while less(v[pivot], v[hi]) do hi = hi - 1 end
      if not (lo < hi) then return lo end
      swap(lo, hi)
      lo = lo + 1
    end
  end

  local function nth_element(first, nth, last)
    if first == last or nth == last then return end
    local depth = 2 * floor_log2(last - first)
    while last - first > 3 do
      if depth == 0 then
        heap_select(first, nth + 1, last)
        swap(first, nth)
        return
      end
      depth = depth - 1
      local cut = partition_pivot(first, last)
      if cut <= nth then first = cut else last = cut end
    end
    insertion_sort(first, last)
  end

  if k * 64 <= n then heap_select(1, 1 + k, n + 1) else nth_element(1, k, n + 1) end
  local out = {}
  for i = 1, k do out[i] = ix[i] end
  return out
end

return M
