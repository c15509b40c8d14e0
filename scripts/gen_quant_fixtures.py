#!/usr/bin/python3
"""scripts/gen_quant_fixtures.py: PyTorch 1.13's quantization results for tests/lua/quant_spec.lua.

Writes tests/fixtures/quant.safetensors (tensors; scalars as 0-d tensors):
  pt_*   quantize_per_tensor (quint8 and qint8) of values with halves and out-of-range ones, and
         their dequantized values
  pc_*   quantize_per_channel (qint8, axis 0) and dequantized
  lin_*  a quantized Linear (torch.ao.nn.quantized, weights per channel symmetric qint8 from
         PerChannelMinMaxObserver) on a quint8 input, requantized to the output scale
  conv_* the same for a quantized Conv2d (stride 1, padding 1)
  obs_*  MinMaxObserver and HistogramObserver (quint8, per tensor affine, no reduce_range) scales
         and zero points after one batch, MinMaxObserver after two
The quantized engine is onednn when this build has it, else qnnpack (no fbgemm in Debian's
build); the engine's name is stored in the metadata.

Run with Debian's python3: /usr/bin/python3 scripts/gen_quant_fixtures.py (or `make fixtures`).
"""
import os
import sys

import torch
import torch.ao.nn.quantized as nnq
from torch.ao.quantization import HistogramObserver, MinMaxObserver, PerChannelMinMaxObserver

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_io_fixtures import OUT, arr, st_bytes, write  # noqa: E402


def t(x):
    return arr(x.detach().contiguous().numpy())


def scalar(v, dtype=torch.float32):
    return t(torch.tensor(v, dtype=dtype))


def weight_qparams(w):
    ob = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    ob(w)
    s, z = ob.calculate_qparams()
    return s.float(), z


def main():
    engines = torch.backends.quantized.supported_engines
    torch.backends.quantized.engine = "onednn" if "onednn" in engines else "qnnpack"
    torch.manual_seed(0)
    out = {}

    x = torch.cat([torch.arange(-30, 31, dtype=torch.float32) * 0.05,  # k/2 steps: halves
                   torch.tensor([100.0, -100.0, 0.126, 7.77])])
    for name, (s, z, dt) in {"u8": (0.1, 10, torch.quint8), "i8": (0.05, -3, torch.qint8)}.items():
        q = torch.quantize_per_tensor(x, s, z, dt)
        out["pt_%s_q" % name] = t(q.int_repr())
        out["pt_%s_dq" % name] = t(q.dequantize())
    out["pt_x"] = t(x)

    xc = torch.randn(4, 6) * 2
    sc = torch.tensor([0.1, 0.2, 0.05, 0.3], dtype=torch.float64)
    zc = torch.tensor([0, 1, -2, 3])
    qc = torch.quantize_per_channel(xc, sc, zc, 0, torch.qint8)
    out.update(pc_x=t(xc), pc_scales=t(sc.float()), pc_zps=t(zc), pc_q=t(qc.int_repr()),
               pc_dq=t(qc.dequantize()))

    # Linear: x (5 x 20) quint8, w (7 x 20) per channel, y requantized
    xl, wl, bl = torch.randn(5, 20), torch.randn(7, 20) * 0.3, torch.randn(7) * 0.1
    ws, wz = weight_qparams(wl)
    lin = nnq.Linear(20, 7)
    lin.set_weight_bias(torch.quantize_per_channel(wl, ws.double(), wz, 0, torch.qint8), bl)
    lin.scale, lin.zero_point = 0.05, 120
    qx = torch.quantize_per_tensor(xl, 0.03, 128, torch.quint8)
    y = lin(qx)
    out.update(lin_x=t(xl), lin_w=t(wl), lin_b=t(bl), lin_wscale=t(ws),
               lin_wq=t(torch.quantize_per_channel(wl, ws.double(), wz, 0, torch.qint8).int_repr()),
               lin_y=t(y.int_repr()))

    # Conv2d: x (2 x 3 x 6 x 5), w (4 x 3 x 3 x 3), stride 1, padding 1
    xv, wv, bv = torch.randn(2, 3, 6, 5), torch.randn(4, 3, 3, 3) * 0.2, torch.randn(4) * 0.1
    cs, cz = weight_qparams(wv)
    conv = nnq.Conv2d(3, 4, 3, padding=1)
    conv.set_weight_bias(torch.quantize_per_channel(wv, cs.double(), cz, 0, torch.qint8), bv)
    conv.scale, conv.zero_point = 0.04, 100
    yv = conv(torch.quantize_per_tensor(xv, 0.025, 130, torch.quint8))
    out.update(conv_x=t(xv), conv_w=t(wv), conv_b=t(bv), conv_wscale=t(cs), conv_y=t(yv.int_repr()))

    # observers: one skewed batch with outliers; min-max again after a second batch
    a = torch.cat([torch.randn(3000) * 0.5 + 0.3, torch.tensor([6.0, -4.0])])
    b = torch.randn(500) * 2
    mm, hist = MinMaxObserver(dtype=torch.quint8), HistogramObserver(dtype=torch.quint8)
    mm(a)
    hist(a)
    for name, ob in {"minmax": mm, "hist": hist}.items():
        s, z = ob.calculate_qparams()
        out["obs_%s_scale" % name], out["obs_%s_zp" % name] = t(s.float()), t(z)
    mm(b)
    s, z = mm.calculate_qparams()
    out.update(obs_a=t(a), obs_b=t(b), obs_minmax2_scale=t(s.float()), obs_minmax2_zp=t(z))

    write("quant.safetensors", st_bytes(out, {"engine": torch.backends.quantized.engine}))
    print("wrote %s/quant.safetensors (engine %s)" % (OUT, torch.backends.quantized.engine))


if __name__ == "__main__":
    main()
