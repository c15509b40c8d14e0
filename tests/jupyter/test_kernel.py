#!/usr/bin/python3
"""Drives `tide --kernel` with Debian's jupyter_client, as a notebook would. Run by
scripts/test.sh: python3 tests/jupyter/test_kernel.py BUILD [pattern]; the last line is
"jupyter: N passed, N failed". The kernelspec is written to a temporary JUPYTER_PATH."""
import base64, json, os, shutil, struct, subprocess, sys, tempfile, time, traceback

import jupyter_client
from jupyter_client.session import Session

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, sys.argv[1] if len(sys.argv) > 1 else "build")
PATTERN = sys.argv[2] if len(sys.argv) > 2 else ""

# the kernelspec as make install-kernel writes it, into a temporary JUPYTER_PATH
spec = tempfile.mkdtemp(prefix="tide-kernelspec-")
subprocess.run([os.path.join(ROOT, "scripts", "kernelspec.sh"), os.path.join(spec, "kernels", "tide"),
                os.path.join(BUILD, "tide")], check=True, stdout=subprocess.DEVNULL)
os.environ["JUPYTER_PATH"] = spec
with open(os.path.join(spec, "kernels", "tide", "kernel.json")) as f:
    assert json.load(f)["interrupt_mode"] == "signal"

km, kc = jupyter_client.manager.start_new_kernel(kernel_name="tide", startup_timeout=60)


def run(code, timeout=30, allow_stdin=False, stdin_hook=None):
    """executes code; returns the reply's content and the iopub messages of the cell"""
    out = []
    kw = {"stdin_hook": stdin_hook} if stdin_hook else {}
    reply = kc.execute_interactive(code, timeout=timeout, allow_stdin=allow_stdin,
                                   output_hook=lambda m: out.append(m), **kw)
    return reply["content"], out


def result(out):
    return [m["content"]["data"] for m in out if m["msg_type"] == "execute_result"]


def stream(out):
    return "".join(m["content"]["text"] for m in out if m["msg_type"] == "stream")


tests = []


def test(f):
    tests.append(f)
    return f


@test
def values():
    rep, out = run("1 + 1")
    assert rep["status"] == "ok", rep
    assert result(out)[0]["text/plain"] == "2", out
    rep, out = run("x = tide.arange(1, 6):view(2, 3)\nx")
    data = result(out)[0]
    assert data["text/plain"].endswith("[float32 tensor 2x3]"), data
    html = data["text/html"]
    assert html.count("<tr>") == 2 and html.count("<td>") == 6 and "<td>6</td>" in html, html
    rep, out = run("x = 5")
    assert rep["status"] == "ok" and result(out) == [], out
    rep, out = run("x, 'two'")
    assert result(out)[0]["text/plain"] == "5\ttwo", out


@test
def multiline_function():
    rep, out = run("function double(a)\n  return a * 2\nend\ndouble(21)")
    assert rep["status"] == "ok", rep
    assert result(out)[0]["text/plain"] == "42", out
    rep, out = run("local t = {}\nfor i = 1, 3 do t[i] = i * i end\nt")
    assert result(out)[0]["text/plain"] == "{1, 4, 9}", out


@test
def print_loop_streams_before_reply():
    msgs = []
    reply = kc.execute_interactive("for i = 1, 5 do print('step', i) end io.write('no newline')",
                                   timeout=30, output_hook=msgs.append)
    types = [m["msg_type"] for m in msgs]
    assert reply["content"]["status"] == "ok"
    # execute_interactive returns when the cell's idle status arrives: every stream came first
    assert stream(msgs) == "".join("step\t%d\n" % i for i in range(1, 6)) + "no newline", msgs
    assert types[-1] == "status" and "stream" in types
    rep, out = run("io.stderr:write('warn\\n')")
    assert [m["content"]["name"] for m in out if m["msg_type"] == "stream"] == ["stderr"], out


@test
def c_level_output_streams():
    # os.execute's child writes to fd 1 itself: the pipe carries it
    rep, out = run("os.execute('echo from-a-child')")
    assert "from-a-child\n" in stream(out), out


@test
def error_then_next_cell():
    rep, out = run("error('boom')")
    assert rep["status"] == "error" and "boom" in rep["evalue"], rep
    errs = [m for m in out if m["msg_type"] == "error"]
    assert errs and "boom" in errs[0]["content"]["traceback"][0], out
    rep, out = run("function bad() local x = nil; return x.y end\nbad()")
    assert rep["status"] == "error" and any("in function 'bad'" in l for l in rep["traceback"]), rep
    rep, out = run("y = 1 +")
    assert rep["status"] == "error" and "<eof>" in rep["evalue"], rep
    rep, out = run("'alive'")
    assert result(out)[0]["text/plain"] == "alive", out


