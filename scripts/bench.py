"""scripts/bench.py: the driver of `make bench` (started by scripts/bench.sh with /usr/bin/python3).
Prints the CPU (model, caches, measured clock and FMA peak), then runs each workload's tide side
and peer side in ABBA order (tide peer, peer tide, ...) for BENCH_ROUNDS rounds after an idle-CPU
check, and prints one `BENCH name=... ratio=...` line per workload: the median of the per-round
ratios with their range, and for training the fraction of the FMA peak; a tide side that cannot
run yet is reported as tide=n/a with the reason. See doc/bench.md."""
import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(REPO, os.environ.get("BUILD", "build"))
SHARED = os.environ.get("BENCH_SHARED", os.path.join(os.path.dirname(REPO), "shared", "bench"))
TIDE = os.path.join(BUILD, "tide")
PY = "/usr/bin/python3"
OMPBLAS = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
THREADS = os.environ.get("BENCH_THREADS", "2")
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "5")))
PEER = os.environ.get("BENCH_PEER", "1") != "0"
TRAIN = os.environ.get("BENCH_TRAIN", "0") == "1"
# BENCH_STEPS=N: train_<workload> runs N timed steps (N/10 warm-up) on both sides: a quick check
# of the mechanics, not a figure
STEPS = (["--steps", os.environ["BENCH_STEPS"],
          "--warmup", str(max(1, int(os.environ["BENCH_STEPS"]) // 10))]
         if os.environ.get("BENCH_STEPS") else [])
ONLY = [w for w in re.split(r"[,\s]+", os.environ.get("BENCH_ONLY", "")) if w]
IDLE_BUSY = float(os.environ.get("IDLE_BUSY", "15"))   # % of the machine that counts as busy
IDLE_BUDGET = [float(os.environ.get("IDLE_WAIT", "180"))]  # seconds of waiting, whole run
RETRIES = int(os.environ.get("BENCH_RETRIES", "2"))    # reruns of a run others disturbed
FOREIGN_MAX = 0.25                                      # cores used by others during a run
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "600"))
HZ = os.sysconf("SC_CLK_TCK")
os.makedirs(os.path.join(BUILD, "bench"), exist_ok=True)
LOG = open(os.path.join(BUILD, "bench", time.strftime("bench-%Y%m%dT%H%M%S.log")), "w")

# OpenBLAS's AVX-512 kernels are reported to crash on Zen 5: Haswell kernels on both sides.
BASE_ENV = dict(os.environ, OPENBLAS_CORETYPE=os.environ.get("OPENBLAS_CORETYPE", "Haswell"))
TIDE_ENV = dict(BASE_ENV, BENCH_LIB=os.path.join(BUILD, "bench"))
C_ENV = dict(BASE_ENV, OMP_NUM_THREADS=THREADS)
# The peer's best configuration (BENCHMARKS.md): torch with 2 threads on the OpenMP OpenBLAS.
PEER_ENV = dict(BASE_ENV, BENCH_THREADS=THREADS, BENCH_CONFIG="omp",
                LD_LIBRARY_PATH=OMPBLAS + (":" + os.environ["LD_LIBRARY_PATH"]
                                           if os.environ.get("LD_LIBRARY_PATH") else ""))


def log(*a):
    print(*a, file=LOG, flush=True)


def note(msg):
    print(f"# {msg}", file=sys.stderr, flush=True)
    log(f"# {msg}")


# ---- the machine: idle checks and other processes' CPU during a run --------------------------
def cpu_times():
    f = open("/proc/stat").readline().split()[1:]
    v = [int(x) for x in f]
    busy = v[0] + v[1] + v[2] + v[5] + v[6]       # user nice system irq softirq
    return busy, sum(v[:8])


def busy_pct(seconds=0.5):
    b0, t0 = cpu_times()
    time.sleep(seconds)
    b1, t1 = cpu_times()
    return 100.0 * (b1 - b0) / max(t1 - t0, 1)


def wait_idle():
    """Waits (within the run's total IDLE_WAIT budget) until the CPUs are idle; returns busy %."""
    busy = busy_pct()
    while busy >= IDLE_BUSY and IDLE_BUDGET[0] > 0:
        note(f"machine {busy:.0f}% busy; waiting (budget {IDLE_BUDGET[0]:.0f} s)")
        t = time.time()
        time.sleep(2)
        busy = busy_pct()
        IDLE_BUDGET[0] -= time.time() - t
    return busy


CHILD = [None]   # the running child's process group: ended with the harness on Ctrl-C/TERM


def kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def on_signal(sig, _frame):
    if CHILD[0]:
        kill_group(CHILD[0])
    sys.exit(128 + sig)


RUSAGE = os.path.join(BUILD, "bench", "rusage")


def run_once(cmd, env):
    """Runs cmd; returns a dict: rc, out, err, wall, rss (peak MiB of cmd), foreign (cores other
    processes used meanwhile)."""
    wait_idle()
    # a forked child's peak RSS starts as this Python's: the small launcher forks instead
    launch = os.access(RUSAGE, os.X_OK)
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe, \
            tempfile.NamedTemporaryFile("r") as fr:
        if launch:
            cmd = [RUSAGE, fr.name, *cmd]
        b0, _ = cpu_times()
        t0 = time.time()
        try:
            p = subprocess.Popen(cmd, env=env, stdout=fo, stderr=fe, cwd=REPO,
                                 start_new_session=True)
        except OSError as e:
            return {"rc": 127, "out": "", "err": f"{cmd[0]}: {e.strerror}", "wall": 0.0,
                    "rss": 0.0, "foreign": 0.0}
        CHILD[0] = p.pid
        killer = threading.Timer(TIMEOUT, kill_group, (p.pid,))
        killer.start()
        _, status, ru = os.wait4(p.pid, 0)      # wait4, not Popen.wait: it returns the rusage
        killer.cancel()
        CHILD[0] = None
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.time() - t0
        b1, _ = cpu_times()
        fo.seek(0), fe.seek(0)
        out, err = fo.read().decode(errors="replace"), fe.read().decode(errors="replace")
        kib = fr.read().strip() if launch else ""
    rss = int(kib) / 1024.0 if kib.isdigit() else ru.ru_maxrss / 1024.0
    own = ru.ru_utime + ru.ru_stime
    foreign = max(0.0, ((b1 - b0) / HZ - own) / max(wall, 1e-3))
    rc = p.returncode if wall < TIMEOUT else "timeout"
    return {"rc": rc, "out": out, "err": err, "wall": wall, "rss": rss, "foreign": foreign}


def run(cmd, env, label):
    for attempt in range(RETRIES + 1):
        r = run_once(cmd, env)
        log(f"$ {shlex.join(cmd)}\n  rc={r['rc']} wall={r['wall']:.2f}s rss={r['rss']:.0f}MiB "
            f"foreign_cpu={r['foreign']:.2f}")
        for line in r["out"].splitlines():
            log("  " + line)
        # once the idle budget is spent the machine stays busy: a rerun would only cost time
        if r["rc"] != 0 or r["foreign"] <= FOREIGN_MAX or attempt == RETRIES:
            break
        if IDLE_BUDGET[0] <= 0:
            break
        note(f"contended run (foreign_cpu={r['foreign']:.2f}): {label}, rerun")
    r["noisy"] = r["foreign"] > FOREIGN_MAX
    return r


# ---- the CPU: what a figure was measured on ----------------------------------------------------
def cpu_info():
    """The CPU line printed first: /proc/cpuinfo's model, sysfs's L1d and L2, and bench/fmapeak.c's
    measured clock and float32 FMA peak on THREADS threads (the peak is peak_fraction's base)."""
    info = {}
    for line in open("/proc/cpuinfo"):
        k, _, v = line.partition(":")
        k = k.strip()
        if k in ("model name", "cpu family", "model") and k not in info:
            info[k] = v.strip()
    caches = {}
    base = "/sys/devices/system/cpu/cpu0/cache"
    for d in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        try:
            level, kind, size = (open(os.path.join(base, d, f)).read().strip()
                                 for f in ("level", "type", "size"))
        except OSError:
            continue
        if kind in ("Data", "Unified") and level in ("1", "2"):
            caches[f"l{level}{'d' if kind == 'Data' else ''}"] = size
    r = run([os.path.join(BUILD, "bench", "fmapeak"), THREADS], C_ENV, "fmapeak")
    vals, why = parse(r, ["clock", "fma_peak"])
    isa = re.search(r"name=fma_peak .*?isa=(\S+)", r["out"])
    line = (f'CPU model="{quote(info.get("model name", "?"))}" '
            f'family={info.get("cpu family", "?")} model={info.get("model", "?")} '
            f'l1d={caches.get("l1d", "?")} '
            f'l2={caches.get("l2", "?")} clock_ghz={fmt(vals.get("clock"))} '
            f'fma_peak_gflops={fmt(vals.get("fma_peak"))} isa={isa.group(1) if isa else "n/a"} '
            f'threads={THREADS}')
    if "fma_peak" in why:
        line += f' peak_reason="{quote(why["fma_peak"])}"'
    return line, vals.get("fma_peak")


# ---- reading results ---------------------------------------------------------------------------
def parse(r, names, gflops=None):
    """{name: value or None}, {name: reason} from RESULT/NA lines; the run's error otherwise.
    A training script's achieved gflops= go into the dict gflops, when given."""
    vals, why = {}, {}
    for line in r["out"].splitlines():
        m = re.match(r"(RESULT|NA) name=(\S+) (.*)", line)
        if not m:
            continue
        kind, name, rest = m.groups()
        if kind == "RESULT":
            v = re.search(r"(?:^| )value=(\S+)", rest)
            n = re.search(r"(?:^| )n=(\d+)", rest)
            if name == "sgemm_openblas_c" and n:       # the shared sgemm.c names its sizes n=
                name = f"sgemm_{n.group(1)}"
            if "WRONG_RESULT=1" in rest:
                why[name] = "wrong result: " + " ".join(w for w in rest.split() if "err" in w)
                continue
            # sgemm.c's value= is its best sample; compare medians with medians
            med = re.search(r"(?:^| )median=(\S+)", rest)
            vals[name] = float((med or v).group(1))
            gf = re.search(r"(?:^| )gflops=(\S+)", rest)
            if gf and gflops is not None:
                gflops[name] = float(gf.group(1))
        else:
            why[name] = rest.removeprefix("reason=")
    for name in names:
        if name not in vals and name not in why:
            why[name] = failure(r)
    return vals, why


def failure(r):
    lines = [l for l in r["err"].splitlines() if l.strip() and not l.startswith(("#", "\t"))]
    lines = [l for l in lines if not l.startswith(("stack traceback", "openblas core"))]
    if r["rc"] == "timeout":
        return f"timed out after {TIMEOUT:.0f} s"
    msg = lines[-1] if lines else f"no result (exit status {r['rc']})"
    if r["rc"] != 0 and lines:
        first = [l for l in lines if "error" in l.lower() or l.startswith("tide:")]
        msg = (first or lines)[0]
    return re.sub(r"\s+", " ", msg)[:200]


def hyperfine(cmd, env, runs, label):
    """Startup: hyperfine's median of `runs` runs of cmd, in ms, as a RESULT line. Warm-ups fill
    the page cache; one per 10 runs is enough (import torch takes about a second)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "h.json")
        r = run(["hyperfine", "-N", "--warmup", str(1 + runs // 10), "--runs", str(runs),
                 "--style", "none",
                 "--export-json", path, cmd], env, label)
        if r["rc"] == 0:
            res = json.load(open(path))["results"][0]
            r["out"] += f"RESULT name=startup value={1000 * res['median']:.3f} unit=ms\n"
            log("  " + r["out"].splitlines()[-1])
    return r


# ---- workloads ---------------------------------------------------------------------------------
def lua(script, *args):
    return [TIDE, "--threads", THREADS, os.path.join("bench", script), *args]  # cwd is REPO


def peer_py(script, *args):
    return [PY, os.path.join(SHARED, script), *args]


class Group:
    """Workloads measured by one process on each side. tide(names)/peer(names) give commands;
    lower=True when the unit is a time (ratio = peer/tide). goal is the ratio BENCHMARKS.md asks."""

    def __init__(self, names, unit, tide, peer, goal, lower=False, train=False):
        self.names, self.unit, self.tide, self.peer = names, unit, tide, peer
        self.goal, self.lower, self.train = goal, lower, train


def startup_side(cmd, env, runs, label):
    def go(_names):
        r = hyperfine(cmd, env, runs, label)
        if r["rc"] == 0:      # hyperfine's own RSS would hide tide's: one plain run for RSS
            r["rss"] = run(shlex.split(cmd), env, label + " (rss)")["rss"]
        return r
    return go


def cmd_side(make, env, label):
    return lambda names: run(make(names), env, f"{label} {','.join(names)}")


GROUPS = [
    Group(["startup"], "ms",
          startup_side(f"{TIDE} -e ''", TIDE_ENV, 30, "tide startup"),
          startup_side(f"{PY} -c 'import torch'", PEER_ENV, 5, "peer startup"), ">=50",
          lower=True),
    Group(["overhead_add", "overhead_autograd_step"], None,
          cmd_side(lambda n: lua("overhead.lua", "0.3", *n), TIDE_ENV, "tide"),
          cmd_side(lambda n: peer_py("peer_overhead.py", "0.3"), PEER_ENV, "peer"), ">=10"),
]
GROUPS.append(Group(["matmul_backward_1024"], "ms",
                    cmd_side(lambda n: lua("backward.lua", "backward"), TIDE_ENV, "tide"),
                    cmd_side(lambda n: lua("backward.lua", "two_sgemm"), TIDE_ENV,
                             "two sgemm"), ">=0.83", lower=True))
for _op in ("add_big", "sum_big"):
    GROUPS.append(Group([_op], "GB/s", cmd_side(lambda n: lua("bigops.lua", *n), TIDE_ENV, "tide"),
                        cmd_side(lambda n: [os.path.join(BUILD, "bench", "baseline"),
                                            n[0].removesuffix("_big")], C_ENV, "C loop"),
                        ">=0.77"))
for _n in (64, 256, 1024, 2048):
    GROUPS.append(Group([f"sgemm_{_n}"], "GFLOP/s",
                        cmd_side(lambda n: lua("sgemm.lua", n[0][6:]), TIDE_ENV, "tide"),
                        cmd_side(lambda n: [os.path.join(BUILD, "bench", "sgemm"), THREADS,
                                            n[0][6:]], C_ENV, "cblas"), ">=0.95"))
for _w in ("mlp", "cnn", "lstm", "autoencoder", "transformer"):
    GROUPS.append(Group([f"train_{_w}"], "tokens/s" if _w == "transformer" else "samples/s",
                        cmd_side(lambda n: lua("train.lua", n[0][6:], *STEPS), TIDE_ENV, "tide"),
                        cmd_side(lambda n: peer_py("peer_train.py", n[0][6:], *STEPS), PEER_ENV,
                                 "peer"),
                        ">=1.5", train=True))


def renamed(side, new):
    """side's run with its train_* RESULT line renamed to new: the same script measures the
    variants below (a DataLoader, tide.fit) under names of their own."""
    def go(names):
        r = side(names)
        r["out"] = re.sub(r"name=train_\w+", "name=" + new, r["out"])
        return r
    return go


# issue 5's two end-to-end figures: the DataLoader's cost against tide's own in-memory batches
# (>= 0.95: it adds < 5%), and the cnn trained through tide.fit against PyTorch's plain loop
GROUPS.append(Group(["train_cnn_loader"], "samples/s",
                    renamed(cmd_side(lambda n: lua("train.lua", "cnn", "--loader", "1"),
                                     TIDE_ENV, "tide DataLoader"), "train_cnn_loader"),
                    renamed(cmd_side(lambda n: lua("train.lua", "cnn"), TIDE_ENV,
                                     "tide in-memory"), "train_cnn_loader"),
                    ">=0.95", train=True))
GROUPS.append(Group(["train_cnn_fit"], "samples/s",
                    renamed(cmd_side(lambda n: lua("train.lua", "cnn", "--fit", "1"), TIDE_ENV,
                                     "tide.fit"), "train_cnn_fit"),
                    renamed(cmd_side(lambda n: peer_py("peer_train.py", "cnn"), PEER_ENV,
                                     "peer"), "train_cnn_fit"),
                    ">=1.0", train=True))
# issue 15: integrated gradients (50 steps, 16 images, the seed CNN) against PyTorch's autograd
GROUPS.append(Group(["explain_ig_cnn"], "images/s",
                    cmd_side(lambda n: lua("explain.lua"), TIDE_ENV, "tide"),
                    cmd_side(lambda n: [PY, os.path.join(REPO, "bench", "explain_peer.py")],
                             dict(PEER_ENV, BENCH_SHARED=SHARED), "peer"), ">=1.5"))

# issue 12: data-parallel training with mpirun (as root with doc/dist.md's variables), 2 ranks x
# 1 thread, global batch 64: against PyTorch's DDP on gloo (>= 1.5x) and against tide's own one
# process with 2 threads (>= 0.9: communication overlapped, not added); and the allreduce of a
# 10 M-parameter gradient over tcp against a raw MPI_Allreduce of the same bytes.
MPIRUN = ["mpirun", "-np", "2"]
# (both sides yield while they poll, as tide.dist asks by default: the same MPI policy)
MPI_ENV = dict(TIDE_ENV, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_mpi_yield_when_idle="1")
DDP = [*MPIRUN, TIDE, "--threads", "1", "bench/train.lua", "cnn", "--ddp", "1"]
GROUPS.append(Group(["train_cnn_ddp"], "samples/s",
                    renamed(cmd_side(lambda n: DDP, MPI_ENV, "tide DataParallel"),
                            "train_cnn_ddp"),
                    cmd_side(lambda n: [PY, "bench/peer_ddp.py"], PEER_ENV, "peer DDP (gloo)"),
                    ">=1.5", train=True))
GROUPS.append(Group(["train_cnn_ddp_vs_1p"], "samples/s",
                    renamed(cmd_side(lambda n: DDP, MPI_ENV, "tide DataParallel"),
                            "train_cnn_ddp_vs_1p"),
                    renamed(cmd_side(lambda n: lua("train.lua", "cnn"), TIDE_ENV,
                                     "tide 1 process"), "train_cnn_ddp_vs_1p"),
                    ">=0.9", train=True))
TCP = [*MPIRUN, "--mca", "btl", "self,tcp"]
GROUPS.append(Group(["allreduce_10m"], "GB/s",
                    cmd_side(lambda n: [*TCP, TIDE, "bench/allreduce.lua"], MPI_ENV,
                             "tide dist.allreduce"),
                    cmd_side(lambda n: [*TCP, os.path.join(BUILD, "bench", "allreduce")],
                             MPI_ENV, "raw MPI_Allreduce"), ">=0.9"))


def suffixed(side, sfx):
    """side's run with sfx added to every RESULT/NA name: one script measured under two names."""
    def go(names):
        r = side([n.removesuffix(sfx) for n in names])
        r["out"] = re.sub(r"^((?:RESULT|NA) name=\S+)", r"\1" + sfx, r["out"], flags=re.M)
        return r
    return go


# issue 11: int8 inference (bench/infer.lua) against PyTorch's quantized models
# (bench/peer_quant.py, best of qnnpack and onednn) and against tide's own float32 inference,
# and the int8 GEMM against the VNNI peak measured here (bench/vnnipeak.c: ratio = fraction)
INFER = [f"infer_{w}_int8_b{b}" for w in ("mlp", "cnn") for b in (1, 256)]
for _n in INFER:
    GROUPS.append(Group([_n], "samples/s", cmd_side(lambda n: lua("infer.lua", *n), TIDE_ENV, "tide"),
                        cmd_side(lambda n: [PY, os.path.join(REPO, "bench", "peer_quant.py"), *n],
                                 PEER_ENV, "peer quantized"), ">=1.5"))
for _n in INFER:
    GROUPS.append(Group([_n + "_vs_f32"], "samples/s",
                        suffixed(cmd_side(lambda n: lua("infer.lua", *n), TIDE_ENV, "tide int8"),
                                 "_vs_f32"),
                        suffixed(cmd_side(lambda n: lua("infer.lua", "--float", *n), TIDE_ENV,
                                          "tide float32"), "_vs_f32"), ">=2"))
GROUPS.append(Group(["qgemm_1024"], "GOPS",
                    cmd_side(lambda n: lua("infer.lua", *n), TIDE_ENV, "tide"),
                    cmd_side(lambda n: [os.path.join(BUILD, "bench", "vnnipeak"), THREADS],
                             C_ENV, "vnni peak"), "fraction of the peak"))
# issue 18: DP-SGD (tide.privacy) against PyTorch's fastest per-sample gradients (functorch's
# vmap(grad), bench/peer_dp.py), and against tide's own non-private step (>= 0.5)
for _w in ("mlp", "cnn"):
    GROUPS.append(Group([f"train_{_w}_dp"], "samples/s",
                        cmd_side(lambda n: lua("train.lua", n[0][6:-3], "--dp", "1"), TIDE_ENV,
                                 "tide"),
                        cmd_side(lambda n: [PY, os.path.join(REPO, "bench", "peer_dp.py"), n[0][6:-3]],
                                 dict(PEER_ENV, BENCH_SHARED=SHARED), "peer"), ">=1.5", train=True))
    GROUPS.append(Group([f"train_{_w}_dp_plain"], "samples/s",
                        renamed(cmd_side(lambda n: lua("train.lua", n[0][6:-9], "--dp", "1"),
                                         TIDE_ENV, "tide DP-SGD"), f"train_{_w}_dp_plain"),
                        renamed(cmd_side(lambda n: lua("train.lua", n[0][6:-9]), TIDE_ENV,
                                         "tide plain"), f"train_{_w}_dp_plain"),
                        ">=0.5", train=True))
UNITS = {"overhead_add": "ops/s", "overhead_autograd_step": "steps/s"}


def fmt(v):
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:.0f}"
    return f"{v:.1f}" if abs(v) >= 100 else f"{v:.3g}"


