"""Benchmark 1: start-up to first paint of a populated matrix, in a real pseudo-terminal.

The real `aurora --workspace PATH` is started in a pty, and the clock runs from just before the fork until
the terminal output contains "10000 open tasks" (the status bar, shown in the same callback that fills the
four quadrants). The baseline is the smallest Textual app (one Static) started the same way.
"""

from __future__ import annotations

import errno
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
from pathlib import Path

from tests.bench.common import N_TASKS, Row, median, ratio, secs
from tests.bench.minimal_app import MARKER as MINIMAL_MARKER

COLUMNS, LINES = 120, 40
RUNS = 5
TIMEOUT_S = 30.0
GOAL_RATIO = 2.5
GOAL_S = 0.5

_ANSI = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|P[^\x1b]*\x1b\\|[@-Z\\-_])")


def strip_ansi(data: bytes) -> bytes:
    return _ANSI.sub(b"", data)


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTUAL")}
    env.update(TERM="xterm-256color", COLUMNS=str(COLUMNS), LINES=str(LINES), COLORTERM="truecolor")
    return env


def time_to_marker(argv: list[str], marker: str) -> float:
    """Seconds from spawning `argv` in a pty until its output shows `marker`; the process is then killed."""
    env = _child_env()
    wanted = marker.encode()
    start = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal and stdin/stdout/stderr
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    output = bytearray()
    try:
        while True:
            if time.perf_counter() - start > TIMEOUT_S:
                tail = strip_ansi(bytes(output[-2000:])).decode(errors="replace")
                raise TimeoutError(f"no {marker!r} within {TIMEOUT_S} s from {argv}; output ends: {tail!r}")
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError as exc:
                if exc.errno == errno.EIO:  # the child closed the terminal (it exited)
                    chunk = b""
                else:
                    raise
            if not chunk:
                tail = strip_ansi(bytes(output[-2000:])).decode(errors="replace")
                raise RuntimeError(f"{argv} exited before showing {marker!r}; output ends: {tail!r}")
            output += chunk
            if wanted in output or wanted in strip_ansi(bytes(output)):
                return time.perf_counter() - start
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)


def aurora_argv(workspace: Path) -> list[str]:
    aurora = Path(sys.executable).with_name("aurora")
    return [str(aurora), "--workspace", str(workspace)]


def minimal_argv() -> list[str]:
    return [sys.executable, str(Path(__file__).with_name("minimal_app.py"))]


def aurora_marker(n: int = N_TASKS) -> str:
    return f"{n} open tasks"


def run(workspace: Path) -> list[Row]:
    aurora, baseline = aurora_argv(workspace), minimal_argv()
    # One unmeasured start of each: byte-code caches and the page cache are warm for all measured runs.
    time_to_marker(aurora, aurora_marker())
    time_to_marker(baseline, MINIMAL_MARKER)
    app_times: list[float] = []
    base_times: list[float] = []
    for _ in range(RUNS):  # interleaved, so drift in the machine's load hits both alike
        app_times.append(time_to_marker(aurora, aurora_marker()))
        base_times.append(time_to_marker(baseline, MINIMAL_MARKER))
    app, base = median(app_times), median(base_times)
    r = ratio(app, base)
    met = r <= GOAL_RATIO and app < GOAL_S
    print(
        f"startup 10k tasks: {app:.3f} s (median of {RUNS}) | baseline minimal Textual app {base:.3f} s | "
        f"ratio {r:.2f}x | goal <={GOAL_RATIO}x and <{GOAL_S} s | {'met' if met else 'MISSED'}"
    )
    print(f"  runs aurora:   {', '.join(f'{t:.3f}' for t in app_times)}")
    print(f"  runs baseline: {', '.join(f'{t:.3f}' for t in base_times)}")
    return [
        Row(
            "startup to populated matrix, 10k tasks",
            secs(app),
            f"minimal Textual app {secs(base)}",
            f"{r:.2f}x",
            f"<={GOAL_RATIO}x and <{GOAL_S} s",
            met,
        )
    ]
