-- stdlib/tide/quant/observers.lua: what static quantization learns about an activation from
-- calibration batches, as PyTorch 1.13's observers do (quint8, per tensor, affine, no
-- reduce_range). Each observer has :observe(x) and :qparams() -> scale, zero_point.
--   minmax: the running min and max (MinMaxObserver).
--   histogram: a 2048-bin histogram of the values, then the [lo, hi] whose 256-level
--     quantization has the least L2 error (HistogramObserver's search). Later batches outside
--     the first range re-bin the counts into the wider range at bin centres (PyTorch upsamples
--     instead), so over several batches the two can differ slightly.
--   percentile: [lo, hi] at the 0.01% and 99.99% quantiles of the histogram (clips outliers).
local tide = require "tide"
local Q = tide._quant

local BINS, DST = 2048, 256

local function minmax()
  local o = {}
  function o:observe(x)
    local lo, hi = x:min():item(), x:max():item()
    self.lo = self.lo and math.min(self.lo, lo) or lo
    self.hi = self.hi and math.max(self.hi, hi) or hi
  end
  function o:qparams() return Q.qparams(self.lo, self.hi, "uint8", false) end
  return o
end

-- f32(v): v rounded to float32, the precision PyTorch's observers keep
local function f32(v) return (string.unpack("f", string.pack("f", v))) end

-- the histogram part shared by histogram and percentile
local function histogram()
  local o = {}
  function o:observe(x)
    local lo, hi = f32(x:min():item()), f32(x:max():item())
    if not self.h then
      self.lo, self.hi = lo, hi
      self.h = lo < hi and Q.histc(x, BINS, lo, hi) or tide.zeros({BINS}, {dtype = "float64"})
      if lo == hi then self.h[1] = x:numel() end
      return
    end
    local nlo, nhi = math.min(lo, self.lo), math.max(hi, self.hi)
    if nlo < self.lo or nhi > self.hi then -- re-bin the old counts at their bin centres
      local w = (self.hi - self.lo) / BINS
      local centres = tide.arange(0, BINS - 1, {dtype = "float64"}) * w + (self.lo + w / 2)
      local old = self.h
      self.h = tide.zeros({BINS}, {dtype = "float64"})
      local idx = ((centres - nlo) / (nhi - nlo) * BINS):floor():clamp(0, BINS - 1):long() + 1
      local to = idx:totable()
      for i, c in ipairs(old:totable()) do
        if c > 0 then self.h[to[i]] = self.h[to[i]] + c end
      end
      self.lo, self.hi = nlo, nhi
    end
    if self.lo < self.hi then self.h:add_(Q.histc(x, BINS, self.lo, self.hi)) end
  end
  return o
end

-- the L2 error of quantizing bins s..e (0-based) into DST levels (PyTorch's
-- _compute_quantization_error, vectorised over the source bins)
local function qerror(h, bw, s, e)
  local dw = bw * (e - s + 1) / DST
  if dw == 0 then return 0 end
  local src = tide.arange(0, BINS - 1, {dtype = "float64"})
  local b = (src - s) * bw
  local db = (b / dw):floor():clamp(0, DST - 1)
  local de = ((b + bw) / dw):floor():clamp(0, DST - 1)
  local density = h / bw
  local function norm(d0, d1) return (d1 * d1 * d1 - d0 * d0 * d0) / 3 end
  local n = density * norm(b - (db + 0.5) * dw, tide.full({BINS}, dw / 2, {dtype = "float64"}))
  n = n + (de - db - 1) * density * norm(-dw / 2, dw / 2)
  n = n + density * norm(tide.full({BINS}, -dw / 2, {dtype = "float64"}),
                         b + bw - (de * dw + dw / 2))
  return n:sum():item()
end

-- HistogramObserver._non_linear_param_search
local function search(self)
  local h, bw = self.h, (self.hi - self.lo) / BINS
  local csum = h:cumsum(1):totable()
  local total = csum[BINS]
  local alpha, beta, s, e, best = 0.0, 1.0, 0, BINS - 1, math.huge
  while alpha < beta do
    local na, nb = alpha + 1e-5, beta - 1e-5
    local l, r = s, e
    while l < e and csum[l + 1] < na * total do l = l + 1 end
    while r > s and csum[r + 1] > nb * total do r = r - 1 end
    local ns, ne = s, e
    if l - s > e - r then ns, alpha = l, na else ne, beta = r, nb end
    if ns ~= s or ne ~= e then
      local err = qerror(h, bw, ns, ne)
      if err > best then break end
      best, s, e = err, ns, ne
    end
  end
  return self.lo + bw * s, self.lo + bw * (e + 1)
end

local function hist_observer()
  local o = histogram()
  function o:qparams()
    if self.lo == self.hi then return Q.qparams(self.lo, self.hi, "uint8", false) end
    local lo, hi = search(self)
    return Q.qparams(lo, hi, "uint8", false)
  end
  return o
end

local function percentile_observer(p)
  local o = histogram()
  function o:qparams()
    local csum, bw = self.h:cumsum(1):totable(), (self.hi - self.lo) / BINS
    local total, s, e = csum[BINS], 1, BINS
    while s < BINS and csum[s] < total * (1 - p) do s = s + 1 end
    while e > 1 and csum[e - 1] >= total * p do e = e - 1 end
    return Q.qparams(self.lo + bw * (s - 1), self.lo + bw * e, "uint8", false)
  end
  return o
end

local make = {minmax = minmax, histogram = hist_observer,
              percentile = function() return percentile_observer(0.9999) end}

return {new = function(kind) return make[kind]() end, kinds = make}
