#!/usr/bin/python3
"""scripts/gen_fixtures.py: PyTorch reference values for tests/lua/ops_spec.lua.

The check(...) lines of ops_spec.lua are the list of cases: this script parses them (they are
Lua literals), builds each case's inputs from a seed derived from the line itself, runs the op
in PyTorch with tide's conventions (1-based dims and indices, inclusive arange, ...), and writes
tests/fixtures/ops.lua: { [key] = {inputs, w, f32 = {out, grads}, f64 = {...}} }, where key is
the canonical text of the check arguments (fixtures.lua's ser() computes the same text), w the
weights of the loss sum(out * w) whose gradient with respect to each float input is stored.

Run with Debian's python3-torch: /usr/bin/python3 scripts/gen_fixtures.py (or `make fixtures`).
"""
import math
import os
import re
import sys
import zlib

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lualit  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "tests", "lua", "ops_spec.lua")
OUT = os.path.join(ROOT, "tests", "fixtures", "ops.lua")


# ---- Lua literals: the check lines' arguments ------------------------------------------------
class LTable:
    """A Lua table constructor: positional items and named fields."""

    def __init__(self, arr, named):
        self.arr, self.named = arr, named

    def get(self, k, default=None):
        return self.named.get(k, default)


TOKEN = re.compile(r"""\s*(?:(--[^\n]*)|(0/0|-?1/0|math\.huge)|(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)
                       |("[^"]*"|'[^']*')|([A-Za-z_][A-Za-z_0-9]*)|(\S))""", re.X)


def tokens(src, pos):
    while pos < len(src):
        m = TOKEN.match(src, pos)
        if not m or m.end() == pos:
            return
        pos = m.end()
        com, special, num, s, name, punct = m.groups()
        if com is not None:
            continue
        if special is not None:
            yield ("num", {"0/0": math.nan, "1/0": math.inf, "-1/0": -math.inf,
                           "math.huge": math.inf}[special], pos)
        elif num is not None:
            is_int = re.fullmatch(r"\d+", num) is not None
            yield ("num", int(num) if is_int else float(num), pos)
        elif s is not None:
            yield ("str", s[1:-1], pos)
        elif name is not None:
            yield ("name", name, pos)
        elif punct is not None:
            yield ("punct", punct, pos)


class Parser:
    def __init__(self, src, pos):
        self.toks = tokens(src, pos)
        self.next()

    def next(self):
        self.tok = next(self.toks, ("eof", None, None))

    def expect(self, p):
        if self.tok[:2] != ("punct", p):
            raise SyntaxError("expected %r, got %r" % (p, self.tok[1]))
        self.next()

    def value(self):
        kind, v, _ = self.tok
        if kind == "punct" and v == "-":
            self.next()
            return -self.value()
        if kind == "punct" and v == "{":
            return self.table()
        self.next()
        if kind in ("num", "str"):
            return v
        if kind == "name" and v in ("true", "false", "nil"):
            return {"true": True, "false": False, "nil": None}[v]
        raise SyntaxError("unsupported token %r in a check line" % (v,))

    def table(self):
        self.expect("{")
        arr, named = [], {}
        while self.tok[:2] != ("punct", "}"):
            kind, v, _ = self.tok
            if kind == "name" and v not in ("true", "false", "nil"):
                self.next()
                self.expect("=")
                named[v] = self.value()
            else:
                arr.append(self.value())
            if self.tok[:2] in (("punct", ","), ("punct", ";")):
                self.next()
        self.expect("}")
        return LTable(arr, named)

    def call_args(self):
        self.expect("(")
        args = []
        while self.tok[:2] != ("punct", ")"):
            args.append(self.value())
            if self.tok[:2] == ("punct", ","):
                self.next()
        return args


def check_lines(path):
    src = open(path).read()
    for m in re.finditer(r"^\s*check\(", src, re.M):
        line = src.count("\n", 0, m.start()) + 1
        try:
            args = Parser(src, m.end() - 1).call_args()
        except SyntaxError as e:
            sys.exit("%s:%d: %s" % (path, line, e))
        while len(args) < 3:
            args.append(LTable([], {}))
        yield line, args[0], args[1], args[2]


