-- stdlib/tide/models/transformer_classifier.lua: a sequence classifier: token embeddings plus
-- sinusoidal positions (nn.PositionalEncoding), `layers` post-norm nn.TransformerEncoderLayer
-- (no mask: every token sees every token), the mean over the sequence, a Linear head.
local nn = require "tide.nn"
local U = require "tide.models.util"

local TC = nn.Module:extend("TransformerClassifier")
function TC:init(o)
  self.tok = nn.Embedding(o.vocab, o.d_model)
  self.pos = nn.PositionalEncoding(o.d_model, o.max_len)
  local layers = {}
  for i = 1, o.layers do
    layers[i] = nn.TransformerEncoderLayer(o.d_model, o.heads, {dim_feedforward = o.ff,
                                                                dropout = o.dropout})
  end
  self.layers = nn.ModuleList(layers)
  self.head = nn.Linear(o.d_model, o.classes)
end
function TC:forward(idx)                                -- idx: B x T int64 ids 1..vocab
  local x = self.pos(self.tok(idx))                     -- B x T x d_model
  for _, layer in ipairs(self.layers) do x = layer(x) end
  return self.head(x:mean(2))                           -- mean over T: B x classes
end

return function(o)
  o = U.options("models.transformer_classifier", o, {
    vocab = {256, "int"}, d_model = {64, "int"}, heads = {4, "int"}, layers = {2, "int"},
    classes = {2, "int"}, max_len = {512, "int"}, ff = {256, "int"}, dropout = {0.1, "prob"},
  })
  if o.d_model % o.heads ~= 0 then
    error(("models.transformer_classifier: d_model (%d) must be divisible by heads (%d)")
          :format(o.d_model, o.heads), 2)
  end
  return TC(o)
end
