"""scripts/lualit.py - Lua literals for the fixture generators (scripts/gen_*fixtures.py), so that
every tests/fixtures/*.lua is written by one set of rules: numbers read back exactly (shortest
round-trip text, float32 as float32's own; nan and inf as 0/0 and 1/0), strings escaped."""
import math
import numbers

import numpy


def num(v, f32=False, digits=None):
    """A number (or bool). digits: "%.<digits>g" instead of the exact text (a reference rounded on
    purpose); f32: the shortest text that reads back as the same float32."""
    if isinstance(v, (bool, numpy.bool_)):
        return "true" if v else "false"
    if isinstance(v, numbers.Integral):
        return "%d" % v
    v = float(v)
    if math.isnan(v):
        return "0/0"
    if math.isinf(v):
        return "1/0" if v > 0 else "-1/0"
    if digits is not None:
        return "%.*g" % (digits, v)
    s = str(numpy.float32(v)) if f32 else repr(v)
    return s[:-2] if s.endswith(".0") else s


def string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def key(k):
    return "[%s]" % (string(k) if isinstance(k, str) else num(k))


def tensor(t, f32=False, digits=None, dtype=None):
    """A torch tensor as {shape=, [dtype=,] data=} with data flat in row-major order."""
    t = t.detach()
    s = "{shape=%s," % lst(list(t.shape))
    if dtype is not None:
        s += "dtype=%s," % string(dtype)
    return s + "data=%s}" % lst(t.reshape(-1).tolist(), f32, digits)


def value(v, f32=False, digits=None):
    """Numbers, strings, lists/tuples/arrays (a sequence), dicts (a table, keys in order) and torch
    tensors (tensor(); a bool one says so)."""
    if hasattr(v, "detach"):
        return tensor(v, f32, digits, "bool" if str(v.dtype) == "torch.bool" else None)
    if isinstance(v, str):
        return string(v)
    if isinstance(v, dict):
        return "{" + ",".join("%s=%s" % (key(k), value(x, f32, digits)) for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple, numpy.ndarray)):
        return "{" + ",".join(value(x, f32, digits) for x in v) + "}"
    return num(v, f32, digits)


def lst(vals, f32=False, digits=None):
    """A flat sequence of numbers."""
    return "{" + ",".join(num(x, f32, digits) for x in vals) + "}"