def num_str(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return "%d" % v
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return "%.17g" % v


def ser(v):
    """The canonical text of a check argument; fixtures.lua's ser() must agree."""
    if v is None:
        return "nil"
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, LTable):
        parts = [ser(x) for x in v.arr]
        named = ["%s=%s" % (k, ser(v.named[k])) for k in sorted(v.named)]
        return "{" + ",".join(parts) + (";" + ",".join(named) if named else "") + "}"
    return num_str(v)


def plain(v):
    """An LTable as a Python list (positional) or dict (named only)."""
    if isinstance(v, LTable):
        if v.named and not v.arr:
            return {k: plain(x) for k, x in v.named.items()}
        return [plain(x) for x in v.arr]
    return v


# ---- inputs -----------------------------------------------------------------------------------
DTYPES = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64,
          "uint8": torch.uint8, "int8": torch.int8, "bool": torch.bool}
NAMES = {v: k for k, v in DTYPES.items()}


def base_shape(spec):
    """The shape of the tensor the test creates (a leaf) before spec.view makes the operand."""
    shape = list(spec.arr)
    view = spec.get("view")
    if view == "T":
        shape[-2], shape[-1] = shape[-1], shape[-2]
    elif view == "narrow":
        shape[0] += 2  # narrow(1, 2, n) of n + 2 rows
    elif view == "permute":
        shape = shape[::-1]
    elif view == "expand":
        shape = list(spec.get("from").arr)
    elif view is not None:
        raise ValueError("unknown view %r" % view)
    return shape


def apply_view(t, spec):
    view = spec.get("view")
    if view == "T":
        return t.transpose(-2, -1)
    if view == "narrow":
        return t.narrow(0, 1, t.shape[0] - 2)
    if view == "permute":
        return t.permute(*reversed(range(t.dim())))
    if view == "expand":
        return t.expand(*spec.arr)
    return t


def gen_values(spec, n, g):
    """Flat Lua-side values for one input: floats in [lo, hi] on a 1e-4 grid, distinct and away
    from integers and half-integers (kinks of relu/abs/floor/round); integers; booleans."""
    if spec.get("values") is not None:
        return list(spec.get("values").arr)
    dtype = input_dtype(spec)
    if dtype == "bool":
        return [bool(b) for b in (torch.rand(n, generator=g) < 0.5).tolist()]
    if dtype in ("int64", "uint8", "int8"):
        if spec.get("index") is not None:
            lo, hi = 1, spec.get("index")
        else:
            lo, hi = spec.get("lo", 0 if dtype == "uint8" else -5), spec.get("hi", 5)
        return torch.randint(lo, hi + 1, (n,), generator=g).tolist()
    lo, hi = spec.get("lo", -2.0), spec.get("hi", 2.0)
    out, seen = [], set()
    while len(out) < n:
        v = round(lo + (hi - lo) * torch.rand(1, generator=g, dtype=torch.float64).item(), 4)
        if abs(2 * v - round(2 * v)) < 0.02 or v in seen or not lo <= v <= hi:
            continue
        seen.add(v)
        out.append(v)
    return out


def input_dtype(spec):
    if spec.get("index") is not None:
        return "int64"
    return spec.get("dtype", "float")


def make_inputs(specs, g):
    """Returns [(spec, values, base_shape)] with spec None for a Lua number operand."""
    res = []
    for s in specs:
        if not isinstance(s, LTable):
            res.append((None, s, None))
            continue
        shape = base_shape(s)
        n = math.prod(shape)
        res.append((s, gen_values(s, n, g), shape))
    return res


def torch_inputs(inputs, fdtype, grad):
    """Leaves (requires_grad for float inputs when grad) and the operands the op sees."""
    leaves, operands = [], []
    for spec, vals, shape in inputs:
        if spec is None:
            leaves.append(None)
            operands.append(vals)
            continue
        dt = input_dtype(spec)
        dt = fdtype if dt == "float" else DTYPES[dt]
        t = torch.tensor(vals, dtype=torch.float64).to(dt).reshape(shape)
        if spec.get("index") is not None:
            t = t - 1  # Lua's 1-based positions as torch's 0-based ones
        isfloat = input_dtype(spec) == "float"
        if grad and isfloat:
            t.requires_grad_(True)
        leaves.append(t if isfloat else None)
        operands.append(apply_view(t, spec))
    return leaves, operands


