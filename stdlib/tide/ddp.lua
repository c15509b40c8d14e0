-- stdlib/tide/ddp.lua: dist.DataParallel (doc/dist.md), which the C module tide.dist adds to
-- itself when it loads. The wrapper gives every rank rank 1's parameters and buffers, then a
-- reducer (vm/dist/reducer.c) averages the gradients across the ranks during each backward.
local nn = require "tide.nn"

return function(dist)
  local DataParallel = nn.Module:extend("DataParallel")

  -- dist.DataParallel(model, {bucket_mb = 25}): model's forward, with gradients averaged
  function DataParallel:init(model, o)
    o = o or {}
    if type(o) ~= "table" then error("dist.DataParallel: options must be a table, got " .. type(o), 3) end
    for k in pairs(o) do
      if k ~= "bucket_mb" then
        error("dist.DataParallel: unknown option '" .. tostring(k) .. "' (known: bucket_mb)", 3)
      end
    end
    local mb = o.bucket_mb or 25
    if type(mb) ~= "number" or mb ~= mb or mb <= 0 then
      error("dist.DataParallel: bucket_mb must be a positive number, got " .. tostring(mb), 3)
    end
    if not (type(model) == "table" and type(model.parameters) == "function") then
      error("dist.DataParallel: expected a model (an nn.Module), got " .. type(model), 3)
    end
    dist.init()
    self.module = model
    for _, t in ipairs(model:parameters()) do dist.broadcast(t, 1) end
    for _, t in ipairs(model:buffers()) do dist.broadcast(t, 1) end
    if dist.size() > 1 then
      local live = {}
      for _, p in ipairs(model:parameters()) do
        if p.requires_grad then live[#live + 1] = p end -- frozen parameters are skipped
      end
      rawset(self, "reducer", dist._reducer(live, mb * 2 ^ 20))
    end
  end

  function DataParallel:forward(...) return self.module(...) end

  function DataParallel.extra_repr() return "" end

  dist.DataParallel = DataParallel
end
