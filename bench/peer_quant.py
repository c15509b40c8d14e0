"""bench/peer_quant.py: the PyTorch 1.13 peer of bench/infer.lua's int8 inference workloads.

The same MLP (784-512-256-10) and CNN (BENCHMARKS.md's train_cnn model), random weights:
the MLP through torch.ao.quantization.quantize_dynamic (qint8 Linear), the CNN statically
quantized (QuantStub/DeQuantStub, conv+relu and linear+relu fused, the engine's default qconfig,
calibrated on 64 random images). Each workload runs on both engines Debian's build has (qnnpack
and onednn; no fbgemm) and the better one is reported, as BENCHMARKS.md asks for the peer's best.
Same sampling as bench/common.lua: a warm-up, a calibration, 7 samples of about 0.2 s, median.

Usage: /usr/bin/python3 bench/peer_quant.py CASE ...  (infer_{mlp,cnn}_int8_b{1,256})
Prints `RESULT name=CASE value=samples/s unit=samples/s engine=...` lines.
"""
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.ao.quantization import (DeQuantStub, QuantStub, convert, fuse_modules,
                                   get_default_qconfig, prepare, quantize_dynamic)

SAMPLES = 7


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 512), nn.Linear(512, 256), nn.Linear(256, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant, self.dequant = QuantStub(), DeQuantStub()
        self.conv1, self.relu1 = nn.Conv2d(1, 32, 3, padding=1), nn.ReLU()
        self.conv2, self.relu2 = nn.Conv2d(32, 64, 3, padding=1), nn.ReLU()
        self.fc1, self.relu3, self.fc2 = nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10)

    def forward(self, x):
        x = self.quant(x)
        x = F.max_pool2d(self.relu1(self.conv1(x)), 2)
        x = F.max_pool2d(self.relu2(self.conv2(x)), 2)
        x = self.fc2(self.relu3(self.fc1(x.flatten(1))))
        return self.dequant(x)


def build(kind, engine):
    torch.backends.quantized.engine = engine
    torch.manual_seed(0)
    if kind == "mlp":
        return quantize_dynamic(MLP().eval(), {nn.Linear}, dtype=torch.qint8)
    m = CNN().eval()
    m = fuse_modules(m, [["conv1", "relu1"], ["conv2", "relu2"], ["fc1", "relu3"]])
    m.qconfig = get_default_qconfig(engine)
    prepare(m, inplace=True)
    with torch.no_grad():
        m(torch.rand(64, 1, 28, 28))
    return convert(m)


def rate(run, seconds, first):
    run(first)
    t0 = time.perf_counter()
    run(first)
    dt = time.perf_counter() - t0
    iters = max(int(first / max(dt, 1e-9) * seconds), min(first, 1000))
    rates = []
    for _ in range(SAMPLES):
        t0 = time.perf_counter()
        run(iters)
        rates.append(iters / (time.perf_counter() - t0))
    return statistics.median(rates), min(rates), max(rates)


def case(name):
    kind, batch = name.split("_")[1], int(name.rsplit("_b", 1)[1])
    x = torch.rand(batch, 1, 28, 28)
    best = None
    for engine in torch.backends.quantized.supported_engines:
        if engine not in ("qnnpack", "onednn"):
            continue
        m = build(kind, engine)

        def run(k):
            with torch.no_grad():
                for _ in range(k):
                    m(x)
        med, lo, hi = rate(run, 0.2, 200 if batch == 1 else 4)
        if best is None or med > best[0]:
            best = (med, lo, hi, engine)
    med, lo, hi, engine = best
    print(f"RESULT name={name} value={med * batch:.6g} unit=samples/s engine={engine} "
          f"median={med * batch:.1f} min={lo * batch:.1f} best={hi * batch:.1f} "
          f"threads={torch.get_num_threads()}", flush=True)


def main():
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    for name in sys.argv[1:]:
        case(name)


if __name__ == "__main__":
    main()