# ---- ops with tide's conventions ----------------------------------------------------------------
def D(d):
    """A Lua dim or position (1-based, negative from the end) as a torch one."""
    return d - 1 if d > 0 else d


def opts_of(a):
    """Splits a trailing options table (a dict) off the argument list."""
    if a and isinstance(a[-1], dict):
        return a[:-1], a[-1]
    return a, {}


def shape_args(a):
    """Sizes given as numbers or one table, then options."""
    a, o = opts_of(a)
    if a and isinstance(a[0], list):
        return a[0], a[1:], o
    sizes = [v for v in a if isinstance(v, int)]
    return sizes, a[len(sizes):], o


def dtype_opt(o, default="float32"):
    return DTYPES[o.get("dtype", default)]


class ShapeOnly:
    """An output whose values are not compared (empty, random): shape and dtype only."""

    def __init__(self, t):
        self.t = t


def arange(a):
    a, o = opts_of(a)
    lo, hi = a[0], a[1]
    step = a[2] if len(a) > 2 else 1
    n = math.floor((hi - lo) / step + 1e-9) + 1  # inclusive of hi when it lands on it
    vals = [lo + i * step for i in range(max(n, 0))]
    return torch.tensor(vals, dtype=torch.float64).to(dtype_opt(o))


def reduction(all_fn, dim_fn):
    def f(x, a):
        a, o = opts_of(a)
        t = x[0]
        if not a or a[0] is None:
            return all_fn(t, o)
        keep = a[1] if len(a) > 1 else o.get("keepdim", False)
        return dim_fn(t, D(a[0]), keep, o)
    return f


def plus1(pair):
    return (pair[0], pair[1] + 1)


def index_key(k):
    """A Lua index key (number or {a, b} ranges per dim) as a torch index."""
    def one(v):
        if isinstance(v, list):
            if not v:
                return slice(None)
            lo, hi = v[0], v[1] if len(v) > 1 else v[0]
            return slice(D(lo), None if hi == -1 else (hi + 1 if hi < 0 else hi))
        return D(v)
    if isinstance(k, list):
        return tuple(one(v) for v in k)
    return one(k)


def getindex(x, a):
    r = x[0][index_key(a[0])]
    return r.item() if r.dim() == 0 else r


def setindex(x, a):
    y = x[0].clone()
    y[index_key(a[0])] = x[1]
    return y


def write_through(x, a):
    """The view op a[1](x, a[2:]) filled with 7: the base must show it (storage is shared)."""
    with torch.no_grad():
        y = x[0].clone()
        v = OPS[a[0]]([y], a[1:])
        v.fill_(7)
    return y


def squeeze(x, a):
    return x[0].squeeze(D(a[0])) if a else x[0].squeeze()


def flatten(x, a):
    return x[0].flatten(D(a[0]) if a else 0, D(a[1]) if len(a) > 1 else -1)


def sizes_of(a):
    return a[0] if a and isinstance(a[0], list) else a


def to_dtype(x, a):
    return x[0].to(DTYPES[a[0]])


def like(fn):
    def f(x, a):
        a, o = opts_of(a)
        return fn(x[0], a, o)
    return f


def creation(fn):
    def f(x, a):
        sizes, rest, o = shape_args(a)
        return fn(sizes, rest, o)
    return f


def split(x, a):
    return list(torch.split(x[0], a[0], D(a[1]) if len(a) > 1 else 0))


def chunk(x, a):
    return list(torch.chunk(x[0], a[0], D(a[1]) if len(a) > 1 else 0))


def cat(x, a):
    return torch.cat(x, D(a[0]) if a else 0)


def stack(x, a):
    return torch.stack(x, D(a[0]) if a else 0)


def addmm(x, a):
    o = a[0] if a else {}
    return torch.addmm(x[0], x[1], x[2], beta=o.get("beta", 1), alpha=o.get("alpha", 1))


