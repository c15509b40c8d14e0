#!/usr/bin/python3
"""scripts/gen_attn_fixtures.py: PyTorch reference values for tests/lua/nn_attention_spec.lua.

Writes tests/fixtures/attention.lua, a Lua table literal: {[case name] = {kind, ctor, train,
call, inputs, sd, w, f32 = {out, weights, grads}, f64 = {...}}}. Each case builds a PyTorch module
(MultiheadAttention, TransformerEncoderLayer, TransformerEncoder, the tutorial's
PositionalEncoding), sets every parameter to seeded random values (float32-exact, so one set of
inputs serves both dtypes), runs it in float32 and float64 and stores the outputs and the
gradients of sum(out * w) (+ sum(weights * ww)) for the inputs and every parameter, under
PyTorch's state-dict names. Sizes are small: B = 2, T = 5, d = 8, 2 heads.

Run with Debian's python3-torch: /usr/bin/python3 scripts/gen_attn_fixtures.py (make fixtures).
"""
import math
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lualit  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "attention.lua")
B, T, S, D, H, FF = 2, 5, 6, 8, 2, 16


class PositionalEncoding(nn.Module):
    """The PyTorch tutorial's (sequence first: x is T x B x d)."""

    def __init__(self, d_model, dropout=0.1, max_len=5000):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, 1, d_model)
        pe[:, 0, 0::2] = torch.sin(position * div_term)
        pe[:, 0, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x):
        return self.dropout(x + self.pe[:x.size(0)])


def rand(g, *shape):
    """float32-exact values in [-1, 1]"""
    return (torch.rand(*shape, generator=g) * 2 - 1).float()


def randomize(model, g):
    """every parameter random (norm weights near 1), so each path is exercised"""
    with torch.no_grad():
        for name, p in model.named_parameters():
            v = rand(g, *p.shape) * 0.5
            p.copy_(v + 1 if name.endswith("norm1.weight") or name.endswith("norm2.weight")
                    or name == "norm.weight" else v)


def build(kind, ctor):
    d, h, o = ctor
    if kind == "mha":
        return nn.MultiheadAttention(d, h, dropout=o.get("dropout", 0.0),
                                     batch_first=o.get("batch_first", True), bias=o.get("bias", True))
    layer_kw = dict(dim_feedforward=o.get("dim_feedforward", 2048), dropout=o.get("dropout", 0.1),
                    activation=o.get("activation", "relu"), norm_first=o.get("norm_first", False),
                    batch_first=True)
    if kind == "layer":
        return nn.TransformerEncoderLayer(d, h, **layer_kw)
    if kind == "encoder":
        return nn.TransformerEncoder(nn.TransformerEncoderLayer(d, h, **layer_kw), o["num_layers"],
                                     norm=nn.LayerNorm(d))
    if kind == "posenc":
        return PositionalEncoding(d, dropout=0.0, max_len=h)
    raise ValueError(kind)


def causal_mask(L, S):
    return torch.ones(L, S, dtype=torch.bool).triu(1)


def run(case, dtype):
    """outputs and gradients of one case in one dtype"""
    kind, call = case["kind"], case["call"]
    g = torch.Generator().manual_seed(case["seed"])
    model = build(kind, case["ctor"])
    randomize(model, g)
    model = model.to(dtype)
    model.train(case["train"])
    inputs = {k: v.to(dtype).requires_grad_() for k, v in case["inputs"].items()}
    kw = {}
    mask = call.get("mask")
    if mask is not None:
        # tide's bool masks mark masked-out positions, as PyTorch's attn_mask
        kw["attn_mask" if kind == "mha" else "src_mask"] = mask if mask.dtype == torch.bool else mask.to(dtype)
    if call.get("causal"):
        kw["attn_mask" if kind == "mha" else "src_mask"] = causal_mask(T, T)
    if call.get("key_padding_mask") is not None:
        kw["key_padding_mask"] = call["key_padding_mask"]
    weights = None
    if kind == "mha":
        q = inputs["q"]
        k, v = inputs.get("k", q), inputs.get("v", inputs.get("k", q))
        out, weights = model(q, k, v, need_weights=True, **kw)
    elif kind == "posenc":
        out = model(inputs["x"].transpose(0, 1)).transpose(0, 1)
    elif kind == "encoder":
        out = model(inputs["x"], mask=kw.get("src_mask"))
    else:
        out = model(inputs["x"], **kw)
    loss = (out * case["w"].to(dtype)).sum()
    if weights is not None:
        loss = loss + (weights * case["ww"].to(dtype)).sum()
    names = list(inputs) + [n for n, _ in model.named_parameters()]
    tensors = list(inputs.values()) + [p for _, p in model.named_parameters()]
    grads = torch.autograd.grad(loss, tensors) if tensors else []
    res = {"out": out, "grads": dict(zip(names, grads))}
    if weights is not None:
        res["weights"] = weights
    if kind == "posenc":
        res["pe"] = model.pe[:case["ctor"][1]]
    return res, {n: p.detach() for n, p in model.state_dict().items()}


