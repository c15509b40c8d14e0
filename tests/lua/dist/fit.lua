-- tests/lua/dist/fit.lua DIR NAME EPOCHS [resume [apart]] (run by dist_spec.lua, alone or under
-- mpirun -np 2): tide.fit of a DataParallel model on a sharded, shuffled loader with a global
-- batch of 64 (64 / ranks each), checkpointing to DIR/NAME.ck; rank 1 writes the parameters and
-- the history to DIR/NAME.safetensors. apart: rank 2 looks for another checkpoint file.
local tide = require "tide"
local nn, optim, data = require "tide.nn", require "tide.optim", require "tide.data"
local dir, name, epochs, resume = arg[1], arg[2], math.tointeger(tonumber(arg[3])), arg[4]
local dist = tide.dist
local rank, size = dist.init()
local ck = dir .. "/" .. name .. (arg[5] == "apart" and rank == 2 and "_2" or "") .. ".ck"

tide.manual_seed(3)
local X, Y = tide.randn(512, 20), tide.randint(1, 4, {512})
local train = data.DataLoader(data.TensorDataset(X:narrow(1, 1, 384), Y:narrow(1, 1, 384)),
  {batch_size = 64 // size, shuffle = true, seed = 11, shard = "auto"})
local val = data.DataLoader(data.TensorDataset(X:narrow(1, 385, 128), Y:narrow(1, 385, 128)),
  {batch_size = 32, shard = "auto"})
tide.manual_seed(5 + rank) -- the ranks start apart: DataParallel gives them rank 1's weights
local model = dist.DataParallel(nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 4)))
local h = tide.fit(model, {train = train, val = val, epochs = epochs, resume = resume == "resume",
  optimizer = optim.Adam(model:parameters(), {lr = 1e-2}), checkpoint = ck})
if rank == 1 then
  local out = {}
  for k, v in pairs(model.module:state_dict()) do out["p." .. k] = v end
  out.train_loss = tide.tensor(h.train_loss, {dtype = "float64"})
  out.val_loss = tide.tensor(h.val_loss, {dtype = "float64"})
  out.val_accuracy = tide.tensor(h.val_accuracy, {dtype = "float64"})
  tide.save(dir .. "/" .. name .. ".safetensors", out)
end
print(("fit ok rank %d of %d"):format(rank, size))
