#!/usr/bin/python3
"""Executes examples/tour.ipynb headless in the tide kernel (jupyter nbconvert --execute, the
kernelspec in a temporary JUPYTER_PATH) and checks its outputs. Usage: check_tour.py BUILD.
Prints "tour.ipynb: outputs checked" when all is well (tests/lua/examples_spec.lua looks for it)."""
import base64, json, os, re, shutil, struct, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, sys.argv[1] if len(sys.argv) > 1 else "build")
tmp = tempfile.mkdtemp(prefix="tide-tour-")
try:
    subprocess.run([os.path.join(ROOT, "scripts", "kernelspec.sh"), os.path.join(tmp, "kernels", "tide"),
                    BUILD + "/tide"], check=True, stdout=subprocess.DEVNULL)
    env = dict(os.environ, JUPYTER_PATH=tmp)
    subprocess.run(["jupyter", "nbconvert", "--to", "notebook", "--execute", "--output-dir", tmp,
                    "--ExecutePreprocessor.timeout=120", os.path.join(ROOT, "examples", "tour.ipynb")],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with open(os.path.join(tmp, "tour.ipynb")) as f:
        cells = [c for c in json.load(f)["cells"] if c["cell_type"] == "code"]
finally:
    shutil.rmtree(tmp, ignore_errors=True)


def text(v):
    return "".join(v) if isinstance(v, list) else v


def outputs(i, kind):
    return [o for o in cells[i]["outputs"] if o["output_type"] == kind]


for c in cells:
    assert not [o for o in c["outputs"] if o["output_type"] == "error"], c
x = outputs(0, "execute_result")[0]["data"]
assert text(x["text/plain"]).endswith("[float32 tensor 2x3]") and "<td>6</td>" in text(x["text/html"]), x
s = text(outputs(1, "execute_result")[0]["data"]["text/plain"])
assert s.startswith("21\n") and "3.5000" in s, s
g = outputs(2, "execute_result")[0]["data"]
assert text(g["text/plain"]).startswith("[2, 4, 6]"), g  # d(sum w^2)/dw = 2w
shown = outputs(3, "display_data")
assert len(shown) == 1, cells[3]["outputs"]  # plot.live: one display, updated in place
png = base64.b64decode(text(shown[0]["data"]["image/png"]))
assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (480, 300)
log = "".join(text(o["text"]) for o in outputs(3, "stream"))
assert "step 60" in log and log.rstrip().endswith("trained"), log
fit = text(outputs(4, "execute_result")[0]["data"]["text/plain"])
m = re.match(r"fitted y = ([-\d.]+) x ([-+\d.]+)", fit)
assert m and abs(float(m.group(1)) - 3) < 0.05 and abs(float(m.group(2)) + 2) < 0.05, fit
print("tour.ipynb: outputs checked")
