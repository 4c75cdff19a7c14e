"""Time and peak memory of loading decompression bombs with `Document.from_path`, each in a fresh process.

The bombs are made here, as the tests make them (`tests/pdf_samples.py`): a 3-page PDF whose small
compressed content streams each decode to tens of megabytes of text-showing operations (and one at
half that size, under the limit of decoded content per page, stopped by the one on characters), and
16 large RGB images decoded from small compressed streams, one per page or all on one page. Each is
loaded in a child process; its wall time and peak resident memory are printed with what came back
(the document, or the error naming the limit). `--timeout` stops a load that runs too long.

    python benchmarks/bombs.py [--timeout 600] [--text-mb 20] [--image-side 4000]

To measure another checkout's loader on the same bombs: `PYTHONPATH=/path/to/checkout python benchmarks/bombs.py`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from pdf_samples import image_bomb_pdf, text_bomb_pdf  # noqa: E402

# Runs in the child: loads the file, prints one JSON line with what came back and the peak memory.
CHILD = r"""
import json, resource, sys, time
from extractor.sources import Document
started = time.perf_counter()
try:
    doc = Document.from_path(sys.argv[1])
    outcome = f"loaded: {len(doc.pages)} pages, {len(doc.text):,} characters, {len(doc.images)} images"
    if doc.warnings:
        outcome += f"; warnings: {doc.warnings[0][:150]}"
except Exception as exc:
    outcome = f"{type(exc).__name__}: {str(exc)[:200]}"
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, "outcome": outcome}))
"""


def measure(path: Path, timeout: float) -> str:
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(path)],
            cwd=path.parent,  # not the project's folder: `PYTHONPATH` (or the installed package) decides
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"did not finish within {timeout:g} s (stopped)"
    if done.returncode != 0 or not done.stdout.strip():
        return f"the loading process died (exit {done.returncode}) after {time.perf_counter() - started:.1f} s"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return f"{result['seconds']:.1f} s, peak {result['peak_mb']:.0f} MB: {result['outcome']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds each load may take")
    parser.add_argument("--text-mb", type=int, default=20, help="decoded megabytes of each text page")
    parser.add_argument("--image-side", type=int, default=4000, help="width and height of each page image")
    args = parser.parse_args(argv)
    side = args.image_side
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        bombs = [
            (f"3 pages of {args.text_mb} MB of text operations each", text_bomb_pdf(
                folder / "text.pdf", pages=3, decoded=args.text_mb * 1_000_000)),
            (f"3 pages of {args.text_mb // 2} MB of text operations each", text_bomb_pdf(
                folder / "half-text.pdf", pages=3, decoded=args.text_mb * 500_000)),
            (f"16 pages each with one {side} x {side} RGB image", image_bomb_pdf(
                folder / "images.pdf", pages=16, side=side)),
            (f"1 page with 16 {side} x {side} RGB images", image_bomb_pdf(
                folder / "one-page.pdf", pages=1, per_page=16, side=side)),
        ]  # fmt: skip
        for label, path in bombs:
            print(f"{label} ({path.stat().st_size:,} bytes): {measure(path, args.timeout)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
