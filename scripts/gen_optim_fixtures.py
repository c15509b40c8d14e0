"""gen_optim_fixtures.py - PyTorch reference values for tests/lua/optim_spec.lua: optimizer
trajectories, per-group options, learning-rate schedules and clip_grad_norm_.

Usage: /usr/bin/python3 scripts/gen_optim_fixtures.py [OUT]   (default tests/fixtures/optim.lua)
The names of CASES, GROUPS and SCHED are the spec's; each lambda is the spec's constructor in
PyTorch's spelling."""
import os
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lualit  # noqa: E402

O, L = torch.optim, torch.optim.lr_scheduler


def traj(make, steps):
    """loss = sum((w1 - t1)^2) + sum((w2 - t2)^2 * 0.5); w3 never gets a gradient. Float64."""
    w1 = torch.tensor([0.5, -1.5, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    w2 = torch.tensor([1.0, -2.0, 0.25], dtype=torch.float64, requires_grad=True)
    w3 = torch.tensor([7.0], dtype=torch.float64, requires_grad=True)
    t1 = torch.tensor([1.0, 0.0, -1.0, 2.5], dtype=torch.float64)
    t2 = torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64)
    opt, out = make(w1, w2, w3), []
    for _ in range(steps):
        opt.zero_grad()
        (((w1 - t1) ** 2).sum() + ((w2 - t2) ** 2 * 0.5).sum()).backward()
        opt.step()
        out.append(w1.tolist() + w2.tolist())
    return out


CASES = {
    "sgd": lambda a, b, c: O.SGD([a, b, c], lr=0.1),
    "sgd_momentum": lambda a, b, c: O.SGD([a, b, c], lr=0.1, momentum=0.9, dampening=0.1,
                                          weight_decay=0.01),
    "sgd_nesterov": lambda a, b, c: O.SGD([a, b, c], lr=0.1, momentum=0.9, nesterov=True,
                                          weight_decay=0.01),
    "sgd_groups": lambda a, b, c: O.SGD([{"params": [a], "lr": 0.1, "momentum": 0.5},
                                         {"params": [b, c]}], lr=0.05, momentum=0.9),
    "adam": lambda a, b, c: O.Adam([a, b, c], lr=0.1),
    "adam_amsgrad": lambda a, b, c: O.Adam([a, b, c], lr=0.1, weight_decay=0.1, amsgrad=True),
    "adam_groups": lambda a, b, c: O.Adam([{"params": [a]}, {"params": [b], "lr": 0.01,
                                          "betas": (0.5, 0.6)}], lr=0.2, eps=1e-3),
    "adam_maximize": lambda a, b, c: O.Adam([a, b, c], lr=0.05, maximize=True),
    "adamw": lambda a, b, c: O.AdamW([a, b, c], lr=0.1, weight_decay=0.1),
    "adamw_amsgrad": lambda a, b, c: O.AdamW([a, b, c], lr=0.1, betas=(0.8, 0.9), eps=1e-6,
                                             amsgrad=True),
    "rmsprop": lambda a, b, c: O.RMSprop([a, b, c], lr=0.01),
    "rmsprop_center": lambda a, b, c: O.RMSprop([a, b, c], lr=0.01, centered=True, momentum=0.9,
                                                weight_decay=0.1),
    "rmsprop_alpha": lambda a, b, c: O.RMSprop([a, b, c], lr=0.05, alpha=0.9, momentum=0.5),
    "adagrad": lambda a, b, c: O.Adagrad([a, b, c], lr=0.1),
    "adagrad_decay": lambda a, b, c: O.Adagrad([a, b, c], lr=0.1, lr_decay=0.1, weight_decay=0.1,
                                               initial_accumulator_value=0.5),
}

GROUPS = {  # the per-group describe's MAKE
    "adamw": lambda a, b, c: O.AdamW([{"params": [a], "weight_decay": 0.5, "amsgrad": True},
                                      {"params": [b, c], "lr": 0.05, "eps": 0.1}], lr=0.1),
    "rmsprop": lambda a, b, c: O.RMSprop([{"params": [a], "centered": True}, {"params": [b, c],
                                          "lr": 0.02, "momentum": 0.5, "eps": 0.1}], lr=0.01),
    "adagrad": lambda a, b, c: O.Adagrad([{"params": [a], "lr_decay": 0.5},
                                          {"params": [b, c], "lr": 0.2, "eps": 0.5}], lr=0.1),
}

METRIC = [1.0, 0.9, 0.95, 0.91, 0.92, 0.905, 0.85, 0.86, 0.87, 0.88, 0.84, 0.845]
SCHED = {
    "step": lambda o: L.StepLR(o, step_size=3, gamma=0.5),
    "exponential": lambda o: L.ExponentialLR(o, gamma=0.9),
    "cosine": lambda o: L.CosineAnnealingLR(o, T_max=5, eta_min=0.001),
    "warmup": lambda o: L.SequentialLR(o, [L.LinearLR(o, 1 / 3, 1, total_iters=2),
                                           L.CosineAnnealingLR(o, T_max=4)], milestones=[2]),
    "plateau": lambda o: L.ReduceLROnPlateau(o, factor=0.5, patience=1, threshold=0.01,
                                             cooldown=1, min_lr=[0.01, 0.005]),
    "plateau_max": lambda o: L.ReduceLROnPlateau(o, mode="max", factor=0.5, patience=0,
                                                 threshold=0.01, threshold_mode="abs"),
}


def lrs(name, make):
    """The two groups' learning rates after each of 12 steps."""
    opt = O.SGD([{"params": [torch.zeros(1, requires_grad=True)]},
                 {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.02}], lr=0.1)
    s, rows = make(opt), []
    for i in range(12):
        opt.step()
        s.step(METRIC[i]) if "plateau" in name else s.step()
        rows.append([g["lr"] for g in opt.param_groups])
    return rows


def clip(norm_type):
    """clip_grad_norm_(ps, 1.5, norm_type) on float32 grads: {norm_type, total, clipped grads}."""
    a = torch.zeros(2, requires_grad=True)
    b = torch.zeros(2, 2, requires_grad=True)
    a.grad, b.grad = torch.tensor([3.0, 4.0]), torch.tensor([[1.0, -2.0], [2.0, 4.0]])
    total = torch.nn.utils.clip_grad_norm_([a, b, torch.zeros(3, requires_grad=True)], 1.5,
                                           norm_type)
    return [norm_type, total.item(), a.grad.tolist() + b.grad.reshape(-1).tolist()]


def main():
    warnings.simplefilter("ignore", UserWarning)  # SequentialLR's own step(epoch) call
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/optim.lua"
    fx = {"ref": {n: traj(m, 5) for n, m in CASES.items()},
          "groups": {n: traj(m, 3) for n, m in GROUPS.items()},
          "lrs": {n: lrs(n, m) for n, m in SCHED.items()},
          "clip": [clip(p) for p in (2, 1, float("inf"), 3)]}
    with open(out, "w") as f:
        f.write("-- tests/fixtures/optim.lua: written by scripts/gen_optim_fixtures.py (torch %s);"
                " do not edit.\nreturn {\n" % torch.__version__)
        for k, v in fx.items():
            f.write("%s = {\n%s,\n},\n" % (k, ",\n".join(
                "%s=%s" % (lualit.key(n), lualit.value(x)) if isinstance(v, dict) else
                lualit.value(x) for n, x in (v.items() if isinstance(v, dict) else
                                              enumerate(v)))))
        f.write("}\n")
    print("%s: %d bytes" % (out, os.path.getsize(out)))


if __name__ == "__main__":
    main()
