-- stdlib/tide/nn/norm.lua: BatchNorm1d, BatchNorm2d, LayerNorm, GroupNorm and Embedding on top of
-- tide.batch_norm, tide.layer_norm and tide.embedding (GroupNorm: composed of tensor ops), with
-- PyTorch's parameter and buffer names.
local tide = require "tide"
local M = require "tide.nn.module"
local init = require "tide.nn.init_fns"

local U = require "tide.nn.util"

local Module, Parameter, is_tensor = M.Module, M.Parameter, tide.is_tensor
local options, shape, opts_str, call = U.options, U.shape, U.opts_str, U.call

local function posint(cfg, what, v, lvl)
  local n = type(v) == "number" and math.tointeger(v)
  if not (n and n >= 1) then error(cfg .. ": " .. what .. " must be a positive integer", lvl or 4) end
  return n
end

local function check_input(self, x)
  if not is_tensor(x) then
    error(self:config() .. ": expected a tensor input, got " .. type(x), 3)
  end
end

---- BatchNorm1d, BatchNorm2d -----------------------------------------------------------------

local BN = {eps = 1e-5, momentum = 0.1, affine = true, track_running_stats = true}
local BN_KEYS = {"eps", "momentum", "affine", "track_running_stats"}

local function batchnorm(name, dims, what)
  local cls = Module:extend(name)
  function cls:init(n, opts)
    local cfg = name .. "(" .. tostring(n) .. ")"
    self.num_features = posint(cfg, "num_features", n)
    local o = options(cfg, opts, BN)
    U.in_range(cfg, "eps", o.eps, "[0, inf)")
    U.in_range(cfg, "momentum", o.momentum, "[0, 1]")
    self._opts = o
    self.eps, self.momentum = o.eps, o.momentum
    self.affine, self.track_running_stats = o.affine, o.track_running_stats
    if o.affine then
      self.weight = Parameter(tide.ones(n))
      self.bias = Parameter(tide.zeros(n))
    end
    if o.track_running_stats then
      self:register_buffer("running_mean", tide.zeros(n))
      self:register_buffer("running_var", tide.ones(n))
      self:register_buffer("num_batches_tracked", tide.zeros({}, {dtype = "int64"}))
    end
  end
  function cls:reset_running_stats()
    if self.track_running_stats then
      tide.no_grad(function()
        self.running_mean:fill_(0)
        self.running_var:fill_(1)
        self.num_batches_tracked:fill_(0)
      end)
    end
    return self
  end
  function cls:reset_parameters()
    self:reset_running_stats()
    if self.affine then
      init.ones_(self.weight)
      init.zeros_(self.bias)
    end
    return self
  end
  function cls:config()
    return ("%s(%d%s)"):format(name, self.num_features, opts_str(self._opts, BN, BN_KEYS))
  end
  function cls:extra_repr() return self:config():match("^" .. name .. "%((.*)%)$") end
  function cls:forward(x)
    check_input(self, x)
    if not dims[x:dim()] then
      error(("%s: expected %s input, got %s"):format(self:config(), what, shape(x)), 2)
    end
    if x:size(2) ~= self.num_features then
      error(("%s: expected %d channels in dim 2, got %d (input %s)"):format(self:config(),
            self.num_features, x:size(2), shape(x)), 2)
    end
    -- batch statistics when training, or when there are no running statistics to use
    local training = self.training or not self.track_running_stats
    if self.training and self.track_running_stats then
      tide.no_grad(function() self.num_batches_tracked:add_(1) end)
    end
    local rm, rv = self.running_mean, self.running_var
    if not self.track_running_stats then rm, rv = nil, nil end
    return call(self, tide.batch_norm, x, rm, rv, self.weight, self.bias,
                {training = training, momentum = self.momentum, eps = self.eps})
  end
  return cls
end

---- LayerNorm -------------------------------------------------------------------------------

local LN = {eps = 1e-5, elementwise_affine = true, bias = true}

local LayerNorm = Module:extend("LayerNorm")
function LayerNorm:init(normalized_shape, opts)
  local sizes = type(normalized_shape) == "table" and normalized_shape or {normalized_shape}
  local cfg = "LayerNorm(" .. (type(normalized_shape) == "table"
              and "{" .. table.concat(sizes, ", ") .. "}" or tostring(normalized_shape)) .. ")"
  local ns = {}
  if #sizes == 0 then error(cfg .. ": normalized_shape must not be empty", 3) end
  for i, s in ipairs(sizes) do ns[i] = posint(cfg, "normalized_shape", s) end
  local o = options(cfg, opts, LN)
  U.in_range(cfg, "eps", o.eps, "[0, inf)")
  self.normalized_shape, self.eps, self.elementwise_affine = ns, o.eps, o.elementwise_affine
  self._cfg, self._opts = cfg, o
  if o.elementwise_affine then
    self.weight = Parameter(tide.ones(table.unpack(ns)))
    if o.bias then self.bias = Parameter(tide.zeros(table.unpack(ns))) end
  end