def quote(s):
    return s.replace('"', "'")


def fmt_ratio(r):
    return "n/a" if r is None else (f"{r:.0f}" if r >= 100 else f"{r:.2f}")


def measure(g, names):
    """Runs g's rounds; returns per name: tide/peer value lists, rss lists, reasons, noisy."""
    acc = {n: {"tide": [], "peer": [], "tide_rss": [], "peer_rss": [], "why": None,
               "peer_why": None, "noisy": 0, "rounds": {}, "gflops": []} for n in names}
    tide_ok, peer_on = True, PEER
    for rnd in range(ROUNDS):
        # ABBA: a drift during the run (a neighbour starting, the clock sagging) that favours
        # whichever side runs second in one round favours the other side in the next
        for side in ("tide", "peer") if rnd % 2 == 0 else ("peer", "tide"):
            if side == "tide" and not tide_ok or side == "peer" and not peer_on:
                continue
            r = (g.tide if side == "tide" else g.peer)(names)
            gflops = {}
            vals, why = parse(r, names, gflops)
            for n in names:
                a = acc[n]
                if n in vals:
                    a[side].append(vals[n])
                    a[side + "_rss"].append(r["rss"])
                    a["noisy"] += r["noisy"]
                    a["rounds"].setdefault(rnd, {})[side] = vals[n]
                    if side == "tide" and n in gflops:
                        a["gflops"].append(gflops[n])
                else:
                    a["why" if side == "tide" else "peer_why"] = why[n]
            got = [vals[n] for n in names if n in vals]
            note(f"round {rnd + 1} {side}: " + " ".join(
                f"{n}={fmt(vals.get(n))}" for n in names) + f" ({r['wall']:.1f} s)")
            if side == "tide" and rnd == 0 and not got:
                tide_ok = False     # the tide side does not exist yet: one try is enough
                # a training peer takes minutes and gives no ratio without tide
                if g.train and not TRAIN and g.names[0] not in ONLY:
                    peer_on = False
    return acc, peer_on


