#!/usr/bin/python3
"""scripts/gen_prune_fixtures.py: torch.nn.utils.prune's masks for tests/lua/prune_spec.lua, so
tide.prune.magnitude and tide.prune.structured are checked against PyTorch 1.13 on the same
weights, including weights with many equal magnitudes (ties, where torch.topk's choice decides).

Writes tests/fixtures/prune.safetensors (float32 tensors; names below; PyTorch dims are 0-based,
tide's 1-based):
  l1_w 6x5            l1_unstructured: amount 0.3 -> l1_m1, then 0.5 on top -> l1_m2;
                      amount 7 (a count) on the fresh weight -> l1_m3
  ties_w 8x8          integers in [-2, 2]: l1_unstructured 0.4 -> ties_m (nth_element path)
  big_w 1x2000        integers in [0, 3]: amount 20 -> big_m1 (partial_sort path, 20 * 64 <= 2000),
                      amount 0.5 -> big_m2 (introselect)
  g1_w 6x8, g2_w 4x2x3x3, g3_w 3x16 (g3 rounded to one decimal: ties across layers)
                      global_unstructured L1 0.6 -> g1_m1 g2_m1 g3_m1, then 0.5 on top -> *_m2
  s_w 8x3x3x3         ln_structured n=1 dim=0 0.5 -> s_m1; n=2 dim=0 0.3 (2.4 -> 2) -> s_m2;
                      l1_unstructured 0.3 then ln_structured n=1 dim=0 0.5 -> s_m3
  st_w 6x4            rows of equal L1 norm (permutations of 1 2 3 4): ln_structured n=1 dim=0 0.5
                      -> st_m (ties between channels)
  sd_w 5x7            ln_structured n=2 dim=1 amount 3 (input columns) -> sd_m
  seq_x 3x5, seq_y    a Sequential(Linear(5, 6), ReLU, Linear(6, 2)) with l1_w as its first weight
                      after l1_unstructured 0.3 on both Linear layers: its output on seq_x, and its
                      PyTorch state-dict keys in the metadata "keys"
Run with Debian's python3: /usr/bin/python3 scripts/gen_prune_fixtures.py (or `make fixtures`).
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_io_fixtures import arr, st_bytes, write  # noqa: E402


def holder(w):
    """A module whose parameter `weight` is a copy of w."""
    m = nn.Module()
    m.weight = nn.Parameter(w.clone())
    return m


def main():
    torch.manual_seed(11)
    out = {}

    l1_w = torch.randn(6, 5)
    m = holder(l1_w)
    prune.l1_unstructured(m, "weight", amount=0.3)
    out["l1_m1"] = m.weight_mask.clone()
    prune.l1_unstructured(m, "weight", amount=0.5)
    out["l1_m2"] = m.weight_mask.clone()
    m = holder(l1_w)
    prune.l1_unstructured(m, "weight", amount=7)
    out["l1_m3"] = m.weight_mask.clone()
    out["l1_w"] = l1_w

    ties_w = torch.randint(-2, 3, (8, 8)).float()
    m = holder(ties_w)
    prune.l1_unstructured(m, "weight", amount=0.4)
    out["ties_w"], out["ties_m"] = ties_w, m.weight_mask.clone()

    big_w = torch.randint(0, 4, (1, 2000)).float()
    for name, amount in (("big_m1", 20), ("big_m2", 0.5)):
        m = holder(big_w)
        prune.l1_unstructured(m, "weight", amount=amount)
        out[name] = m.weight_mask.clone()
    out["big_w"] = big_w

    g = [torch.randn(6, 8), torch.randn(4, 2, 3, 3), (torch.randn(3, 16) * 10).round() / 10]
    mods = [holder(w) for w in g]
    params = [(mm, "weight") for mm in mods]
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.6)
    for i, mm in enumerate(mods):
        out["g%d_m1" % (i + 1)] = mm.weight_mask.clone()
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.5)
    for i, mm in enumerate(mods):
        out["g%d_w" % (i + 1)] = g[i]
        out["g%d_m2" % (i + 1)] = mm.weight_mask.clone()

    s_w = torch.randn(8, 3, 3, 3)
    for name, n, amount in (("s_m1", 1, 0.5), ("s_m2", 2, 0.3)):
        m = holder(s_w)
        prune.ln_structured(m, "weight", amount=amount, n=n, dim=0)
        out[name] = m.weight_mask.clone()
    m = holder(s_w)
    prune.l1_unstructured(m, "weight", amount=0.3)
    prune.ln_structured(m, "weight", amount=0.5, n=1, dim=0)
    out["s_m3"], out["s_w"] = m.weight_mask.clone(), s_w

    st_w = torch.stack([torch.randperm(4).float() + 1 for _ in range(6)])
    m = holder(st_w)
    prune.ln_structured(m, "weight", amount=0.5, n=1, dim=0)
    out["st_w"], out["st_m"] = st_w, m.weight_mask.clone()

    sd_w = torch.randn(5, 7)
    m = holder(sd_w)
    prune.ln_structured(m, "weight", amount=3, n=2, dim=1)
    out["sd_w"], out["sd_m"] = sd_w, m.weight_mask.clone()

    seq = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 2))
    with torch.no_grad():
        seq[0].weight.copy_(l1_w)
    for i in (0, 2):
        prune.l1_unstructured(seq[i], "weight", amount=0.3)
    seq_x = torch.randn(3, 5)
    out["seq_x"], out["seq_y"] = seq_x, seq(seq_x).detach()
    for k, v in seq.state_dict().items():
        out["seq." + k] = v
    keys = ",".join(seq.state_dict().keys())

    write("prune.safetensors", st_bytes({k: arr(v.detach().numpy()) for k, v in out.items()},
                                        {"keys": keys}))


if __name__ == "__main__":
    main()
