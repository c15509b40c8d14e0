#!/usr/bin/env python3
"""tests/ptyrun.py: runs a program on a real pseudo-terminal (80x24) and plays a script against it,
for the REPL specs (readline, Ctrl-C, completion only behave like this on a terminal).

usage: ptyrun.py STEP... -- PROGRAM ARGS...
  send:TEXT          type TEXT (Python escapes: \\n, \\t, \\x03 is Ctrl-C, \\x04 Ctrl-D)
  expect:REGEX       wait (10 s at most) for REGEX in the output after the previous match
  expect@SECS:REGEX  the same with its own time limit, to assert promptness
  sleep:SECS         wait, reading output
  eof                type Ctrl-D and wait for the program to end

Prints the transcript (escape sequences and \\r removed) and exits 0 when every expect matched
and the program ended with status 0; 2 when an expect timed out, 3 when the program was still
running after the last step (it is killed), else the program's status (128+N for signal N).
"""
import codecs
import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time

ANSI = re.compile(rb"\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[=>78])")


def clean(raw):
    return ANSI.sub(b"", raw).replace(b"\r", b"").replace(b"\x07", b"").decode("utf-8", "replace")


def main(argv):
    if "--" not in argv:
        sys.exit(__doc__)
    cut = argv.index("--")
    steps, cmd = argv[1:cut], argv[cut + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        os.environ.setdefault("TERM", "xterm")
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    raw = bytearray()
    alive = [True]

    def pump(seconds):
        end = time.monotonic() + seconds
        while alive[0]:
            left = end - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                return
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                alive[0] = False
                return
            raw.extend(data)

    def wait_exit(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            pump(0.05)
        return None

    cursor, failure = 0, None
    for step in steps:
        kind, _, arg = step.partition(":")
        if kind == "send":
            os.write(fd, codecs.decode(arg, "unicode_escape").encode("latin-1"))
        elif kind == "sleep":
            pump(float(arg))
        elif kind.startswith("expect"):
            limit = float(kind[7:]) if kind.startswith("expect@") else 10.0
            pattern, end = re.compile(arg), time.monotonic() + limit
            while True:
                m = pattern.search(clean(bytes(raw)), cursor)
                if m:
                    cursor = m.end()
                    break
                if time.monotonic() >= end or not alive[0]:
                    failure = "PTY: no match for /%s/ within %.1f s" % (arg, limit)
                    break
                pump(min(0.05, max(0.0, end - time.monotonic())))
            if failure:
                break
        elif kind == "eof":
            os.write(fd, b"\x04")
        else:
            sys.exit("ptyrun.py: unknown step " + step)
    status = None if failure else wait_exit(5.0)
    if status is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    pump(0.1)
    sys.stdout.write(clean(bytes(raw)))
    if failure:
        sys.stdout.write("\n" + failure + "\n")
        return 2
    if status is None:
        sys.stdout.write("\nPTY: the program was still running; killed\n")
        return 3
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
