"""The test server in a process of its own, for the benchmarks (so it does not share their GIL)."""

from __future__ import annotations

import subprocess
import sys


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    """`python -m extractor.testing` answering after `latency` seconds: the process and its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "extractor.testing", "--port", "0", "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    if proc.stdout is None:
        raise RuntimeError("the test server gave no output")
    return proc, proc.stdout.readline().strip().rsplit(" ", 1)[-1]
