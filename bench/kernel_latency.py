#!/usr/bin/python3
"""Jupyter kernel latency with jupyter_client: start to the first kernel_info_reply, and an
execute round trip of `1+1` (request to execute_reply), for tide's kernel beside Debian's
python3-ipykernel. Usage: bench/kernel_latency.py [BUILD] [runs]. Medians of `runs` starts and
of 200 round trips per kernel. The client connects before the kernel has bound its ports, and
ZeroMQ retries a refused connection after RECONNECT_IVL (100 ms): "bound" is the time until the
kernel accepts a TCP connection on its heartbeat port, the kernel's own share of the start."""
import json, os, socket, statistics, subprocess, sys, tempfile, time

import jupyter_client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, sys.argv[1] if len(sys.argv) > 1 else "build")
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
spec = tempfile.mkdtemp(prefix="tide-kernelspec-")
subprocess.run([os.path.join(ROOT, "scripts", "kernelspec.sh"), os.path.join(spec, "kernels", "tide"),
                os.path.join(BUILD, "tide")], check=True, stdout=subprocess.DEVNULL)
os.environ["JUPYTER_PATH"] = spec


def measure(name):
    starts, trips, bound = [], [], []
    for r in range(RUNS):
        km = jupyter_client.KernelManager(kernel_name=name)
        t0 = time.perf_counter()
        km.start_kernel()
        port = km.hb_port
        while True:
            s = socket.socket()
            r = s.connect_ex((km.ip, port))
            s.close()
            if r == 0:
                break
            time.sleep(0.0005)
        bound.append(time.perf_counter() - t0)
        kc = km.client()
        kc.start_channels()
        kc.kernel_info()
        while True:
            m = kc.get_shell_msg(timeout=30)
            if m["msg_type"] == "kernel_info_reply":
                break
        starts.append(time.perf_counter() - t0)
        if r == 0:
            for i in range(220):
                t1 = time.perf_counter()
                kc.execute("1+1")
                m = kc.get_shell_msg(timeout=30)
                assert m["msg_type"] == "execute_reply" and m["content"]["status"] == "ok", m
                if i >= 20:
                    trips.append(time.perf_counter() - t1)
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return [statistics.median(x) * 1e3 for x in (bound, starts, trips)]


for name in ("tide", "python3"):
    b, s, t = measure(name)
    print("%-8s bound %7.1f ms, start to kernel_info_reply %7.1f ms, execute 1+1 round trip %6.3f ms"
          % (name, b, s, t))
sys.stdout.flush()
os._exit(0)
