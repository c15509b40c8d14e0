-- stdlib/tide/models/gpt.lua: a decoder-only Transformer language model: token + learned
-- position embeddings, `layers` nn.TransformerEncoderLayer run with a causal mask (pre-norm by
-- default, as GPT-2; norm_first=false gives PyTorch's post-norm), a final LayerNorm and a Linear
-- head to next-token logits. gpt:generate samples a continuation with tide's seeded RNG.
local tide, nn = require "tide", require "tide.nn"
local U = require "tide.models.util"

local GPT = nn.Module:extend("GPT")
function GPT:init(o)
  self.seq_len = o.seq_len
  self.tok = nn.Embedding(o.vocab, o.d_model)                    -- registered in this order
  self.pos = nn.Embedding(o.seq_len, o.d_model)
  local layers = {}
  for i = 1, o.layers do
    layers[i] = nn.TransformerEncoderLayer(o.d_model, o.heads, {dim_feedforward = o.ff,
      dropout = o.dropout, activation = o.activation, norm_first = o.norm_first})
  end
  self.layers = nn.ModuleList(layers)
  self.ln_f = nn.LayerNorm(o.d_model)
  self.head = nn.Linear(o.d_model, o.vocab)
end

function GPT:forward(idx)                               -- idx: B x T int64 ids 1..vocab
  local T = idx:size(-1)
  if T > self.seq_len then
    error(("GPT: %d tokens exceed seq_len %d (crop the input)"):format(T, self.seq_len), 2)
  end
  local x = self.tok(idx) + self.pos(tide.arange(1, T):long())   -- B x T x d_model
  for _, layer in ipairs(self.layers) do x = layer(x, {causal = true}) end
  return self.head(self.ln_f(x))                        -- B x T x vocab
end

-- prompt: int64 ids (T or 1 x T); returns the prompt followed by n sampled ids, same rank
function GPT:generate(prompt, n, o)
  if not tide.is_tensor(prompt) or prompt.dtype ~= "int64" or prompt:numel() == 0 then
    error("GPT:generate: prompt must be a non-empty int64 tensor of token ids", 2)
  end
  if math.type(n) ~= "integer" or n < 0 then
    error("GPT:generate: n must be a non-negative integer, got " .. tostring(n), 2)
  end
  o = U.options("GPT:generate", o, {temperature = {1, "num"}, top_k = {nil, "int"}})
  local was = self.training
  self:eval()
  local ids = prompt:reshape(1, -1)
  tide.no_grad(function()
    for _ = 1, n do
      local T = ids:size(2)
      local ctx = ids:narrow(2, math.max(1, T - self.seq_len + 1), math.min(T, self.seq_len))
      local id = U.sample(self(ctx)[1][ctx:size(2)], o.temperature, o.top_k)
      ids = tide.cat({ids, tide.tensor({{id}}, {dtype = "int64"})}, 2)
    end
  end)
  self:train(was)
  return prompt:dim() == 1 and ids:view(-1) or ids
end

return function(o)
  o = U.options("models.gpt", o, {
    vocab = {256, "int"}, d_model = {128, "int"}, heads = {4, "int"}, layers = {2, "int"},
    seq_len = {64, "int"}, ff = {512, "int"}, dropout = {0, "prob"},
    activation = {"gelu", {"relu", "gelu"}}, norm_first = {true, "bool"},
  })
  if o.d_model % o.heads ~= 0 then
    error(("models.gpt: d_model (%d) must be divisible by heads (%d)"):format(o.d_model, o.heads), 2)
  end
  return GPT(o)
end