@test
def complete():
    c = kc.complete("tide.ze", 7, reply=True, timeout=10)["content"]
    assert c["status"] == "ok" and "tide.zeros(" in c["matches"], c
    assert c["cursor_start"] == 0 and c["cursor_end"] == 7, c
    run("t = tide.ones(2)")
    c = kc.complete("y = t:su", 8, reply=True, timeout=10)["content"]
    assert c["cursor_start"] == 4 and "t:sum(" in c["matches"], c


@test
def inspect():
    c = kc.inspect("tide.zeros", 10, reply=True, timeout=10)["content"]
    assert c["status"] == "ok" and c["found"], c
    assert "tide.zeros(sizes...)" in c["data"]["text/plain"], c


@test
def is_complete():
    def ask(code):
        kc.is_complete(code)
        return kc.get_shell_msg(timeout=10)["content"]["status"]
    assert ask("function f()") == "incomplete"
    assert ask("x = 1") == "complete"
    assert ask("x = = 1") == "invalid"


@test
def input_request():
    prompts = []

    def hook(msg):
        prompts.append(msg["content"])
        kc.input("typed text")
    rep, out = run("line = io.read()\nline:upper()", allow_stdin=True, stdin_hook=hook)
    assert rep["status"] == "ok" and prompts, (rep, prompts)
    assert result(out)[0]["text/plain"] == "TYPED TEXT", out


@test
def interrupt():
    kc.execute("n = 0 while true do n = n + 1 end")
    time.sleep(0.5)
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=20)["content"]
    assert reply["status"] == "error" and "interrupted" in reply["evalue"], reply
    rep, out = run("n > 0")
    assert result(out)[0]["text/plain"] == "true", out  # the state survived


@test
def badly_signed_and_malformed_ignored():
    bad = Session(key=b"not-the-key", username="intruder")
    msg = bad.msg("execute_request", {"code": "intruder = true", "silent": False,
                                      "store_history": True, "user_expressions": {},
                                      "allow_stdin": False, "stop_on_error": True})
    bad.send(kc.shell_channel.socket, msg)
    kc.shell_channel.socket.send_multipart([b"<IDS|MSG>", b"x", b"{", b"}", b"{}", b"[1"])
    kc.shell_channel.socket.send_multipart([b"no delimiter at all"])
    rep, out = run("intruder == nil")
    assert result(out)[0]["text/plain"] == "true", out
    try:
        extra = kc.get_shell_msg(timeout=0.5)
    except Exception:
        extra = None
    assert extra is None, extra


@test
def heartbeat_and_comm_info():
    assert kc.is_alive()
    kc.comm_info()
    c = kc.get_shell_msg(timeout=10)["content"]
    assert c == {"status": "ok", "comms": {}}, c


def png_size(data):
    """(width, height) of a PNG, checking its signature and IHDR chunk"""
    raw = base64.b64decode(data)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR", raw[:16]
    assert raw[-8:-4] == b"IEND", raw[-12:]
    return struct.unpack(">II", raw[16:24])


@test
def plot_inline_png():
    rep, out = run("plot.lines{title = 'x', width = 320, height = 200, {y = {1, 3, 2}}}")
    assert rep["status"] == "ok", rep
    shown = [m for m in out if m["msg_type"] == "display_data"]
    assert len(shown) == 1 and result(out) == [], out
    assert png_size(shown[0]["content"]["data"]["image/png"]) == (320, 200)


@test
def plot_live_updates_one_display():
    rep, out = run("lp = plot.live{interval = 0, width = 200, height = 150}\n"
                   "for i = 1, 3 do lp:add('loss', i, 1 / i) end\nlp:close()")
    assert rep["status"] == "ok", rep
    kinds = [m["msg_type"] for m in out if "display" in m["msg_type"]]
    assert kinds[0] == "display_data" and len(kinds) >= 3 and \
        all(k == "update_display_data" for k in kinds[1:]), kinds
    ids = {m["content"]["transient"]["display_id"] for m in out if "display" in m["msg_type"]}
    assert len(ids) == 1, ids
    last = [m for m in out if "display" in m["msg_type"]][-1]
    assert png_size(last["content"]["data"]["image/png"]) == (200, 150)


@test
def shutdown():
    kc.shutdown()
    reply = kc.get_control_msg(timeout=10) if hasattr(kc, "get_control_msg") else None
    deadline = time.time() + 10
    while km.is_alive() and time.time() < deadline:
        time.sleep(0.05)
    assert not km.is_alive(), "the kernel did not exit"
    assert reply is None or reply["content"]["status"] == "ok", reply


passed = failed = 0
for t in tests:
    if PATTERN and PATTERN not in t.__name__ and PATTERN not in "jupyter kernel":
        continue
    try:
        t()
        passed += 1
    except Exception:
        failed += 1
        print("FAIL jupyter kernel: %s" % t.__name__)
        traceback.print_exc()
if km.is_alive():
    km.shutdown_kernel(now=True)
kc.stop_channels()
shutil.rmtree(spec, ignore_errors=True)
print("jupyter: %d passed, %d failed" % (passed, failed))
sys.stdout.flush()
os._exit(1 if failed else 0)  # pyzmq's finalizers are noisy at interpreter exit