def scan(kind):
    """tide's recurrent scans (tensor/ops/rnn.c) step by step; S's saved gates are detached."""
    def f(x, a):
        gx, w, s = x
        H = w.shape[1] - (kind == "gru")
        h, c = (s[0], s[1]) if kind == "lstm" else (s, None)
        outs, saved = [], []
        for t in range(gx.shape[0]):
            if kind == "lstm":
                g = gx[t] + h @ w.T
                i, fg, o = g[:, :H].sigmoid(), g[:, H:2 * H].sigmoid(), g[:, 3 * H:].sigmoid()
                gg = g[:, 2 * H:3 * H].tanh()
                c = fg * c + i * gg
                tc = c.tanh()
                h = o * tc
                saved.append(torch.cat([c, torch.cat([i, fg, gg, o], 1).detach(), tc.detach()], 1))
            elif kind == "gru":
                gh = h @ w[:, :H].T + w[:, H]
                r = (gx[t, :, :H] + gh[:, :H]).sigmoid()
                z = (gx[t, :, H:2 * H] + gh[:, H:2 * H]).sigmoid()
                n = (gx[t, :, 2 * H:] + r * gh[:, 2 * H:]).tanh()
                h = (1 - z) * n + z * h
                saved.append(torch.cat([r, z, n, gh[:, 2 * H:]], 1).detach())
            else:
                a_ = gx[t] + h @ w.T
                h = a_.tanh() if kind == "tanh" else a_.relu()
            outs.append(h)
        out = torch.stack(outs)
        return (out, torch.stack(saved)) if saved else out
    return f


def var_like(fn):
    return reduction(lambda t, o: fn(t, unbiased=o.get("unbiased", True)),
                     lambda t, d, k, o: fn(t, d, unbiased=o.get("unbiased", True), keepdim=k))


def floor_div(x, a):
    return torch.div(x[0], x[1], rounding_mode="floor")


def binary(fn):
    return lambda x, a: fn(x[0], x[1])


def unary(fn):
    return lambda x, a: fn(x[0])


def clamp(x, a):
    return torch.clamp(x[0], a[0], a[1] if len(a) > 1 else None)


def where(x, a):
    c, p, q = x
    p = p if torch.is_tensor(p) else torch.tensor(p, dtype=q.dtype)  # a number takes the
    q = q if torch.is_tensor(q) else torch.tensor(q, dtype=p.dtype)  # other operand's dtype
    return torch.where(c, p, q)


def pairs(o):
    """Options whose {h, w} pairs become tuples (convolution and pooling)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in o.items()}


def conv(fn):
    def f(x, a):
        a, o = opts_of(a)
        return fn(x[0], x[1], x[2] if len(x) > 2 else None, **pairs(o))
    return f


def pool(fn):
    def f(x, a):
        a, o = opts_of(a)
        return fn(x[0], tuple(a[0]) if isinstance(a[0], list) else a[0], **pairs(o))
    return f


def layer_norm(x, a):
    """layer_norm(x, normalized_shape, [weight], [bias], {eps}): the operands are x, weight, bias."""
    a, o = opts_of(a)
    shape = a[0] if isinstance(a[0], list) else [a[0]]
    return F.layer_norm(x[0], shape, x[1] if len(x) > 1 else None, x[2] if len(x) > 2 else None,
                        eps=o.get("eps", 1e-5))


def batch_norm(x, a):
    """The running statistics are updated in place: torch gets copies, and no gradient for them."""
    a, o = opts_of(a)
    rm, rv = (x[1].detach().clone(), x[2].detach().clone()) if len(x) > 2 else (None, None)
    return F.batch_norm(x[0], rm, rv, x[3] if len(x) > 3 else None, x[4] if len(x) > 4 else None,
                        training=o.get("training", False), momentum=o.get("momentum", 0.1),
                        eps=o.get("eps", 1e-5))


def sdpa(x, a):
    """scaled_dot_product_attention(q, k, v [, mask] [, {causal, scale}]) composed (torch 1.13
    has no fused one); a bool mask marks with True the keys a query may attend to."""
    a, o = opts_of(a)
    q, k, v = x[0], x[1], x[2]
    s = (q @ k.transpose(-2, -1)) * o.get("scale", 1 / math.sqrt(q.shape[-1]))
    if len(x) > 3:
        s = s.masked_fill(~x[3], -math.inf) if x[3].dtype == torch.bool else s + x[3]
    if o.get("causal"):
        s = s.masked_fill(torch.ones(s.shape[-2:], dtype=torch.bool).triu(1), -math.inf)
    w = torch.softmax(s, -1)
    return w @ v, w


def loss(fn, **fixed):
    """A loss with tide's options; ignore_index is a 1-based class like the targets."""
    def f(x, a):
        a, o = opts_of(a)
        kw = dict(fixed, **o)
        if "ignore_index" in kw:
            kw["ignore_index"] -= 1
        return fn(x[0], x[1], **kw)
    return f


