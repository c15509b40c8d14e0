-- stdlib/tide/progress.lua: the progress display of tide.fit. On a terminal, one line redrawn
-- in place ("\r") at most 10 times a second: epoch, bar, batch, running loss, samples/s, ETA.
-- Into a file or a pipe, a plain line every ~10% of an epoch. Either way one summary line per
-- epoch. progress.new{epochs=, out=io.stdout, tty=(detected)}; :start, :update, :finish.
local tide = require "tide"

local Progress = {}
Progress.__index = Progress

local WIDTH = 20 -- characters of the bar

local function clock_str(s)
  s = math.floor(s + 0.5)
  if s >= 3600 then return ("%d:%02d:%02d"):format(s // 3600, s // 60 % 60, s % 60) end
  return ("%d:%02d"):format(s // 60, s % 60)
end

-- o: {epochs = n, out = file (io.stdout), tty = bool (whether out is a terminal)}
local function new(o)
  local out = o.out or io.stdout
  local tty = o.tty
  if tty == nil then tty = out == io.stdout and tide._isatty(1) end
  return setmetatable({epochs = o.epochs, out = out, tty = tty}, Progress)
end

-- A new epoch of `batches` batches.
function Progress:start(epoch, batches)
  self.epoch, self.batches = epoch, batches
  self.t0 = tide._clock()
  self.shown, self.loss, self.samples = self.t0, 0, 0
end

function Progress:line(i, now)
  local elapsed = now - self.t0
  local rate = elapsed > 0 and self.samples / elapsed or 0
  local head = ("epoch %d/%d"):format(self.epoch, self.epochs)
  local loss = ("loss %.4f"):format(self.loss / self.samples)
  if not self.tty then
    return ("%s  batch %d/%d  %s  %.0f samples/s\n"):format(head, i, self.batches, loss, rate)
  end
  local done = math.floor(WIDTH * i / self.batches)
  local bar = ("="):rep(done) .. (done < WIDTH and ">" or "") .. (" "):rep(WIDTH - done - 1)
  local eta = clock_str(elapsed / i * (self.batches - i))
  return ("\r%s [%s] %d/%d  %s  %.0f/s  ETA %s\27[K"):format(head, bar:sub(1, WIDTH), i,
    self.batches, loss, rate, eta)
end

-- Batch i done with this (mean) loss over n samples; draws when due (cheap otherwise).
function Progress:update(i, loss, n)
  self.loss, self.samples = self.loss + loss * n, self.samples + n
  local due
  if self.tty then
    local now = tide._clock()
    due = now - self.shown >= 0.1 or i == self.batches
    if due then self.shown = now end
  else -- every tenth of the epoch, the end itself left to the summary
    due = i < self.batches and (i * 10) // self.batches > ((i - 1) * 10) // self.batches
  end
  if due then
    self.out:write(self:line(i, tide._clock()))
    self.out:flush()
  end
end

-- The epoch's summary line, replacing the bar on a terminal.
function Progress:finish(summary)
  self.out:write(self.tty and "\r\27[K" or "", summary, "\n")
  self.out:flush()
end

return {new = new}
