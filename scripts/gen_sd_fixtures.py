#!/usr/bin/python3
"""scripts/gen_sd_fixtures.py: PyTorch state dicts (0-based names) of four small models, with
inputs and outputs, for tests/lua/nn_pytorch_spec.lua: a tide model built the same way loads
each with {from = "pytorch"} and must give the same outputs and save back the same keys.

Writes into tests/fixtures/ (the safetensors writer is gen_io_fixtures.py's):
  sd_<name>_state.safetensors  the state dict; metadata "keys" lists name=shape in PyTorch's
                               order ("scalar" for 0-d), the list tide must write back
  sd_<name>_io.safetensors     input (int64 token ids are 0-based), eval-mode output, and:
    text    Embedding(50, 16) -> LSTM(16, 24, 2 layers, batch_first, bidirectional) ->
            Linear(48, 5) on the last step
    gru     GRU(8, 12) with an initial state h0: output, h_n, and in train mode the gradients
            of sum(output * w) wrt input, h0 and weight_hh_l0
    encoder TransformerEncoder(2 x layer(16, 4, ff 32, dropout 0, batch_first), LayerNorm(16))
            -> Linear(16, 5)
    vision  ConvTranspose2d(3, 6, 3, stride 2, padding 1, output_padding 1, groups 3) -> GELU
            -> MaxPool2d(3, 2, 1) -> AvgPool2d(2, 1, 1) -> AdaptiveAvgPool2d((4, 3)) -> Flatten
            -> BatchNorm1d(72) -> SiLU -> Linear(72, 5); in train mode (batch statistics) the
            output, the gradients of sum(output * w) wrt input and 0.weight, and the running
            statistics after that forward

Run with Debian's python3: /usr/bin/python3 scripts/gen_sd_fixtures.py (or `make fixtures`).
"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_io_fixtures import OUT, arr, st_bytes, write  # noqa: E402


def shape(t):
    return "x".join(str(s) for s in t.shape) if t.dim() > 0 else "scalar"


def save(name, model, io):
    sd = model.state_dict()
    keys = ",".join("%s=%s" % (k, shape(v)) for k, v in sd.items())
    write("sd_%s_state.safetensors" % name,
          st_bytes({k: arr(v.detach().numpy()) for k, v in sd.items()},
                   {"format": "pt", "keys": keys}))
    write("sd_%s_io.safetensors" % name,
          st_bytes({k: arr(v.detach().numpy()) for k, v in io.items()}))


class Text(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.lstm = nn.LSTM(16, 24, num_layers=2, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(48, 5)

    def forward(self, idx):
        h, _ = self.lstm(self.emb(idx))
        return self.fc(h[:, -1])


def text():
    torch.manual_seed(1)
    m = Text().eval()
    idx = torch.randint(0, 50, (3, 7))
    with torch.no_grad():
        save("text", m, {"input": idx, "output": m(idx)})


def gru():
    torch.manual_seed(2)
    m = nn.GRU(8, 12)
    x, h0 = torch.randn(6, 3, 8), torch.randn(1, 3, 12)
    with torch.no_grad():
        out, hn = m(x, h0)
    w = torch.randn(out.shape)
    xg, hg = x.clone().requires_grad_(), h0.clone().requires_grad_()
    y, _ = m.train()(xg, hg)
    (y * w).sum().backward()
    save("gru", m, {"input": x, "h0": h0, "output": out, "h_n": hn, "w": w, "grad_input": xg.grad,
                    "grad_h0": hg.grad, "grad_weight_hh_l0": m.weight_hh_l0.grad})


def encoder():
    torch.manual_seed(3)
    layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.0, batch_first=True,
                                       norm_first=False)
    m = nn.Sequential(nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(16)), nn.Linear(16, 5))
    with torch.no_grad():                    # non-trivial norms: the defaults are 1 and 0
        for name, p in m.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5) if name.endswith("weight") else p.uniform_(-0.5, 0.5)
    m.eval()
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        save("encoder", m, {"input": x, "output": m(x)})


def vision():
    torch.manual_seed(4)
    m = nn.Sequential(
        nn.ConvTranspose2d(3, 6, 3, stride=2, padding=1, output_padding=1, groups=3), nn.GELU(),
        nn.MaxPool2d(3, stride=2, padding=1), nn.AvgPool2d(2, stride=1, padding=1),
        nn.AdaptiveAvgPool2d((4, 3)), nn.Flatten(), nn.BatchNorm1d(72), nn.SiLU(),
        nn.Linear(72, 5))
    bn = m[6]
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
        bn.num_batches_tracked.fill_(5)
    x = torch.randn(4, 3, 5, 5)
    with torch.no_grad():
        out = m.eval()(x)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    w = torch.randn(out.shape)
    xg = x.clone().requires_grad_()
    y = m.train()(xg)
    (y * w).sum().backward()
    io = {"input": x, "output": out, "w": w, "train_output": y, "grad_input": xg.grad,
          "grad_0.weight": m[0].weight.grad, "running_mean": bn.running_mean.clone(),
          "running_var": bn.running_var.clone()}  # clones: load_state_dict copies in place
    m.load_state_dict(state)                 # the file holds the state before the train forward
    save("vision", m, io)


def main():
    os.makedirs(OUT, exist_ok=True)
    text()
    gru()
    encoder()
    vision()
    print("wrote sd fixtures to", OUT)


if __name__ == "__main__":
    main()
