"""gen_fairness_fixtures.py - reference values for tests/lua/fairness_spec.lua.

Usage: /usr/bin/python3 scripts/gen_fairness_fixtures.py [OUT]   (default tests/fixtures/fairness.lua)

Fairlearn is not a dependency: its documented definitions are written here with NumPy, from the
confusion counts of each group (selection rate (TP+FP)/n, true positive rate TP/(TP+FN), false
positive rate FP/(FP+TN), precision TP/(TP+FP), accuracy (TP+TN)/n; a difference is max - min
over groups ("between_groups") or the largest |m_g - overall| ("to_overall"); a ratio is
min / max, or the smallest min(m_g / overall, overall / m_g); equalized odds takes the worse
(or the mean) of the TPR and FPR aggregates). Calibration error per group is the expected
calibration error over `bins` equal-width bins of the positive class's probability,
sum_b n_b / n |mean(y in b) - mean(p in b)|, a probability p in bin min(floor(p * bins),
bins - 1). Reweighing is Kamiran and Calders' w(g, y) = n_g n_y / (n n_gy). Percentiles are
NumPy's default (linear) interpolation. Inputs are seeded; probabilities are multiples of 1/256
(exact in float32).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lualit  # noqa: E402


def rates(y, p):
    tp = float(np.sum((y == 1) & (p == 1)))
    fp = float(np.sum((y == 0) & (p == 1)))
    tn = float(np.sum((y == 0) & (p == 0)))
    fn = float(np.sum((y == 1) & (p == 0)))
    n = len(y)

    def div(a, b):
        return a / b if b > 0 else float("nan")

    return {"count": float(n), "accuracy": div(tp + tn, n), "selection_rate": div(tp + fp, n),
            "tpr": div(tp, tp + fn), "fpr": div(fp, fp + tn), "precision": div(tp, tp + fp)}


def ece(y, prob, bins):
    b = np.minimum(np.floor(prob * bins), bins - 1).astype(int)
    total = 0.0
    for k in range(bins):
        m = b == k
        if m.sum() > 0:
            total += m.sum() / len(y) * abs(y[m].mean() - prob[m].mean())
    return total


def difference(by, overall, method):
    v = np.array([x for x in by if x == x])
    if method == "between_groups":
        return float(v.max() - v.min())
    return float(np.max(np.abs(v - overall)))


def ratio(by, overall, method):
    v = np.array([x for x in by if x == x])
    if method == "between_groups":
        return float(v.min() / v.max()) if v.max() > 0 else float("nan")
    return float(np.min(np.minimum(v / overall, overall / v)))


def case(name, rng, n, groups, base, shift, flip, bins):
    g = rng.choice(len(groups), size=n)
    # label depends on the group by `shift`; predictions copy it with flips
    y = (rng.random(n) < base + shift * g).astype(int)
    p = np.where(rng.random(n) < flip, 1 - y, y)
    prob = np.clip(np.round((0.5 * y + 0.25 + 0.3 * (rng.random(n) - 0.5)) * 256), 0, 256) / 256
    keys = [groups[i] for i in g]
    out = {"name": name, "y": y, "p": p, "prob": prob, "groups": keys, "bins": bins}
    order = sorted(set(keys))
    by = {k: rates(y[np.array(keys) == k], p[np.array(keys) == k]) for k in order}
    out["overall"] = rates(y, p)
    out["by_group"] = by
    for k in order:
        m = np.array(keys) == k
        by[k]["ece"] = ece(y[m], prob[m], bins)
    out["overall"]["ece"] = ece(y, prob, bins)
    dis = {}
    for method in ("between_groups", "to_overall"):
        sel = [by[k]["selection_rate"] for k in order]
        tpr = [by[k]["tpr"] for k in order]
        fpr = [by[k]["fpr"] for k in order]
        o = out["overall"]
        dis[method] = {
            "demographic_parity_difference": difference(sel, o["selection_rate"], method),
            "demographic_parity_ratio": ratio(sel, o["selection_rate"], method),
            "equal_opportunity_difference": difference(tpr, o["tpr"], method),
            "equal_opportunity_ratio": ratio(tpr, o["tpr"], method),
            "equalized_odds_difference": max(difference(tpr, o["tpr"], method),
                                             difference(fpr, o["fpr"], method)),
            "equalized_odds_ratio": min(ratio(tpr, o["tpr"], method), ratio(fpr, o["fpr"], method)),
            "equalized_odds_difference_mean": (difference(tpr, o["tpr"], method) +
                                               difference(fpr, o["fpr"], method)) / 2,
        }
    out["disparities"] = dis
    ny = {c: float(np.sum(y == c)) for c in (0, 1)}
    w = {}
    for k in order:
        m = np.array(keys) == k
        w[k] = {c: float(m.sum() * ny[c] / (n * np.sum(m & (y == c)))) for c in (0, 1)
                if np.sum(m & (y == c)) > 0}
    out["reweighing"] = w
    return out


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/fairness.lua"
    rng = np.random.default_rng(20260)
    cases = [case("two_groups", rng, 300, ["a", "b"], 0.3, 0.3, 0.15, 10),
             case("three_groups", rng, 500, ["x", "y", "z"], 0.2, 0.25, 0.2, 5),
             case("small", rng, 40, ["p", "q"], 0.4, 0.2, 0.3, 4)]
    xs = np.round(rng.normal(size=37) * 1000) / 1000
    quant = {"xs": np.sort(xs), "q": [0.025, 0.5, 0.975],
             "expected": [float(np.percentile(xs, 100 * q)) for q in (0.025, 0.5, 0.975)]}
    with open(out, "w") as f:
        f.write("-- tests/fixtures/fairness.lua: written by scripts/gen_fairness_fixtures.py "
                "(NumPy %s); do not edit.\n" % np.__version__)
        f.write("return {cases = {\n")
        for c in cases:
            f.write(lualit.value(c) + ",\n")
        f.write("}, quantile = %s}\n" % lualit.value(quant))


if __name__ == "__main__":
    main()
