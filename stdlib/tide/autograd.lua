-- stdlib/tide/autograd.lua: tide.autograd.gradcheck, finite differences in float64 against the
-- analytic gradients of a random projection sum(fn(...) * v) (PyTorch's "fast" gradcheck).
return function(tide)
  local autograd = tide.autograd

  -- A deterministic projection vector that leaves the global generator alone.
  local function projection(shape)
    local v = tide.zeros(shape, {dtype = "float64"})
    local flat, s = v:view(-1), 12345
    for i = 1, flat:numel() do
      s = (s * 1103515245 + 12345) % 2147483648
      flat[i] = s / 2147483648 - 0.5
    end
    return v
  end

  local function scalar(fn, inputs, v)
    local out = fn(table.unpack(inputs))
    return (out:double() * v):sum()
  end

  function autograd.gradcheck(fn, inputs, opts)
    opts = opts or {}
    local eps, atol, rtol = opts.eps or 1e-6, opts.atol or 1e-5, opts.rtol or 1e-3
    if tide.is_tensor(inputs) then inputs = {inputs} end
    local wrt = {}
    for i, x in ipairs(inputs) do
      if tide.is_tensor(x) and x.requires_grad then
        if x.dtype ~= "float64" then
          error("gradcheck: input " .. i .. " is " .. x.dtype .. ", expected float64", 2)
        end
        wrt[#wrt + 1] = i
      end
    end
    if #wrt == 0 then error("gradcheck: no input requires grad", 2) end
    local v = projection(fn(table.unpack(inputs)).shape)
    local targets = {}
    for k, i in ipairs(wrt) do targets[k] = inputs[i] end
    local analytic = autograd.grad(scalar(fn, inputs, v), targets, {allow_unused = true})
    local report = {}
    for k, i in ipairs(wrt) do
      -- perturb a contiguous copy: x itself may be a strided view that no flat view reaches
      local x = inputs[i]
      local base = tide.no_grad(function() return x:detach():clone():contiguous() end)
      local flat = base:view(-1)
      local args = table.move(inputs, 1, #inputs, 1, {})
      args[i] = base
      local a = analytic[k] and analytic[k]:reshape(-1) or tide.zeros(flat:numel(), {dtype = "float64"})
      for j = 1, flat:numel() do
        local orig = flat[j]
        local fp, fm = tide.no_grad(function()
          flat[j] = orig + eps
          local p = scalar(fn, args, v):item()
          flat[j] = orig - eps
          local m = scalar(fn, args, v):item()
          flat[j] = orig
          return p, m
        end)
        local numeric, got = (fp - fm) / (2 * eps), a[j]
        if math.abs(numeric - got) > atol + rtol * math.abs(numeric) then
          report[#report + 1] = string.format("input %d element %d: analytic %.8g, numeric %.8g",
                                              i, j, got, numeric)
        end
      end
    end
    if #report > 0 then return false, table.concat(report, "\n") end
    return true
  end
end