def round_ratios(g, a):
    """tide's advantage in each round where both sides gave a figure (ABBA pairs)."""
    out = []
    for sides in a["rounds"].values():
        t, p = sides.get("tide"), sides.get("peer")
        if t and p:
            out.append(p / t if g.lower else t / p)
    return out


def report(g, name, a, peer_on, peak):
    unit = g.unit or UNITS[name]
    t = statistics.median(a["tide"]) if a["tide"] else None
    p = statistics.median(a["peer"]) if a["peer"] else None
    ratios = round_ratios(g, a)
    ratio = statistics.median(ratios) if ratios else None
    if ratios:
        log(f"  {name} per-round ratios: " + " ".join(fmt_ratio(x) for x in ratios))
    rss = {k: f"{max(a[k]):.0f}" if a[k] else "n/a" for k in ("tide_rss", "peer_rss")}
    line = f"BENCH name={name} tide={fmt(t)} peer={fmt(p)} unit={unit} ratio={fmt_ratio(ratio)} "
    if ratios:
        line += f"ratio_range={fmt_ratio(min(ratios))}-{fmt_ratio(max(ratios))} "
    if g.train:
        frac = statistics.median(a["gflops"]) / peak if a["gflops"] and peak else None
        line += f"peak_fraction={'n/a' if frac is None else f'{frac:.3f}'} "
    line += (f"tide_rss_mib={rss['tide_rss']} peer_rss_mib={rss['peer_rss']} goal={g.goal} "
            f"rounds={len(a['tide'])}/{len(a['peer'])}")
    if a["noisy"]:
        line += f" noisy_runs={a['noisy']}"
    if t is None:
        line += f' reason="{quote(a["why"] or "not run")}"'
    if p is None and PEER:
        why = a["peer_why"] if peer_on else "skipped: tide side n/a (BENCH_TRAIN=1 runs it anyway)"
        line += f' peer_reason="{quote(why or "not run")}"'
    print(line, flush=True)
    log(line)


def main():
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if not os.access(TIDE, os.X_OK):
        sys.exit(f"bench: {TIDE} not found; run `make BUILD={os.path.relpath(BUILD, REPO)}` first")
    known = [n for g in GROUPS for n in g.names]
    bad = [w for w in ONLY if w not in known]
    if bad:
        sys.exit(f"bench: unknown workload(s) {','.join(bad)}; known: {','.join(known)}")
    cpu, peak = cpu_info()
    print(cpu, flush=True)
    log(cpu)
    note(f"tide={os.path.relpath(TIDE, REPO)} rounds={ROUNDS} threads={THREADS} "
         f"peer={'on' if PEER else 'off'} load={open('/proc/loadavg').read().split()[:3]} "
         f"log={os.path.relpath(LOG.name, REPO)}")
    for g in GROUPS:
        names = [n for n in g.names if not ONLY or n in ONLY]
        if not names:
            continue
        acc, peer_on = measure(g, names)
        for n in names:
            report(g, n, acc[n], peer_on, peak)


if __name__ == "__main__":
    main()
