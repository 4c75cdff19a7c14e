"""Ctrl-C in a sync call stops the work on the background loop: no request starts after it, and the
interrupt comes out as `KeyboardInterrupt` (not as an error of the cleanup)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from extractor.testing import Reply, TestServer

ROOT = Path(__file__).resolve().parents[1]

# Runs in a subprocess: one sync call against the server, which answers 500 to everything (so the
# retries go on, 10 attempts 0.2-0.3 s apart); interrupted, the process lives on for 2.5 s (as a
# notebook or a REPL would) before it exits.
SCRIPT = r"""
import sys, time
from pydantic import BaseModel
from extractor import Extractor, RetryPolicy

class Invoice(BaseModel):
    number: str

base_url, call, cache = sys.argv[1:4]
ex = Extractor(
    base_url=base_url, mode="json_schema", cache_dir=cache,
    retry=RetryPolicy(attempts=10, base_delay=0.2, max_delay=0.3),
)
try:
    if call == "extract":
        ex.extract(Invoice, "Invoice A-1")
    else:
        for result in ex.extract_many(Invoice, [f"Invoice {i}" for i in range(50)], concurrency=4):
            pass
except KeyboardInterrupt:
    print("interrupted: KeyboardInterrupt", flush=True)
    time.sleep(2.5)
    sys.exit(130)
except BaseException as exc:
    print(f"other: {type(exc).__name__}: {exc}", flush=True)
    sys.exit(1)
print("finished without an interrupt", flush=True)
sys.exit(2)
"""


def _interruptible() -> None:
    """In the child, before it starts: SIGINT as a terminal gives it, even when this test runs where SIGINT
    is ignored (a background job of a shell without job control passes SIG_IGN on to its children)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a subprocess is POSIX")
@pytest.mark.parametrize("call", ["extract", "extract_many"])
def test_ctrl_c_stops_the_requests_and_raises_keyboard_interrupt(call: str, tmp_path: Path) -> None:
    with TestServer() as server:
        server.handler = lambda request: Reply.status_error(500)
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "EXTRACTOR_BASE_URL"}
        env["PYTHONPATH"] = str(ROOT)  # this tree's package, whatever is installed
        proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, server.base_url, call, str(tmp_path / "cache")],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=_interruptible,
        )  # fmt: skip
        killer = threading.Timer(120, proc.kill)  # whatever happens, the test ends
        killer.start()
        try:
            assert wait_for(lambda: server.chat_requests or proc.poll() is not None, 60)
            assert proc.poll() is None, proc.communicate()
            proc.send_signal(signal.SIGINT)
            assert proc.stdout is not None
            first = proc.stdout.readline().strip()  # printed once the interrupt came out of the call
            time.sleep(0.5)  # a request sent just before the interrupt may still be on its way
            before = len(server.chat_requests)
            time.sleep(2.0)  # the process sleeps 2.5 s after the interrupt: its retries would go on
            after = len(server.chat_requests)
            out, err = proc.communicate(timeout=60)
        finally:
            killer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert first == "interrupted: KeyboardInterrupt", (first, out, err)  # today (extract_many): RuntimeError
    assert proc.returncode == 130
    assert "RuntimeError" not in err, err
    assert after == before, f"{after - before} requests after the interrupt"  # today: the retries go on
