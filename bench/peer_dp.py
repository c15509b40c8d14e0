"""bench/peer_dp.py - the PyTorch peer of train_mlp_dp and train_cnn_dp: DP-SGD steps on
peer_train.py's models, batches and optimizers (imported from the shared peer directory given as
BENCH_SHARED), with per-sample gradients computed the fastest way PyTorch 1.13 offers: functorch's
vmap(grad_and_value) over the batch. A step: fetch a batch of 64, per-sample gradients and losses,
per-sample norms, clip to C = 1, sum, add N(0, (sigma C)^2) noise (sigma = 1), divide by the batch
size, optimizer step, read the mean loss as a number.

Usage: /usr/bin/python3 bench/peer_dp.py mlp|cnn [--steps N] [--warmup N] [--seed S]
Prints one RESULT line named train_<workload>_dp.
"""
import argparse
import os
import sys

sys.path.insert(0, os.environ.get("BENCH_SHARED", os.path.join(os.path.dirname(__file__), "..",
                                                               "..", "shared", "bench")))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from functorch import grad_and_value, make_functional, vmap  # noqa: E402

from common import load_fashion_mnist, now, peak_rss_mib, result, set_threads  # noqa: E402
from peer_train import BATCH, ImageBatches, make  # noqa: E402

STEPS = {"mlp": 1000, "cnn": 150}
WARMUP = {"mlp": 30, "cnn": 10}
SIGMA, CLIP = 1.0, 1.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload", choices=["mlp", "cnn"])
    ap.add_argument("--steps", type=int)
    ap.add_argument("--warmup", type=int)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    wl = a.workload
    steps, warmup = a.steps or STEPS[wl], a.warmup or WARMUP[wl]
    set_threads(torch)
    torch.manual_seed(a.seed)
    tx, ty, _, _ = load_fashion_mnist()
    batches = ImageBatches(torch.from_numpy(tx), torch.from_numpy(ty), BATCH[wl], a.seed, False)
    model, opt = make(wl)
    model.train()
    fmodel, _ = make_functional(model)
    params = list(model.parameters())

    def loss1(ps, x, y):
        return F.cross_entropy(fmodel(ps, x.unsqueeze(0)), y.unsqueeze(0))

    per_sample = vmap(grad_and_value(loss1), in_dims=(None, 0, 0))

    def step():
        xb, yb = batches.next()
        grads, losses = per_sample(tuple(p.detach() for p in params), xb, yb)
        b = xb.shape[0]
        norms = torch.stack([g.reshape(b, -1).norm(dim=1) for g in grads], dim=1).norm(dim=1)
        c = (CLIP / (norms + 1e-6)).clamp(max=1.0)
        for p, g in zip(params, grads):
            s = torch.einsum("i,i...->...", c, g)
            p.grad = (s + torch.randn_like(p) * (SIGMA * CLIP)) / b
        opt.step()
        return losses.mean().item()

    for _ in range(warmup):
        step()
    t0, tail = now(), []
    for i in range(steps):
        loss = step()
        if i >= steps - 20:
            tail.append(loss)
    dt = now() - t0
    result(f"train_{wl}_dp", steps * BATCH[wl] / dt, "samples/s", steps=steps, warmup=warmup,
           batch=BATCH[wl], ms_per_step=f"{1000 * dt / steps:.3f}",
           loss_last20=f"{sum(tail) / len(tail):.4f}", peak_rss_mib=f"{peak_rss_mib():.0f}")


if __name__ == "__main__":
    main()