end
function LayerNorm:config()
  return self._cfg:sub(1, -2) .. opts_str(self._opts, LN, {"eps", "elementwise_affine", "bias"}) .. ")"
end
function LayerNorm:extra_repr() return self:config():match("^LayerNorm%((.*)%)$") end
function LayerNorm:forward(x)
  check_input(self, x)
  local ns, d = self.normalized_shape, x:dim()
  local ok = d >= #ns
  for i = 1, #ns do
    if not ok then break end
    ok = x:size(d - #ns + i) == ns[i]
  end
  if not ok then
    error(("%s: expected input ending in %s, got %s"):format(self:config(),
          table.concat(ns, "x"), shape(x)), 2)
  end
  return call(self, tide.layer_norm, x, ns, self.weight, self.bias, {eps = self.eps})
end

---- GroupNorm ---------------------------------------------------------------------------------
-- Statistics per example and group of channels: nothing mixes the examples of a batch (what
-- BatchNorm does), so it suits per-example gradients (tide.privacy) and batches of one.

local GN = {eps = 1e-5, affine = true}
local GroupNorm = Module:extend("GroupNorm")
function GroupNorm:init(groups, channels, opts)
  local cfg = ("GroupNorm(%s, %s)"):format(tostring(groups), tostring(channels))
  local g, c = posint(cfg, "num_groups", groups), posint(cfg, "num_channels", channels)
  if c % g ~= 0 then error(cfg .. ": num_groups must divide num_channels", 3) end
  local o = options(cfg, opts, GN)
  self.num_groups, self.num_channels, self.eps, self.affine = g, c, o.eps, o.affine
  self._opts = o
  if o.affine then
    self.weight = Parameter(tide.ones(c))
    self.bias = Parameter(tide.zeros(c))
  end
end
function GroupNorm:config()
  return ("GroupNorm(%d, %d%s)"):format(self.num_groups, self.num_channels,
                                         opts_str(self._opts, GN, {"eps", "affine"}))
end
function GroupNorm:extra_repr() return self:config():match("^GroupNorm%((.*)%)$") end
-- x (N x C x ...) normalised over each example's groups of C / num_groups channels, no affine
function GroupNorm:normalize(x)
  local g = x:reshape(x:size(1), self.num_groups, -1)
  local mean = g:mean(3, {keepdim = true})
  local var = g:var(3, {unbiased = false, keepdim = true})
  return ((g - mean) / (var + self.eps):sqrt()):reshape(x.shape)
end
function GroupNorm:forward(x)
  check_input(self, x)
  if x:dim() < 2 or x:size(2) ~= self.num_channels then
    error(("%s: expected N x %d x ... input, got %s"):format(self:config(), self.num_channels,
          shape(x)), 2)
  end
  local y = self:normalize(x)
  if not self.affine then return y end
  local s = {1, self.num_channels}
  for i = 3, x:dim() do s[i] = 1 end
  return y * self.weight:view(s) + self.bias:view(s)
end

---- Embedding -------------------------------------------------------------------------------

local Embedding = Module:extend("Embedding")
function Embedding:init(n, dim, opts)
  local cfg = ("Embedding(%s, %s)"):format(tostring(n), tostring(dim))
  self.num_embeddings = posint(cfg, "num_embeddings", n)
  self.embedding_dim = posint(cfg, "embedding_dim", dim)
  options(cfg, opts, {})
  self.weight = Parameter(tide.empty(n, dim))
  self:reset_parameters()
end
function Embedding:reset_parameters()        -- PyTorch's default: N(0, 1)
  init.normal_(self.weight, 0, 1)
  return self
end
function Embedding:config()
  return ("Embedding(%d, %d)"):format(self.num_embeddings, self.embedding_dim)
end
function Embedding:extra_repr() return ("%d, %d"):format(self.num_embeddings, self.embedding_dim) end
function Embedding:forward(idx)
  check_input(self, idx)
  if idx.dtype ~= "int64" then
    error(("%s: expected int64 indices, got %s (input %s)"):format(self:config(), idx.dtype,
          shape(idx)), 2)
  end
  return call(self, tide.embedding, idx, self.weight)
end

return {
  BatchNorm1d = batchnorm("BatchNorm1d", {[2] = true, [3] = true}, "an N x C or N x C x L"),
  BatchNorm2d = batchnorm("BatchNorm2d", {[4] = true}, "an N x C x H x W"),
  LayerNorm = LayerNorm, GroupNorm = GroupNorm, Embedding = Embedding,
}
