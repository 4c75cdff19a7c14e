"""Batch throughput and memory: `extract_many` and `extractor run` over many short texts.

The test server (`python -m extractor.testing`) runs in its own process and answers each request
after a fixed latency with a schema-valid instance.

- records/s of `Extractor.extract_many` for 10,000 short texts at 0 ms and 100 ms server latency;
- records/s and peak memory (max RSS) of the `extractor run` command (JSONL in, JSONL out, resume
  bookkeeping, no cache) for 10,000 and 100,000 inputs — memory must stay flat: the target is that
  the larger run uses less than 1.3 times the memory of the smaller.

    python benchmarks/batch.py                     # everything (several minutes)
    python benchmarks/batch.py --small 2000 --large 20000 --skip-library
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _server import start_server
from pydantic import BaseModel

from extractor import Extractor

_CLI = (
    "import resource, sys; from extractor.cli import main; rc = main(sys.argv[1:]); "
    "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)"
)


class Note(BaseModel):
    title: str
    amount: float | None = None
    tags: list[str] = []


def library(base_url: str, count: int, concurrency: int, cache_dir: str) -> float:
    ex = Extractor(base_url=base_url, mode="json_schema", cache_dir=cache_dir)
    texts = (f"Note {i}: paid {i}.50 EUR for supplies, tags office and misc." for i in range(count))
    started = time.perf_counter()
    done = sum(1 for r in ex.extract_many(Note, texts, concurrency=concurrency) if r.ok)
    elapsed = time.perf_counter() - started
    ex.close()
    if done != count:
        raise SystemExit(f"only {done} of {count} succeeded")
    return count / elapsed


def command(base_url: str, count: int, concurrency: int, folder: Path) -> dict[str, Any]:
    source = folder / f"in-{count}.jsonl"
    with source.open("w") as handle:
        for i in range(count):
            handle.write(json.dumps({"id": f"n{i}", "text": f"Invoice {i} total {i}.50 EUR"}) + "\n")
    out = folder / f"out-{count}.jsonl"
    env = {**os.environ, "EXTRACTOR_CACHE_DIR": str(folder / "cache")}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CLI, "run", str(source), "--schema", "invoice", "-o", str(out),
         "--base-url", base_url, "--mode", "json_schema", "--concurrency", str(concurrency), "--no-cache"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    lines = sum(1 for _ in out.open()) if out.exists() else 0
    if done.returncode != 0 or lines != count:
        raise SystemExit(f"extractor run failed ({done.returncode}, {lines} lines):\n{done.stderr[-2000:]}")
    rss = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("MAXRSS_KB"))
    return {"inputs": count, "records_per_s": count / elapsed, "seconds": elapsed, "max_rss_mb": rss / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000, help="texts for the library runs")
    parser.add_argument("--small", type=int, default=10_000, help="inputs of the smaller command run")
    parser.add_argument("--large", type=int, default=100_000, help="inputs of the larger command run")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--skip-library", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"cpus": os.cpu_count(), "concurrency": args.concurrency}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if not args.skip_library:
            for latency in (0.0, 0.1):
                proc, url = start_server(latency)
                try:
                    rate = library(url, args.count, args.concurrency, str(folder / "cache"))
                finally:
                    proc.terminate()
                    proc.wait(timeout=10)
                report[f"library_{int(latency * 1000)}ms_records_per_s"] = rate
        proc, url = start_server(0.0)
        try:
            small = command(url, args.small, args.concurrency, folder)
            large = command(url, args.large, args.concurrency, folder)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        report["command"] = [small, large]
        report["memory_ratio"] = large["max_rss_mb"] / small["max_rss_mb"]
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['cpus']} CPUs, {args.concurrency} in flight")
    for latency in (0, 100):
        key = f"library_{latency}ms_records_per_s"
        if key in report:
            print(f"extract_many, {args.count} short texts, server latency {latency} ms: {report[key]:8.0f} records/s")
    for run in report["command"]:
        print(
            f"extractor run, {run['inputs']:>7} JSONL inputs, 0 ms: {run['records_per_s']:8.0f} records/s, "
            f"peak memory {run['max_rss_mb']:.0f} MB ({run['seconds']:.0f} s)"
        )
    print(f"memory, larger / smaller run: {report['memory_ratio']:.2f} (target < 1.3)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
