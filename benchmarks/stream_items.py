"""Time to the first record against time to the whole answer, for a 1,000-record list.

The test server streams the answer in small pieces at a fixed pace (`--chunk-size` characters every
`--chunk-delay` seconds, a stand-in for a model's generation speed). `stream_items` yields each
record as soon as it is complete and valid; `extract` waits for the whole answer.

    python benchmarks/stream_items.py [--items 1000] [--chunk-size 16] [--chunk-delay 0.001]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from pydantic import BaseModel

from extractor import Extractor
from extractor.testing import Reply, TestServer


class Transaction(BaseModel):
    date: str
    description: str
    amount: float


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--chunk-size", type=int, default=16)
    parser.add_argument("--chunk-delay", type=float, default=0.001)
    args = parser.parse_args(argv)
    records = [
        {"date": f"2024-03-{1 + i % 28:02d}", "description": f"Card payment {i} at Shop {i % 17}", "amount": -i / 4}
        for i in range(args.items)
    ]
    answer = json.dumps({"value": records})
    reply = Reply(content=answer, chunk_size=args.chunk_size, chunk_delay=args.chunk_delay)
    with TemporaryDirectory() as tmp, TestServer() as server:
        ex = Extractor(base_url=server.base_url, mode="json_schema", cache_dir=Path(tmp))
        server.queue(reply)
        started = time.perf_counter()
        first = None
        count = 0
        for _ in ex.stream_items(Transaction, "a bank statement"):
            count += 1
            if first is None:
                first = time.perf_counter() - started
        streamed_total = time.perf_counter() - started
        server.queue(Reply(content=answer, chunk_size=args.chunk_size, chunk_delay=args.chunk_delay))
        started = time.perf_counter()
        whole = ex.stream(list[Transaction], "a bank statement")
        values = list(whole)[-1]
        plain_total = time.perf_counter() - started
        ex.close()
    assert count == args.items and len(values) == args.items and first is not None
    print(f"{args.items} records, {len(answer)} characters, streamed {args.chunk_size} characters every "
          f"{args.chunk_delay * 1000:g} ms")  # fmt: skip
    print(f"  first record after        {first:7.3f} s")
    print(f"  last record after         {streamed_total:7.3f} s ({count / streamed_total:.0f} records/s)")
    print(f"  the whole answer, parsed  {plain_total:7.3f} s (what a non-streaming caller waits)")
    print(f"  first record / whole      {first / plain_total:7.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
