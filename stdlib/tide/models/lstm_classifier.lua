-- stdlib/tide/models/lstm_classifier.lua: a sequence classifier: an LSTM (batch_first) over the
-- input's steps, then a Linear on the last step's output. An N x 1 x 28 x 28 image is read as
-- 28 steps of 28 features (its rows), as in BENCHMARKS.md's train_lstm.
local nn = require "tide.nn"
local U = require "tide.models.util"

local C = nn.Module:extend("LSTMClassifier")
function C:init(o)
  self.input = o.input
  self.lstm = nn.LSTM(o.input, o.hidden, {num_layers = o.layers, batch_first = true,
                                          dropout = o.dropout})
  self.fc = nn.Linear(o.hidden, o.classes)
end
function C:forward(x)                                   -- x: N x T x input (or N x 1 x T x input)
  local out = self.lstm(x:reshape(x:size(1), -1, self.input))   -- N x T x hidden
  return self.fc(out:select(2, -1))                     -- the last step: N x classes
end

return function(o)
  return C(U.options("models.lstm_classifier", o, {
    input = {28, "int"}, hidden = {128, "int"}, layers = {2, "int"}, classes = {10, "int"},
    dropout = {0, "prob"},
  }))
end