def tensor_of(x, a):
    a, o = opts_of(a)
    return torch.tensor(a[0], dtype=torch.float64).to(dtype_opt(o))


OPS = {
    # creation (no tensor inputs: the arguments are the call's)
    "tensor": tensor_of,
    "zeros": creation(lambda s, r, o: torch.zeros(s, dtype=dtype_opt(o))),
    "ones": creation(lambda s, r, o: torch.ones(s, dtype=dtype_opt(o))),
    "empty": creation(lambda s, r, o: ShapeOnly(torch.empty(s, dtype=dtype_opt(o)))),
    "rand": creation(lambda s, r, o: ShapeOnly(torch.rand(s, dtype=dtype_opt(o)))),
    "randn": creation(lambda s, r, o: ShapeOnly(torch.randn(s, dtype=dtype_opt(o)))),
    "full": lambda x, a: torch.full(a[0], a[1], dtype=dtype_opt(opts_of(a)[1])),
    "eye": lambda x, a: torch.eye(a[0], dtype=dtype_opt(opts_of(a)[1])),
    "arange": lambda x, a: arange(a),
    "linspace": lambda x, a: torch.linspace(a[0], a[1], a[2], dtype=dtype_opt(opts_of(a)[1])),
    "randint": lambda x, a: ShapeOnly(torch.randint(a[0], a[1] + 1, sizes_of(a[2:]))),
    "randperm": lambda x, a: ShapeOnly(torch.randperm(a[0])),
    "zeros_like": like(lambda t, a, o: torch.zeros_like(t, dtype=dtype_opt(o, NAMES[t.dtype]))),
    "ones_like": like(lambda t, a, o: torch.ones_like(t, dtype=dtype_opt(o, NAMES[t.dtype]))),
    "full_like": like(lambda t, a, o: torch.full_like(t, a[0], dtype=dtype_opt(o, NAMES[t.dtype]))),
    "empty_like": like(lambda t, a, o: ShapeOnly(torch.empty_like(t))),
    "rand_like": like(lambda t, a, o: ShapeOnly(torch.rand_like(t))),
    "randn_like": like(lambda t, a, o: ShapeOnly(torch.randn_like(t))),
    # properties and plain methods
    "shape": lambda x, a: list(x[0].shape),
    "ndim": lambda x, a: x[0].dim(),
    "dtype": lambda x, a: NAMES[x[0].dtype],
    "T": lambda x, a: x[0].T,
    "#": lambda x, a: x[0].shape[0],
    "size": lambda x, a: x[0].shape[D(a[0])] if a else list(x[0].shape),
    "stride": lambda x, a: x[0].stride(D(a[0])) if a else list(x[0].stride()),
    "numel": lambda x, a: x[0].numel(),
    "dim": lambda x, a: x[0].dim(),
    "is_contiguous": lambda x, a: x[0].is_contiguous(),
    "item": lambda x, a: x[0].item(),
    "totable": lambda x, a: x[0].tolist(),
    "clone": unary(torch.clone),
    "contiguous": lambda x, a: x[0].contiguous(),
    "to": to_dtype,
    "float": lambda x, a: x[0].float(),
    "double": lambda x, a: x[0].double(),
    "long": lambda x, a: x[0].long(),
    "fill_": lambda x, a: x[0].clone().fill_(a[0]),  # in-place ops run on a clone
    "zero_": lambda x, a: x[0].clone().zero_(),
    "copy_": lambda x, a: x[0].clone().copy_(x[1]),
    # views
    "view": lambda x, a: x[0].view(*sizes_of(a)),
    "reshape": lambda x, a: x[0].reshape(*sizes_of(a)),
    "transpose": lambda x, a: x[0].transpose(D(a[0]), D(a[1])),
    "t": lambda x, a: x[0].t(),
    "permute": lambda x, a: x[0].permute(*[D(d) for d in sizes_of(a)]),
    "narrow": lambda x, a: x[0].narrow(D(a[0]), a[1] - 1 if a[1] > 0 else a[1], a[2]),
    "select": lambda x, a: x[0].select(D(a[0]), D(a[1])),
    "squeeze": squeeze,
    "unsqueeze": lambda x, a: x[0].unsqueeze(D(a[0]) if a[0] > 0 else a[0]),
    "expand": lambda x, a: x[0].expand(*sizes_of(a)),
    "flatten": flatten,
    "split": split,
    "chunk": chunk,
    "[]": getindex,
    "[]=": setindex,
    "@write": write_through,
    # indexing
    "index": lambda x, a: torch.index_select(x[0], D(a[0]), x[1]),
    "gather": lambda x, a: torch.gather(x[0], D(a[0]), x[1]),
    "scatter": lambda x, a: torch.scatter(x[0], D(a[0]), x[1], x[2]),
    "masked_fill": lambda x, a: x[0].masked_fill(x[1], a[0]),
    "masked_select": lambda x, a: torch.masked_select(x[0], x[1]),
    "where": where,
    "cat": cat,
    "stack": stack,
    # elementwise
    "add": binary(torch.add), "+": binary(lambda p, q: p + q),
    "sub": binary(torch.sub), "-": binary(lambda p, q: p - q),
    "mul": binary(torch.mul), "*": binary(lambda p, q: p * q),
    "div": binary(torch.div), "/": binary(lambda p, q: p / q),
    "remainder": binary(torch.remainder), "%": binary(lambda p, q: p % q),
    "floor_divide": floor_div, "//": floor_div,
    "pow": binary(torch.pow), "^": binary(lambda p, q: p ** q),
    "neg": unary(torch.neg), "unm": unary(lambda p: -p),
    "abs": unary(torch.abs), "exp": unary(torch.exp), "log": unary(torch.log),
    "log1p": unary(torch.log1p), "sqrt": unary(torch.sqrt), "rsqrt": unary(torch.rsqrt),
    "sin": unary(torch.sin), "cos": unary(torch.cos), "tanh": unary(torch.tanh),
    "sigmoid": unary(torch.sigmoid), "relu": unary(torch.relu), "gelu": unary(F.gelu),
    "silu": unary(F.silu), "sign": unary(torch.sign), "floor": unary(torch.floor),
    "ceil": unary(torch.ceil), "round": unary(torch.round), "reciprocal": unary(torch.reciprocal),
    "clamp": clamp,
    "eq": binary(torch.eq), "ne": binary(torch.ne), "lt": binary(torch.lt),
    "le": binary(torch.le), "gt": binary(torch.gt), "ge": binary(torch.ge),
    "maximum": binary(torch.maximum), "minimum": binary(torch.minimum),
    "logical_and": binary(torch.logical_and), "logical_or": binary(torch.logical_or),
    "logical_xor": binary(torch.logical_xor), "logical_not": unary(torch.logical_not),
    "all": unary(torch.all), "any": unary(torch.any),
    "isnan": unary(torch.isnan), "isfinite": unary(torch.isfinite),
    # reductions
    "sum": reduction(lambda t, o: t.sum(), lambda t, d, k, o: t.sum(d, keepdim=k)),
    "mean": reduction(lambda t, o: t.mean(), lambda t, d, k, o: t.mean(d, keepdim=k)),
    "prod": reduction(lambda t, o: t.prod(), lambda t, d, k, o: t.prod(d, keepdim=k)),
    "max": reduction(lambda t, o: t.max(), lambda t, d, k, o: plus1(t.max(d, keepdim=k))),
    "min": reduction(lambda t, o: t.min(), lambda t, d, k, o: plus1(t.min(d, keepdim=k))),
    "argmax": reduction(lambda t, o: t.argmax() + 1,
                        lambda t, d, k, o: t.argmax(d, keepdim=k) + 1),
    "argmin": reduction(lambda t, o: t.argmin() + 1,
                        lambda t, d, k, o: t.argmin(d, keepdim=k) + 1),
    "var": var_like(torch.var),
    "std": var_like(torch.std),
    "norm": reduction(lambda t, o: torch.linalg.vector_norm(t),
                      lambda t, d, k, o: torch.linalg.vector_norm(t, 2, dim=d, keepdim=k)),
    "logsumexp": reduction(lambda t, o: torch.logsumexp(t.reshape(-1), 0),
                           lambda t, d, k, o: torch.logsumexp(t, d, keepdim=k)),
    "cumsum": lambda x, a: torch.cumsum(x[0], D(a[0])),
    # linear algebra
    "matmul": binary(torch.matmul), "mm": binary(torch.mm), "bmm": binary(torch.bmm),
    "mv": binary(torch.mv), "dot": binary(torch.dot), "outer": binary(torch.outer),
    "addmm": addmm, "linear": lambda x, a: F.linear(x[0], x[1], x[2]),
    # neural
    "softmax": lambda x, a: torch.softmax(x[0], D(a[0])),
    "log_softmax": lambda x, a: torch.log_softmax(x[0], D(a[0])),
    "dropout": lambda x, a: F.dropout(x[0], a[0], training=a[1] if len(a) > 1 else True),
    "conv2d": conv(F.conv2d),
    "conv_transpose2d": conv(F.conv_transpose2d),
    "im2col": lambda x, a: F.unfold(x[0], tuple(a[0]) if isinstance(a[0], list) else a[0],
                                    **pairs(opts_of(a)[1])),
    "max_pool2d": pool(F.max_pool2d),
    "avg_pool2d": pool(F.avg_pool2d),
    "adaptive_avg_pool2d": lambda x, a: F.adaptive_avg_pool2d(
        x[0], tuple(a[0]) if isinstance(a[0], list) else a[0]),
    "layer_norm": layer_norm,
    "batch_norm": batch_norm,
    "embedding": lambda x, a: F.embedding(x[0], x[1]),
    "cross_entropy": loss(F.cross_entropy),
    "nll_loss": loss(F.nll_loss),
    "mse_loss": loss(F.mse_loss),
    "l1_loss": loss(F.l1_loss),
    "smooth_l1_loss": loss(F.smooth_l1_loss),
    "binary_cross_entropy": loss(F.binary_cross_entropy),
    "binary_cross_entropy_with_logits": loss(F.binary_cross_entropy_with_logits),
    "kl_div": loss(F.kl_div, reduction="mean"),
    "lstm_scan": scan("lstm"),
    "gru_scan": scan("gru"),
    "rnn_tanh_scan": scan("tanh"),
    "rnn_relu_scan": scan("relu"),
    "scaled_dot_product_attention": sdpa,
}


