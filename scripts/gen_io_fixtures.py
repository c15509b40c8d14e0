#!/usr/bin/python3
"""scripts/gen_io_fixtures.py: reference files for tests/lua/io_spec.lua (tide.load, load_npy,
Module:load against PyTorch and NumPy, and tide's writers byte for byte).

Debian has no python3-safetensors, so the format is written here from its spec
(shared/FORMATS.md): 8-byte little-endian header length, compact JSON header with __metadata__
first, tensors sorted by descending dtype order (the reference's Dtype enum) then name, offsets
back to back, header padded with spaces to a multiple of 8.

Writes into tests/fixtures/:
  io_mixed.safetensors    every dtype tide reads (F32 F64 I64 U8 BOOL F16 BF16 I8 I16 I32 U16
                          U32 U64), a scalar, an empty tensor, metadata {"format": "pt", ...}
  io_layout.safetensors   what tide's writer must reproduce byte for byte (tide dtypes only)
  io_tide_save.safetensors  the bytes tide.save(path, {w=, b=, lr=0.5}) must produce
  io_<name>.npy           numpy.save of f4 f8 i8 u1 i1 b1, 0-d, fortran order, <i4, <f2, >f8, empty
  io_cnn_state.safetensors  a small CNN's PyTorch state dict (0-based names)
  io_cnn_io.safetensors   an input and the CNN's eval-mode output

Run with Debian's python3: /usr/bin/python3 scripts/gen_io_fixtures.py (or `make fixtures`).
"""
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures")

# the reference's Dtype enum order (the writer sorts by it, descending), and numpy/torch types
ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32",
         "F32", "F64", "I64", "U64"]
NP = {np.dtype("bool"): "BOOL", np.dtype("uint8"): "U8", np.dtype("int8"): "I8",
      np.dtype("int16"): "I16", np.dtype("uint16"): "U16", np.dtype("float16"): "F16",
      np.dtype("int32"): "I32", np.dtype("uint32"): "U32", np.dtype("float32"): "F32",
      np.dtype("float64"): "F64", np.dtype("int64"): "I64", np.dtype("uint64"): "U64"}


def st_bytes(tensors, metadata=None):
    """tensors: name -> (dtype name, shape, raw little-endian bytes)."""
    items = sorted(tensors.items(), key=lambda kv: (-ORDER.index(kv[1][0]), kv[0]))
    header, offset, data = {}, 0, []
    if metadata:
        header["__metadata__"] = dict(sorted(metadata.items()))
    for name, (dt, shape, raw) in items:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data.append(raw)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(data)


def st_read(buf):
    """The reader, used here to check the writer round-trips."""
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    out = {k: (v["dtype"], v["shape"], buf[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
           for k, v in header.items()}
    return out, meta


def arr(a):
    a = np.array(a, order="C")  # ascontiguousarray would make a 0-d array 1-d
    return (NP[a.dtype], a.shape, a.astype(a.dtype.newbyteorder("<")).tobytes())


def bf16(values):
    """bfloat16 bytes: the high halves of float32 values (exact for these values)."""
    f = np.asarray(values, dtype="<f4").view("<u4") >> 16
    return ("BF16", (len(values),), f.astype("<u2").tobytes())


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    mixed = {
        "f32": arr(np.arange(6, dtype=np.float32).reshape(2, 3) / 4 - 0.5),
        "f64": arr(np.array([1.0 / 3, -2.5, 1e300])),
        "i64": arr(np.array([[-(2**62), -1], [0, 2**62]], dtype=np.int64)),
        "u8": arr(np.array([0, 1, 200, 255], dtype=np.uint8)),
        "bool": arr(np.array([True, False, True])),
        "f16": arr(np.array([0.5, -2.0, 65504.0, 6e-8], dtype=np.float16)),
        "bf16": bf16([1.0, -3.0, 0.15625]),
        "i8": arr(np.array([-128, 127], dtype=np.int8)),
        "i16": arr(np.array([-32768, 32767], dtype=np.int16)),
        "i32": arr(np.array([-(2**31), 2**31 - 1, 7], dtype=np.int32)),
        "u16": arr(np.array([65535], dtype=np.uint16)),
        "u32": arr(np.array([2**32 - 1], dtype=np.uint32)),
        "u64": arr(np.array([2**63 - 1], dtype=np.uint64)),
        "nested.scalar": arr(np.array(7.25, dtype=np.float32)),
        "empty": arr(np.zeros((0, 3), dtype=np.float32)),
    }
    buf = st_bytes(mixed, {"format": "pt", "note": "caf\u00e9 \"quoted\"\n"})
    back, meta = st_read(buf)
    assert back == {k: (d, list(s), r) for k, (d, s, r) in mixed.items()} and meta["format"] == "pt"
    write("io_mixed.safetensors", buf)

    # tide's writer must give these bytes for the same tensors and metadata
    layout = {
        "b.weight": arr(np.arange(6, dtype=np.float32).reshape(2, 3)),
        "a": arr(np.array([0.5, -1.25], dtype=np.float64)),
        "steps": arr(np.array([3, -4, 5], dtype=np.int64)),
        "mask": arr(np.array([True, False])),
        "pixels": arr(np.array([[1, 2], [3, 250]], dtype=np.uint8)),
        "zero_d": arr(np.array(2.5, dtype=np.float32)),
        "caf\u00e9\t\"q\"": arr(np.array([1.0], dtype=np.float32)),
    }
    write("io_layout.safetensors", st_bytes(layout, {"z": "last", "a": "first \u00e9"}))
    write("io_tide_save.safetensors", st_bytes(
        {"w": arr(np.array([[1, 2], [3, 4]], dtype=np.float32)),
         "b": arr(np.array([5, 6], dtype=np.int64))},
        {"__tide_root__": "table", "__tide_types__": "flr", "lr": "0.5"}))

    npys = {
        "f4": np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5,
        "f8": np.array([0.1, -1e-300, 3.0]),
        "i8": np.array([[-(2**40), 1], [2, 3]], dtype=np.int64),
        "u1": np.array([0, 7, 255], dtype=np.uint8),
        "i1": np.array([-128, -1, 127], dtype=np.int8),
        "b1": np.array([[True, False], [False, True]]),
        "scalar": np.array(4.5),
        "fortran": np.asfortranarray(np.arange(24, dtype=np.float32).reshape(2, 3, 4)),
        "i4": np.array([-5, 2**31 - 1], dtype=np.int32),
        "f2": np.array([1.5, -0.25], dtype=np.float16),
        "big": np.array([1.5, -2.0, 1e10], dtype=">f8"),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }
    for name, a in npys.items():
        np.save(os.path.join(OUT, "io_%s.npy" % name), a)
    assert np.load(os.path.join(OUT, "io_fortran.npy")).flags["F_CONTIGUOUS"]

    # a small CNN: Conv2d, BatchNorm2d (non-trivial running statistics), Linear
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    with torch.no_grad():
        net[1].weight.uniform_(0.5, 1.5)
        net[1].bias.uniform_(-0.5, 0.5)
        net[1].running_mean.uniform_(-0.2, 0.2)
        net[1].running_var.uniform_(0.5, 2.0)
        net[1].num_batches_tracked.fill_(17)
    net.eval()
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        y = net(x)
    sd = {k: arr(v.detach().numpy()) for k, v in net.state_dict().items()}
    write("io_cnn_state.safetensors", st_bytes(sd, {"format": "pt"}))
    write("io_cnn_io.safetensors", st_bytes({"input": arr(x.numpy()), "output": arr(y.numpy())}))
    print("wrote io fixtures to", OUT)


if __name__ == "__main__":
    main()
