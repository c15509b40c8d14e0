#!/usr/bin/python3
"""scripts/gen_explain_fixtures.py: PyTorch reference attributions for tests/lua/explain_spec.lua.

One small CNN (float64, seeded weights) on a batch of 3 single-channel 8x8 images with targets
(1, 3, 5) in tide's 1-based numbering:
    0 Conv2d(1, 4, 3, padding 1) -> 1 ReLU -> 2 MaxPool2d(2) -> 3 Conv2d(4, 6, 3, padding 1)
    -> 4 ReLU -> 5 Flatten -> 6 Linear(96, 5)
Writes tests/fixtures/explain_cnn.safetensors: the state dict (PyTorch names, 0-based), x,
target (1-based), and with the formulas written out here (Captum is not a dependency, and its
published formulas are what is reproduced, not its code):
  grad          d f_t(x) / dx                                 (saliency)
  grad_x_input  grad * x
  ig_trap       (x - x') * sum_k w_k grad(x' + a_k (x - x')), 20 steps, x' = 0:
                a_k = (k-1)/(n-1), w_k = 1/n with w_1 and w_n halved (Captum's riemann_trapezoid)
  ig_trap_base  the same with the baseline x' = 0.25 everywhere
  ig_gl         16 steps, a_k = (1 + z_k)/2, w_k = v_k/2 for numpy's Gauss-Legendre nodes z
                and weights v (Captum's gausslegendre)
  ig_*_delta    sum(attributions) - (f(x) - f(x')) per example
  occ_2s2       occlusion, 2x2 windows, stride 2, baseline 0: each element gets the mean over
                the windows covering it of f(x) - f(x with the window zeroed)
  occ_3s1       the same with 3x3 windows, stride 1
  cam           Grad-CAM on layer 4 (ReLU after the second conv, 6 x 4 x 4): relu(sum_k
                mean_hw(dS/dA_k) A_k), upsampled to 8x8 by F.interpolate(bilinear,
                align_corners=False)

Run with Debian's python3: /usr/bin/python3 scripts/gen_explain_fixtures.py (or `make fixtures`).
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_io_fixtures import arr, st_bytes, write  # noqa: E402

torch.manual_seed(7)
torch.set_default_dtype(torch.float64)

model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(96, 5))
model.eval()
x = torch.rand(3, 1, 8, 8)
target = torch.tensor([0, 2, 4])  # 0-based here; written 1-based


def score(inp, t):
    return model(inp).gather(1, t.view(-1, 1)).view(-1)


def grad(inp, t):
    inp = inp.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(score(inp, t).sum(), inp)
    return g


def ig(alphas, weights, base):
    n = len(alphas)
    total = torch.zeros_like(x)
    for a, w in zip(alphas, weights):  # one step at a time: independent of tide's batching
        total += w * grad(base + a * (x - base), target)
    attr = total * (x - base)
    with torch.no_grad():
        delta = attr.view(3, -1).sum(1) - (score(x, target) - score(base, target))
    assert n == len(weights)
    return attr, delta


def trapezoid(n):
    alphas = [k / (n - 1) for k in range(n)]
    weights = [1 / n] * n
    weights[0] /= 2
    weights[-1] /= 2
    return alphas, weights


def gauss_legendre(n):
    z, v = np.polynomial.legendre.leggauss(n)
    return [(1 + zi) / 2 for zi in z], [vi / 2 for vi in v]


def occlusion(win, stride):
    total = torch.zeros_like(x)
    count = torch.zeros_like(x)
    with torch.no_grad():
        fx = score(x, target)
        for i in range(0, 8 - win + 1, stride):
            for j in range(0, 8 - win + 1, stride):
                m = torch.zeros(1, 1, 8, 8)
                m[..., i:i + win, j:j + win] = 1
                drop = fx - score(x * (1 - m), target)
                total += drop.view(3, 1, 1, 1) * m
                count += m
    return total / count


def gradcam():
    acts = {}
    h = model[4].register_forward_hook(lambda m, i, o: acts.__setitem__("a", o))
    s = score(x, target).sum()
    h.remove()
    a = acts["a"]
    (g,) = torch.autograd.grad(s, a)
    cam = F.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(1, keepdim=True))
    return F.interpolate(cam, size=(8, 8), mode="bilinear", align_corners=False)


def main():
    out = {"x": x, "target": target + 1}
    out["grad"] = grad(x, target)
    out["grad_x_input"] = out["grad"] * x
    zero = torch.zeros_like(x)
    out["ig_trap"], out["ig_trap_delta"] = ig(*trapezoid(20), zero)
    out["ig_trap_base"], out["ig_trap_base_delta"] = ig(*trapezoid(20), torch.full_like(x, 0.25))
    out["ig_gl"], out["ig_gl_delta"] = ig(*gauss_legendre(16), zero)
    out["occ_2s2"] = occlusion(2, 2)
    out["occ_3s1"] = occlusion(3, 1)
    out["cam"] = gradcam()
    tensors = {k: arr(v.detach().numpy()) for k, v in out.items()}
    for k, v in model.state_dict().items():
        tensors["model." + k] = arr(v.numpy())
    write("explain_cnn.safetensors", st_bytes(tensors))


if __name__ == "__main__":
    main()
