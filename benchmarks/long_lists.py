"""Long lists: a statement of N rows against a model whose answers stop at a completion limit.

For 1,000, 3,000 and 10,000 rows and completion limits of 4,096 and 16,384 tokens: the requests sent
against the minimum (the whole list's answer tokens / the limit, rounded up), the answers cut off,
records/s and the peak memory (max RSS) of the process. The model is the test server's `RowReader`
(in process, 4 characters a token, no latency): what is measured is the library's planning, requests,
reading and merging. Every configuration runs in a process of its own, so that peak memory is its own.

    python benchmarks/long_lists.py
    python benchmarks/long_lists.py --rows 3000 --limits 8192
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from extractor import Extractor
from extractor.testing import ModelSpec, RowReader, TestServer

MODEL = "mistralai/mistral-small-2603"
ROW = r"^(?P<date>\d{4}-\d\d-\d\d) (?P<text>[A-Z][A-Z ]+?[A-Z]) (?P<amount>-?\d+\.\d\d)$"
SHOPS = ["COFFEE SHOP", "BAKERY", "BOOK STORE", "TRAIN TICKET", "GROCERY MARKET", "PHARMACY", "CINEMA"]


class Transaction(BaseModel):
    date: str
    text: str
    amount: float


class Statement(BaseModel):
    account: str | None = None
    transactions: list[Transaction] = []


def statement(rows: int) -> tuple[str, list[dict[str, Any]]]:
    """A statement of `rows` rows, every 150th printed twice (two equal rows), and its rows."""
    lines: list[dict[str, Any]] = []
    i = 0
    while len(lines) < rows:
        day = 1 + len(lines) // 100
        row = {
            "date": f"2024-{1 + day // 28:02d}-{1 + day % 28:02d}",
            "text": SHOPS[i % 7],
            "amount": -(1 + i % 300) - 0.25,
        }
        lines.append(row)
        if i % 150 == 0 and len(lines) < rows:
            lines.append(dict(row))
        i += 1
    head = "ACME Bank\nStatement of account DE44 5001 0517 5407 3249 31\n\nDate Text Amount\n"
    return head + "\n".join(f"{r['date']} {r['text']} {r['amount']:.2f}" for r in lines) + "\n", lines


def one(rows: int, limit: int) -> dict[str, Any]:
    text, expected = statement(rows)
    answer = math.ceil(len(json.dumps({"account": None, "transactions": expected})) / 4)
    with TestServer(models=[ModelSpec(MODEL, max_completion_tokens=limit)], record=False) as server:
        reader = RowReader(ROW, convert={"amount": float}, max_completion_tokens=limit)
        server.handler = reader
        with tempfile.TemporaryDirectory() as cache:
            ex = Extractor(base_url=server.base_url, model=MODEL, mode="json_schema", cache_dir=cache)
            started = time.perf_counter()
            result = ex.extract_result(Statement, text)
            elapsed = time.perf_counter() - started
            ex.close()
    got = [t.model_dump() for t in result.value.transactions]
    return {
        "rows": rows,
        "limit": limit,
        "exact": got == expected,
        "requests": reader.requests,
        "minimum": math.ceil(answer / limit),
        "cut": reader.cut,
        "records_per_s": rows / elapsed,
        "seconds": elapsed,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000, 3_000, 10_000])
    parser.add_argument("--limits", type=int, nargs="+", default=[4_096, 16_384])
    parser.add_argument("--one", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(*args.one)))
        return
    heads = ("rows", "limit", "exact", "requests", "minimum", "cut", "records/s", "peak MB")
    print(" ".join(f"{h:>{w}}" for h, w in zip(heads, (7, 7, 6, 9, 8, 4, 10, 8), strict=True)))
    for rows in args.rows:
        for limit in args.limits:
            done = subprocess.run(
                [sys.executable, str(Path(__file__)), "--one", str(rows), str(limit)],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"{r['rows']:>7} {r['limit']:>7} {r['exact']!s:>6} {r['requests']:>9} {r['minimum']:>8} "
                f"{r['cut']:>4} {r['records_per_s']:>10.0f} {r['peak_mb']:>8.0f}"
            )


if __name__ == "__main__":
    main()