# ---- outputs ----------------------------------------------------------------------------------
def flat(t):
    return t.detach().reshape(-1).tolist()


def lua_tensor(t, data=True):
    if data:
        return lualit.tensor(t, t.dtype == torch.float32, dtype=NAMES[t.dtype])
    return "{shape=%s,dtype=%s}" % (lualit.lst(list(t.shape)), lualit.string(NAMES[t.dtype]))


def outputs_of(r):
    """The op's results as a list of Lua return values (a torch tuple = several returns)."""
    return list(r) if isinstance(r, tuple) else [r]


def lua_output(o):
    if isinstance(o, ShapeOnly):
        return lua_tensor(o.t, data=False)
    if torch.is_tensor(o):
        return lua_tensor(o)
    if isinstance(o, list) and o and torch.is_tensor(o[0]):
        return "{list={" + ",".join(lua_tensor(t) for t in o) + "}}"
    return "{value=%s}" % lualit.value(o)


def diff_outputs(outs):
    """The float tensors among the outputs (list outputs flattened), in order."""
    res = []
    for o in outs:
        for t in (o if isinstance(o, list) else [o]):
            if torch.is_tensor(t):
                res.append(t)
    return res


def run_case(name, inputs, args, fdtype, weights):
    fn = OPS[name]
    leaves, operands = torch_inputs(inputs, fdtype, grad=True)
    outs = outputs_of(fn(operands, args))
    grads = None
    diffs = diff_outputs(outs)
    live = [(t, w) for t, w in zip(diffs, weights) if t.requires_grad]
    if live and any(lf is not None for lf in leaves):
        loss = sum((t * torch.tensor(w, dtype=torch.float64).to(t.dtype).reshape(t.shape)).sum()
                   for t, w in live)
        want = [lf for lf in leaves if lf is not None]
        try:
            gs = iter(torch.autograd.grad(loss, want, allow_unused=True))
            grads = [next(gs) if lf is not None else None for lf in leaves]
        except RuntimeError as e:  # not differentiable in torch: no gradient to compare
            print("note: %s: no gradient (%s)" % (name, str(e).splitlines()[0]), file=sys.stderr)
    return outs, grads


