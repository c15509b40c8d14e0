"""bench/peer_ddp.py: the PyTorch DistributedDataParallel peer of train_cnn_ddp (doc/bench.md):
peer_train.py's CNN, optimizer and batches (imported from BENCH_SHARED), 2 processes x 1 thread
on the gloo backend over 127.0.0.1, a global batch of 64 (32 per rank, each rank its own
shuffle), 20 warm-up and 300 timed steps. Rank 0 prints one RESULT line, samples/s of the
whole job. Usage: /usr/bin/python3 bench/peer_ddp.py [--ranks 2] [--steps N] [--warmup N]"""
import argparse
import os
import socket
import sys
import time

os.environ["BENCH_THREADS"] = "1"          # before common.py pins OpenMP and OpenBLAS
sys.path.insert(0, os.environ.get("BENCH_SHARED", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "shared",
    "bench")))
from common import load_fashion_mnist, now, result, set_threads  # noqa: E402
import peer_train  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def worker(rank, a, port):
    set_threads(torch)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=a.ranks)
    torch.manual_seed(0)
    model, opt = peer_train.make("cnn")
    model = torch.nn.parallel.DistributedDataParallel(model)   # broadcasts rank 0's weights
    tx, ty, _, _ = load_fashion_mnist()
    batches = peer_train.ImageBatches(torch.from_numpy(tx), torch.from_numpy(ty),
                                      64 // a.ranks, rank, False)

    def step():
        x, y = batches.next()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    dist.barrier()
    t0, cpu0 = now(), time.process_time()
    for _ in range(a.steps):
        last = step()
    dist.barrier()
    dt = now() - t0
    cpu = torch.tensor([time.process_time() - cpu0], dtype=torch.float64)
    dist.all_reduce(cpu)                    # CPU seconds of the timed steps, both ranks
    if rank == 0:
        result("train_cnn_ddp", a.steps * 64 / dt, "samples/s", ranks=a.ranks, threads=1,
               steps=a.steps, batch=64, backend="gloo", loss_last=f"{last:.4f}",
               cpu_s=f"{cpu.item():.2f}")
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--warmup", type=int, default=20)
    a = p.parse_args()
    with socket.socket() as s:              # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(worker, args=(a, port), nprocs=a.ranks)


if __name__ == "__main__":
    main()
