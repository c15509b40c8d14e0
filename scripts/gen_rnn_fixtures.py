"""gen_rnn_fixtures.py - PyTorch reference values for tests/lua/nn_rnn_spec.lua.

Usage: /usr/bin/python3 scripts/gen_rnn_fixtures.py [OUT]   (default tests/fixtures/rnn.lua)

For each case (LSTM, GRU, RNN; 1 and 2 layers; batch_first both ways; bidirectional; given and
default initial state; float32 and float64) it builds the torch module, overwrites every
parameter with deterministic values, runs input (and state) forward, then backward of
loss = sum(out * w_out) + sum(h_n * w_h) [+ sum(c_n * w_c)], and writes a Lua table literal:
inputs, state, parameters (PyTorch names), weights, outputs and the gradients of the input, the
state and every parameter. Inputs and parameters are multiples of 1/64 (exact in float32 and
float64, short to print); results are printed with 10 significant digits (float32) or 15
(float64), well inside the spec's tolerances. No torch is needed at test time.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lualit  # noqa: E402

T, B, IN, H = 5, 3, 4, 6

# name, class, options, dtype, state given, unbatched
CASES = [
    ("lstm_1l_tm_default_f64", "LSTM", {}, torch.float64, False, False),
    ("lstm_2l_bf_state_f32", "LSTM", {"num_layers": 2, "batch_first": True}, torch.float32, True,
     False),
    ("lstm_2l_bf_bidir_state_f64", "LSTM",
     {"num_layers": 2, "batch_first": True, "bidirectional": True}, torch.float64, True, False),
    ("lstm_1l_tm_bidir_default_f32", "LSTM", {"bidirectional": True}, torch.float32, False, False),
    ("lstm_unbatched_state_f64", "LSTM", {}, torch.float64, True, True),
    ("gru_1l_tm_default_f64", "GRU", {}, torch.float64, False, False),
    ("gru_2l_tm_state_f64", "GRU", {"num_layers": 2}, torch.float64, True, False),
    ("gru_2l_bf_bidir_state_f32", "GRU",
     {"num_layers": 2, "batch_first": True, "bidirectional": True}, torch.float32, True, False),
    ("gru_nobias_bf_default_f64", "GRU", {"bias": False, "batch_first": True}, torch.float64,
     False, False),
    ("rnn_tanh_2l_bf_state_f64", "RNN", {"num_layers": 2, "batch_first": True}, torch.float64,
     True, False),
    ("rnn_relu_1l_tm_bidir_default_f32", "RNN", {"nonlinearity": "relu", "bidirectional": True},
     torch.float32, False, False),
    ("rnn_tanh_1l_tm_default_f32", "RNN", {}, torch.float32, False, False),
]


def grid(g, shape, lim):
    """Deterministic values k/64 with |k| <= lim (exact in float32 and float64)."""
    k = torch.randint(-lim, lim + 1, shape, generator=g, dtype=torch.int64)
    return k.double() / 64


def tensor_lua(t, digits=17):
    return lualit.tensor(t.double().contiguous(), digits=digits)


def run(name, cls, opts, dt, given, unbatched, seed):
    g = torch.Generator().manual_seed(seed)
    m = getattr(torch.nn, cls)(IN, H, **opts).to(dt)
    D = 2 if opts.get("bidirectional") else 1
    L = opts.get("num_layers", 1)
    params = {}
    with torch.no_grad():
        for pname, p in m.named_parameters():
            p.copy_(grid(g, p.shape, 26))  # inside PyTorch's init range 1/sqrt(6) = 0.41
            params[pname] = p
    bf = opts.get("batch_first", False)
    xshape = (T, IN) if unbatched else ((B, T, IN) if bf else (T, B, IN))
    x = grid(g, xshape, 64).to(dt).requires_grad_()
    sshape = (L * D, H) if unbatched else (L * D, B, H)
    state, leaves = None, []
    if given:
        h0 = grid(g, sshape, 48).to(dt).requires_grad_()
        leaves.append(("h0", h0))
        if cls == "LSTM":
            c0 = grid(g, sshape, 48).to(dt).requires_grad_()
            leaves.append(("c0", c0))
            state = (h0, c0)
        else:
            state = h0
    out, st = m(x, state) if state is not None else m(x)
    h_n, c_n = (st[0], st[1]) if cls == "LSTM" else (st, None)
    w_out, w_h = grid(g, out.shape, 64).to(dt), grid(g, h_n.shape, 64).to(dt)
    loss = (out * w_out).sum() + (h_n * w_h).sum()
    w_c = None
    if c_n is not None:
        w_c = grid(g, c_n.shape, 64).to(dt)
        loss = loss + (c_n * w_c).sum()
    loss.backward()
    d = 10 if dt == torch.float32 else 15
    dtn = "float32" if dt == torch.float32 else "float64"
    f = []
    f.append("{name=%s,class=%s,opts=%s,dtype=%s," % (
        lualit.string(name), lualit.string(cls), lualit.value(opts), lualit.string(dtn)))
    f.append("x=%s," % tensor_lua(x))
    for lname, t in leaves:
        f.append("%s=%s," % (lname, tensor_lua(t)))
    f.append("params={%s}," % ",".join(
        "%s=%s" % (pn, tensor_lua(p)) for pn, p in params.items()))
    f.append("order={%s}," % ",".join('"%s"' % pn for pn in params))
    f.append("w_out=%s,w_h=%s," % (tensor_lua(w_out), tensor_lua(w_h)))
    if w_c is not None:
        f.append("w_c=%s," % tensor_lua(w_c))
    f.append("out=%s,h_n=%s," % (tensor_lua(out, d), tensor_lua(h_n, d)))
    if c_n is not None:
        f.append("c_n=%s," % tensor_lua(c_n, d))
    grads = [("x", x.grad)] + [(ln, t.grad) for ln, t in leaves]
    grads += [(pn, p.grad) for pn, p in params.items()]
    f.append("grads={%s}}" % ",".join("%s=%s" % (gn, tensor_lua(gv, d)) for gn, gv in grads))
    return "".join(f)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/rnn.lua"
    torch.set_num_threads(1)
    lines = ["-- tests/fixtures/rnn.lua: written by scripts/gen_rnn_fixtures.py (torch %s); "
             "do not edit." % torch.__version__,
             "-- Sizes: T=%d, B=%d, in=%d, hidden=%d." % (T, B, IN, H),
             "return {"]
    for i, c in enumerate(CASES):
        lines.append(run(*c, seed=1000 + i) + ",")
    lines.append("}")
    with open(out, "w") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