def weights_for(inputs, name, args, g):
    """One weight list per output tensor, from a float64 dry run's output shapes."""
    _, operands = torch_inputs(inputs, torch.float64, grad=False)
    outs = outputs_of(OPS[name](operands, args))
    ws = []
    for t in diff_outputs(outs):
        n = t.numel()
        ws.append([round(v, 4) for v in (torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1)
                   .tolist()])
    return ws


def has_float_input(specs):
    return any(isinstance(s, LTable) and input_dtype(s) == "float" for s in specs)


def gen_case(name, specs, args):
    key = ser(name) + ser(specs) + ser(args)
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    torch.manual_seed(zlib.crc32(key.encode()))  # for the ShapeOnly random ops
    inputs = make_inputs(specs.arr, g)
    a = plain(args)
    ws = weights_for(inputs, name, a, g)
    parts = ["inputs={" + ",".join(
        "{scalar=%s}" % lualit.num(vals) if spec is None else
        "{shape=%s,data=%s}" % (lualit.lst(shape), lualit.lst(vals)) for spec, vals, shape in inputs)
        + "}"]
    variants = [("f64", torch.float64), ("f32", torch.float32)] if has_float_input(specs.arr) \
        else [("f32", torch.float32)]
    for tag, dt in variants:
        outs, grads = run_case(name, inputs, a, dt, ws)
        v = "out={" + ",".join(lua_output(o) for o in outs) + "}"
        if grads is not None:
            f32 = dt == torch.float32
            v += ",grads={" + ",".join(
                "false" if gr is None else lualit.lst(flat(gr), f32) for gr in grads) + "}"
        parts.append("%s={%s}" % (tag, v))
        if grads is not None and not any(p.startswith("w=") for p in parts):
            parts.insert(1, "w={" + ",".join(lualit.lst(w) for w in ws) + "}")
    return key, "[%s]={%s}" % (lualit.string(key), ",".join(parts))


def main():
    entries, seen = [], set()
    for line, name, specs, args in check_lines(SPEC):
        if name not in OPS:
            sys.exit("%s:%d: no PyTorch reference for op %r (add it to OPS)" % (SPEC, line, name))
        if not isinstance(specs, LTable) or not isinstance(args, LTable):
            sys.exit("%s:%d: check(name, {inputs}, {args})" % (SPEC, line))
        key = ser(name) + ser(specs) + ser(args)
        if key in seen:
            continue
        seen.add(key)
        try:
            entries.append(gen_case(name, specs, args)[1])
        except Exception as e:
            sys.exit("%s:%d: %s: %s" % (SPEC, line, type(e).__name__, e))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write("-- tests/fixtures/ops.lua: generated by scripts/gen_fixtures.py from the check lines\n"
                "-- of tests/lua/ops_spec.lua with PyTorch %s. Do not edit.\nreturn {\n"
                % torch.__version__)
        for e in entries:
            f.write(e + ",\n")
        f.write("}\n")
    print("%s: %d cases, %d bytes" % (os.path.relpath(OUT, ROOT), len(entries), os.path.getsize(OUT)))


if __name__ == "__main__":
    main()