def cases():
    g = torch.Generator().manual_seed(1234)
    x, q = rand(g, B, T, D), rand(g, B, T, D)
    k, v = rand(g, B, S, D), rand(g, B, S, D)
    bool_mask = torch.rand(T, T, generator=g) < 0.4
    bool_mask.fill_diagonal_(False)                       # every query keeps a key
    float_mask = rand(g, T, S)
    kpm = torch.zeros(B, S, dtype=torch.bool)
    kpm[0, 4:] = True
    kpm[1, 1] = True
    mha = ("mha", [D, H, {}])
    lay = {"dim_feedforward": FF, "dropout": 0.0}
    out = {
        "mha_self": dict(kind="mha", ctor=mha[1], inputs={"q": x}, call={}),
        "mha_self_causal": dict(kind="mha", ctor=mha[1], inputs={"q": x}, call={"causal": True}),
        "mha_self_bool_mask": dict(kind="mha", ctor=mha[1], inputs={"q": x}, call={"mask": bool_mask}),
        "mha_cross": dict(kind="mha", ctor=mha[1], inputs={"q": q, "k": k, "v": v}, call={}),
        "mha_cross_kv_float_mask": dict(kind="mha", ctor=mha[1], inputs={"q": q, "k": k},
                                        call={"mask": float_mask}),
        "mha_cross_key_padding": dict(kind="mha", ctor=mha[1], inputs={"q": q, "k": k, "v": v},
                                      call={"key_padding_mask": kpm}),
        "mha_seq_first_eval": dict(kind="mha", ctor=[D, H, {"batch_first": False, "dropout": 0.5}],
                                   inputs={"q": x}, call={}, train=False),
        "layer_post_relu_causal": dict(kind="layer", ctor=[D, H, dict(lay)], inputs={"x": x},
                                       call={"causal": True}),
        "layer_pre_gelu": dict(kind="layer", ctor=[D, H, dict(lay, activation="gelu", norm_first=True)],
                               inputs={"x": x}, call={"mask": bool_mask}),
        "layer_post_gelu_eval": dict(kind="layer", ctor=[D, H, dict(lay, activation="gelu", dropout=0.1)],
                                     inputs={"x": x}, call={}, train=False),
        "layer_pre_relu_eval": dict(kind="layer", ctor=[D, H, dict(lay, norm_first=True, dropout=0.1)],
                                    inputs={"x": x}, call={"causal": True}, train=False),
        "encoder_2_causal": dict(kind="encoder", ctor=[D, H, dict(lay, num_layers=2)], inputs={"x": x},
                                 call={"causal": True}),
        "posenc": dict(kind="posenc", ctor=[D, 20, {}], inputs={"x": x}, call={}),
    }
    for i, (name, c) in enumerate(sorted(out.items())):
        c.setdefault("train", True)
        c["seed"] = 100 + i
        c["w"] = rand(g, B, T, D)
        if c["kind"] == "mha":  # weights: B x L x S (L x B x d inputs when not batch_first)
            first = c["ctor"][2].get("batch_first", True)
            c["ww"] = rand(g, *((B, T) if first else (T, B)), S if "k" in c["inputs"] else (T if first else B))
    return out


def main():
    parts = []
    for name, c in sorted(cases().items()):
        r32, sd = run(c, torch.float32)
        r64, _ = run(c, torch.float64)
        fields = ["kind=%s" % lualit.value(c["kind"]), "ctor=%s" % lualit.value(c["ctor"]),
                  "train=%s" % lualit.value(c["train"]), "call=%s" % lualit.value(c["call"]),
                  "inputs=%s" % lualit.value(c["inputs"]), "sd=%s" % lualit.value(sd),
                  "w=%s" % lualit.value(c["w"])]
        if "ww" in c:
            fields.append("ww=%s" % lualit.value(c["ww"]))
        for tag, r in (("f32", r32), ("f64", r64)):
            f32 = tag == "f32"
            items = ["out=" + lualit.value(r["out"], f32)]
            for key in ("weights", "pe"):
                if key in r:
                    items.append("%s=%s" % (key, lualit.value(r[key], f32)))
            items.append("grads={" + ",".join('%s=%s' % (lualit.key(n), lualit.value(t, f32))
                                              for n, t in sorted(r["grads"].items())) + "}")
            fields.append("%s={%s}" % (tag, ",".join(items)))
        parts.append('["%s"]={\n  %s}' % (name, ",\n  ".join(fields)))
    with open(OUT, "w") as f:
        f.write("-- tests/fixtures/attention.lua: written by scripts/gen_attn_fixtures.py (PyTorch %s); "
                "do not edit\nreturn {\n%s,\n}\n" % (torch.__version__, ",\n".join(parts)))
    print("%s: %d cases, %d bytes" % (os.path.relpath(OUT, ROOT), len(parts), os.path.getsize(OUT)))


if __name__ == "__main__":
    main()
