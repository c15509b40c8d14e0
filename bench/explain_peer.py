"""bench/explain_peer.py: the PyTorch side of explain_ig_cnn, written the straightforward way:
integrated gradients with 50 steps (riemann_trapezoid: a_k = (k-1)/49, w_k = 1/50 halved at both
ends, zero baseline) on 16 Fashion-MNIST test images through the seed CNN in eval mode, all 800
path images in one forward and one torch.autograd.grad, plus f(x) and f(baseline) for the delta.
Unit: explained images per second (median of 7 samples), as bench/explain.lua.
Run by scripts/bench.py: BENCH_THREADS=2 /usr/bin/python3 bench/explain_peer.py"""
import os
import sys

sys.path.insert(0, os.environ.get("BENCH_SHARED", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench")))
import common  # noqa: E402  (the shared peer helpers: threads, IDX reader, RESULT lines)
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

STEPS, N = 50, 16


def ig(model, x, target, alphas, weights):
    base = torch.zeros_like(x)
    path = (base + alphas.view(-1, 1, 1, 1, 1) * (x - base)).reshape(STEPS * N, 1, 28, 28)
    path.requires_grad_(True)
    score = model(path).gather(1, target.repeat(STEPS).view(-1, 1)).sum()
    (g,) = torch.autograd.grad(score, path)
    attr = (g.view(STEPS, N, 1, 28, 28) * weights.view(-1, 1, 1, 1, 1)).sum(0) * (x - base)
    with torch.no_grad():
        ends = model(torch.cat([x, base])).gather(1, target.repeat(2).view(-1, 1)).view(-1)
    return attr, attr.view(N, -1).sum(1) - (ends[:N] - ends[N:])


def main():
    common.set_threads(torch)
    torch.manual_seed(0)
    vx = common.read_idx(os.path.join(common.FMNIST_DIR, "t10k-images-idx3-ubyte.gz"))[:N]
    vy = common.read_idx(os.path.join(common.FMNIST_DIR, "t10k-labels-idx1-ubyte.gz"))[:N]
    x = torch.tensor(vx.astype("float32") / 255.0).view(N, 1, 28, 28)
    target = torch.tensor(vy.astype("int64"))
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10)).eval()
    alphas = torch.linspace(0, 1, STEPS)
    weights = torch.full((STEPS,), 1.0 / STEPS)
    weights[0] /= 2
    weights[-1] /= 2
    ig(model, x, target, alphas, weights)              # warm-up
    t0 = common.now()
    ig(model, x, target, alphas, weights)
    calls = max(1, int(0.5 / max(common.now() - t0, 1e-9)))
    rates = []
    for _ in range(7):
        t0 = common.now()
        for _ in range(calls):
            _, delta = ig(model, x, target, alphas, weights)
        rates.append(calls * N / (common.now() - t0))
    med, lo, hi = common.summarize(rates)
    common.result("explain_ig_cnn", med, "images/s", median=f"{med:.1f}", min=f"{lo:.1f}",
                  best=f"{hi:.1f}", calls_per_sample=calls,
                  max_delta=f"{delta.abs().max().item():.2e}")


if __name__ == "__main__":
    main()
