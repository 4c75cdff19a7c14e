"""What the examples cost synchronously against through a provider batch API.

Runs the examples (the invoice PDFs with the bundled `invoice` schema, the resumes with `resume`,
the notes with `purchase_order`) against the project's test server twice: synchronously, and
through its Files and Batches endpoints. The test server prices tokens like Mistral Small 4 on
OpenRouter ($0.15/M in, $0.60/M out); a batch answer costs `BATCH_DISCOUNT` of that.

    python benchmarks/batch_cost.py
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from extractor import Extractor
from extractor.bundled import bundled_schema
from extractor.runs.provider import BATCH_DISCOUNT
from extractor.runs.runner import BatchItem
from extractor.testing import TestServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def work() -> list[tuple[str, list[BatchItem]]]:
    """(schema name, inputs) for each kind of example."""
    invoices = [BatchItem(p.name, p) for p in sorted((EXAMPLES / "invoices").glob("*.pdf"))]
    resumes = [BatchItem(p.name, p) for p in sorted((EXAMPLES / "texts").glob("resume-*"))]
    notes = [
        BatchItem(note["id"], note["text"])
        for note in map(json.loads, (EXAMPLES / "texts" / "notes.jsonl").read_text().splitlines())
    ]
    return [("invoice", invoices), ("resume", resumes), ("purchase_order", notes)]


async def costs(server: TestServer, folder: Path) -> list[tuple[str, int, float, float, int]]:
    rows = []
    for name, items in work():
        schema: Any = bundled_schema(name)
        ex = Extractor(base_url=server.base_url, mode="json_schema", cache_dir=folder / "cache")
        sync = 0.0
        async for result in ex.aextract_many(schema, items):
            sync += result.usage.cost
        before = len(server.chat_requests)
        job = await ex.asubmit_batch(schema, items, state=folder / f"{name}.batches.json")
        await job.wait(poll_interval=0.01)
        batch = 0.0
        async for result in job.results():
            batch += result.usage.cost
        rows.append((name, len(items), sync, batch, len(server.chat_requests) - before))
        await ex.aclose()
    return rows


def main() -> None:
    with TestServer(record=True) as server, tempfile.TemporaryDirectory() as tmp:
        server.batch_polls = 0
        rows = asyncio.run(costs(server, Path(tmp)))
    print(f"batch price: {BATCH_DISCOUNT:.0%} of the synchronous price")
    print(f"{'inputs':28s} {'sync $':>10s} {'batch $':>10s} {'ratio':>6s}  sync requests in the batch run")
    total_sync = total_batch = 0.0
    for name, count, sync, batch, extra in rows:
        total_sync += sync
        total_batch += batch
        label = f"{count} x {name}"
        print(f"{label:28s} {sync:10.6f} {batch:10.6f} {batch / sync:6.2f}  {extra}")
    print(f"{'all':28s} {total_sync:10.6f} {total_batch:10.6f} {total_batch / total_sync:6.2f}")


if __name__ == "__main__":
    main()
