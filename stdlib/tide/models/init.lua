-- stdlib/tide/models/init.lua: the models table (doc/models.md). Each model is one file of
-- stdlib/tide/models/ returning its constructor; the file loads on the model's first use.
local M = {}

for _, name in ipairs({"mlp", "cnn", "lenet5", "resnet", "autoencoder", "lstm_classifier",
                       "gpt", "transformer_classifier"}) do
  M[name] = function(...) return require("tide.models." .. name)(...) end
end

return M
