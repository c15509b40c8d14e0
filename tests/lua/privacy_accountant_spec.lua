-- tests/lua/privacy_accountant_spec.lua: the RDP accountant against values computed another way
-- (scripts/gen_privacy_fixtures.py: numerical integration of A_alpha in mpmath) for published
-- configurations, and against the published figures themselves.
local privacy = require "tide.privacy"
local fx = dofile("tests/fixtures/privacy.lua")

describe("tide.privacy.epsilon", function()
  it("matches the independent computation for Abadi et al.'s, the MNIST tutorials' and others", function()
    for name, c in pairs(fx.eps) do
      local e, order = privacy.accountant.epsilon(c.sigma, c.q, c.steps, c.delta)
      assert.near(c.epsilon, e, 1e-6 * c.epsilon, name)  -- tide's erfc fit: 1.2e-7 relative
      assert.equal(c.order, order, name)
      assert.near(c.epsilon, privacy.epsilon{noise_multiplier = c.sigma, sample_rate = c.q,
                                             steps = c.steps, delta = c.delta}, 1e-6 * c.epsilon)
    end
  end)

  it("is tighter than Abadi et al.'s moments accountant (1.26 for q 0.01, sigma 4, 10^4 steps)", function()
    local e = privacy.epsilon{noise_multiplier = 4, sample_rate = 0.01, steps = 10000, delta = 1e-5}
    assert.is_true(e < 1.26 and e > 0.9)
  end)

  it("gives TF-Privacy's published RDP sequence (q 0.01, sigma 2.5, 50 steps)", function()
    local published = {0.00065, 0.001085, 0.00218075, 0.023846167, 167.416307}
    for i, a in ipairs(fx.seq.orders) do
      local r = 50 * privacy.accountant.rdp_step(0.01, 2.5, a)
      assert.near(fx.seq.rdp[i], r, 1e-9 * fx.seq.rdp[i])
      assert.near(published[i], r, 1e-5)
    end
  end)

  it("has the closed forms at the edges: q = 1 is the Gaussian mechanism, q = 0 costs nothing", function()
    assert.near(3 / (2 * 4), privacy.accountant.rdp_step(1, 2, 3), 1e-15)
    assert.equal(0, privacy.epsilon{noise_multiplier = 1, sample_rate = 0, steps = 10, delta = 1e-5})
    assert.equal(0, privacy.epsilon{noise_multiplier = 1, sample_rate = 0.5, steps = 0, delta = 1e-5})
  end)
end)

describe("tide.privacy.get_noise_multiplier", function()
  it("finds the smallest sigma within 0.01 of the target epsilon", function()
    local q = 64 / 60000
    for _, target in ipairs({1, 3, 8}) do
      local s = privacy.get_noise_multiplier(target, 1e-5, q, 10)
      local steps = math.floor(10 / q + 0.5)
      local e = privacy.epsilon{noise_multiplier = s, sample_rate = q, steps = steps, delta = 1e-5}
      assert.is_true(e <= target and e > target - 0.01, "target " .. target)
    end
  end)
end)
