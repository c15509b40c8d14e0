#!/usr/bin/python3
"""scripts/gen_privacy_fixtures.py: epsilon of DP-SGD (the sampled Gaussian mechanism) for
tests/lua/privacy_accountant_spec.lua, computed independently of tide's series: A_alpha is
integrated numerically in 25-digit arithmetic (mpmath) from its definition,

    A_alpha = integral of mu0(z) * ((1 - q) + q * mu1(z) / mu0(z))^alpha dz,
    mu0 = N(0, sigma^2), mu1 = N(1, sigma^2),

(exactly, as a finite binomial sum, for integer alpha), RDP(alpha) = steps * log(A) / (alpha - 1),
and epsilon = min over Opacus's orders of RDP + log((alpha-1)/alpha) - (log delta + log alpha)/(alpha-1)
(Balle et al. 2020, Thm. 21). Cases are published configurations:
  abadi   Abadi et al. 2016, sec. 3.1: q = 0.01, sigma = 4, 10000 steps, delta = 1e-5; their
          moments accountant gives epsilon ~ 1.26 (the RDP bound is tighter)
  mnist   the MNIST recipe of the TF-Privacy and Opacus tutorials: 60000 examples, batch 256,
          sigma 1.1, 60 epochs, delta 1e-5
  small   sigma 0.8, q = 0.05, 1000 steps (fractional orders win)
  seq     RDP alone for q = 0.01, sigma = 2.5, 50 steps at orders 1.5, 2.5, 5, 50, 100
          (TF-Privacy's rdp_accountant_test: 0.00065, 0.001085, 0.00218075, 0.023846167, 167.416307)
  fmnist  the Fashion-MNIST runs of examples/private.lua: sigma 1.0, batch 64 of 60000 (q = 1/938
          as make_private takes it), 10 epochs, delta 1e-5

Run with Debian's python3: /usr/bin/python3 scripts/gen_privacy_fixtures.py (or `make fixtures`).
"""
import os
import sys

import mpmath as mp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lualit  # noqa: E402

mp.mp.dps = 25
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                   "privacy.lua")
ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))


def log_a(q, sigma, alpha):
    q, sigma = mp.mpf(q), mp.mpf(sigma)
    if float(alpha).is_integer():
        a = int(alpha)
        return mp.log(mp.fsum(mp.binomial(a, k) * (1 - q) ** (a - k) * q ** k
                              * mp.exp((k * k - k) / (2 * sigma ** 2)) for k in range(a + 1)))
    alpha = mp.mpf(alpha)

    def f(z):
        ratio = mp.exp((2 * z - 1) / (2 * sigma ** 2))  # mu1(z) / mu0(z)
        return mp.npdf(z, 0, sigma) * ((1 - q) + q * ratio) ** alpha

    z0 = sigma ** 2 * mp.log(1 / q - 1) + mp.mpf(1) / 2
    pts = sorted({mp.mpf(0), mp.mpf(1), z0, alpha / 2, alpha})
    return mp.log(mp.quad(f, [-mp.inf] + pts + [mp.inf]))


def rdp(q, sigma, steps, alpha):
    return steps * log_a(q, sigma, alpha) / (alpha - 1)


def epsilon(sigma, q, steps, delta):
    best = None
    for a in ORDERS:
        e = rdp(q, sigma, steps, a) + mp.log((a - 1.0) / a) - (mp.log(delta) + mp.log(a)) / (a - 1)
        if best is None or e < best[0]:
            best = (e, a)
    return float(best[0]), best[1]


def main():
    cases = [("abadi", 4.0, 0.01, 10000, 1e-5), ("mnist", 1.1, 256 / 60000, int(60 * 60000 / 256), 1e-5),
             ("small", 0.8, 0.05, 1000, 1e-5), ("fmnist", 1.0, 1 / 938, 9380, 1e-5)]
    eps = {}
    for name, sigma, q, steps, delta in cases:
        e, a = epsilon(sigma, q, steps, delta)
        eps[name] = {"sigma": sigma, "q": q, "steps": steps, "delta": delta, "epsilon": e,
                     "order": a}
    orders = [1.5, 2.5, 5, 50, 100]
    seq = {"q": 0.01, "sigma": 2.5, "steps": 50, "orders": orders,
           "rdp": [float(rdp(0.01, 2.5, 50, a)) for a in orders]}
    lines = ["-- tests/fixtures/privacy.lua: written by scripts/gen_privacy_fixtures.py (mpmath %s); "
             "do not edit" % mp.__version__,
             "return {eps = %s,\nseq = %s}" % (lualit.value(eps), lualit.value(seq))]
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
