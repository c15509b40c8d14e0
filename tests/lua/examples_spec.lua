-- tests/lua/examples_spec.lua: every examples/*.lua runs through the tide program, so examples
-- cannot rot. Each runs with --smoke (a few batches, no result check; files go to a temporary
-- directory; one thread: the batches are tiny) and must exit with status 0 and print its
-- closing line.
local H = require "helpers"
local TIDE = (os.getenv("TIDE_BUILD") or "build") .. "/tide"

local SMOKE = {   -- script, the options beside --smoke (%s: a temporary directory), closing words
  {"tensors", nil, "softmax of the fitted parameters"},
  {"fashion_cnn", "--plot %s/loss.png", "test accuracy after"},
  {"ddp", "--plot %s/ddp.png", "test accuracy after 1 epoch on 1 rank"}, -- alone; under mpirun: dist_spec
  {"fashion_mlp", "--plot %s/mlp.png", "test accuracy after"},
  {"private", "--plot %s/private.png", "accuracy against epsilon"},
  {"autoencoder", "--out %s/ae.png", "test MSE after"},
  {"finetune", "", "with the pretrained features"},
  {"distill", "", "distilled ("},
  {"char_lstm", "--plot %s/char_lstm.png", "validation loss after"},
  {"gpt", "--plot %s/gpt.png", "validation loss after"},
  {"explain", "--out %s/explain.png", "sanity check"},
  {"fairness", "--out %s", "the accuracy it cost"},
  {"compress", "--out %s", "int8 accuracy loss at most"},
}

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

describe("examples", function()
  if not exists(TIDE) then
    pending(TIDE .. " is not built")
    return
  end
  local dir = H.tmpdir()
  teardown(function() os.execute("rm -rf " .. dir) end)

  for _, e in ipairs(SMOKE) do
    local name, opts, closing = e[1], e[2], e[3]
    it(name .. ".lua runs" .. (opts and " (--smoke)" or ""), function()
      local cmd = ("%s --threads 1 examples/%s.lua %s 2>&1"):format(TIDE, name,
                  opts and ("--smoke " .. opts:format(dir)) or "")
      local p = io.popen(cmd)
      local out = p:read("a")
      local ok, _, code = p:close()
      assert(ok, ("%s exited with %s:\n%s"):format(cmd, tostring(code), out:sub(-3000)))
      assert(out:find(closing, 1, true), ("%s: no line with %q in:\n%s"):format(cmd, closing,
             out:sub(-3000)))
    end)
  end

  -- the notebook, executed headless in the Jupyter kernel; the script checks its outputs
  it("tour.ipynb runs in the kernel (nbconvert --execute)", function()
    local cmd = ("/usr/bin/python3 tests/jupyter/check_tour.py %s 2>&1"):format(TIDE:match("^(.*)/tide$"))
    local p = io.popen(cmd)
    local out = p:read("a")
    local ok = p:close()
    assert(ok and out:find("tour.ipynb: outputs checked", 1, true), cmd .. ":\n" .. out:sub(-3000))
  end)
end)
