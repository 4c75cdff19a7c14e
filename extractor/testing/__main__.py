"""`python -m extractor.testing`: the test server in the foreground, default answers only, until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .models import ModelSpec
from .server import TestServer

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the server; print `extractor test server at <base URL>` on one line first."""
    parser = argparse.ArgumentParser(
        prog="python -m extractor.testing",
        description="An OpenAI-compatible chat-completions server answering schema-valid default answers.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free port)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer (default 0)")
    parser.add_argument("--api-key", default=None, help="require `Authorization: Bearer KEY` on chat completions")
    parser.add_argument(
        "--model", action="append", default=None, help="a model id listed on /models (repeatable; default one)"
    )
    args = parser.parse_args(argv)
    models = [ModelSpec(model) for model in args.model] if args.model else None
    server = TestServer(
        models=models, api_key=args.api_key, latency=args.latency, port=args.port, host=args.host, record=False
    )
    stopped = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        print(f"extractor test server at {server.base_url}", flush=True)
        while not stopped.wait(timeout=1.0):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
