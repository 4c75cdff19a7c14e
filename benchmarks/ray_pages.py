"""PDF loading on Ray against loading locally, and what going through Ray costs per record.

    python benchmarks/ray_pages.py [--cpus 2] [--repeat 2] [--texts 2000] [--concurrency 32] [--json]

1. Pages per second loading every loadable PDF of `../shared/corpora/pypdf-sample-files` and
   `pypdf-resources` (with the passwords the corpora document): in one process (`Document.from_path`),
   through the local runner's pool (`extractor.runs.loader.DocumentLoader`, one worker process per CPU),
   and through `extract_dataset`'s loading stage on a local Ray cluster of `--cpus` CPUs (one task per
   `--load-batch` files, 1 CPU each; the documents pickled into Arrow blocks and counted by a second
   stage, as the extraction stage would read them). Workers are started (one run) before timing.
2. Overhead per record: `--texts` short texts extracted against the test server (in a process of its
   own, answering at once) with `Extractor.extract_many` locally and with `extract_dataset` on Ray, at
   the same concurrency; the difference over the number of texts.

Also printed: the speed-up a pool of `--cpus` processes gets on pure arithmetic at that moment (the
most any parallel loading can get on a shared or busy machine).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
import tempfile
import time
from typing import Any

from _server import start_server
from pdf_pages import CORPORA, Job, _ceiling, _loadable, _single

from extractor import Extractor
from extractor.runs.loader import DocumentLoader

NOTE = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}


def _pool(jobs: list[Job], workers: int, repeat: int) -> tuple[int, float]:
    """Pages and best seconds loading `jobs` through the local runner's `DocumentLoader`."""

    async def once(loader: DocumentLoader) -> int:
        docs = await asyncio.gather(*(loader.load(path, password=password) for path, password, _, _ in jobs))
        return sum(len(d.pages) for d in docs)

    async def measure() -> tuple[int, float]:
        loader = DocumentLoader(workers)
        try:
            await once(loader)  # starts the workers
            best, pages = float("inf"), 0
            for _ in range(repeat):
                start = time.perf_counter()
                pages = await once(loader)
                best = min(best, time.perf_counter() - start)
            return pages, best
        finally:
            await loader.aclose()

    return asyncio.run(measure())


def _count_pages(table: Any) -> Any:
    import pickle

    import pyarrow as pa

    pages = [len(pickle.loads(d).pages) if d is not None else 0 for d in table.column("document").to_pylist()]
    errors = [e for e in table.column("error").to_pylist()]
    return pa.table({"pages": pages, "error": errors})


def _ray_loading(jobs: list[Job], repeat: int, load_batch: int) -> tuple[int, float, int]:
    """Pages, best seconds and failed files loading `jobs` with `extract_dataset`'s loading stage on Ray."""
    import ray

    from extractor.runs.ray import _load_batch, _map_batches

    rows = [{"id": path, "path": path, "password": password} for path, password, _, _ in jobs]
    options = {"password": None, "pages": None, "max_file_size": None}

    def once() -> tuple[int, int]:
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        loaded = _map_batches(
            ds, functools.partial(_load_batch, options=options, skip=None), batch_size=load_batch, num_cpus=1
        )
        counted = _map_batches(loaded, _count_pages, batch_size=load_batch, num_cpus=0.25)
        out = list(counted.iter_rows())
        return sum(r["pages"] for r in out), sum(1 for r in out if r["error"])

    once()  # starts the workers
    best, pages, failed = float("inf"), 0, 0
    for _ in range(repeat):
        start = time.perf_counter()
        pages, failed = once()
        best = min(best, time.perf_counter() - start)
    return pages, best, failed


def _texts(count: int) -> list[dict[str, str]]:
    return [{"id": f"t-{i}", "text": f"Note {i}: paid {i}.50 EUR for supplies."} for i in range(count)]


def _local_records(base_url: str, count: int, concurrency: int) -> float:
    with tempfile.TemporaryDirectory() as cache:
        ex = Extractor(base_url=base_url, mode="json_schema", cache_dir=cache)
        start = time.perf_counter()
        done = sum(1 for r in ex.extract_many(NOTE, _texts(count), concurrency=concurrency) if r.ok)
        elapsed = time.perf_counter() - start
        ex.close()
    assert done == count, done
    return elapsed


def _ray_records(base_url: str, count: int, concurrency: int) -> float:
    import ray

    from extractor.runs.ray import extract_dataset

    def once(n: int) -> float:
        ds = ray.data.from_items(_texts(n))
        start = time.perf_counter()
        results = extract_dataset(ds, NOTE, base_url=base_url, mode="json_schema", concurrency=concurrency)
        done = sum(1 for r in results.iter_rows() if r["error"] is None)
        elapsed = time.perf_counter() - start
        assert done == n, done
        return elapsed

    once(min(count, 200))  # starts the workers
    return once(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster, and pool workers")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of each loading measure; the best is kept")
    parser.add_argument("--load-batch", type=int, default=1, help="files per Ray loading task")
    parser.add_argument("--texts", type=int, default=2000, help="short texts for the overhead per record")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if not CORPORA.is_dir():
        sys.exit(f"corpora not found at {CORPORA}")

    import ray

    jobs, _, failures = _loadable("auto")
    pages, single = _single(jobs, args.repeat)
    pool_pages, pooled = _pool(jobs, args.cpus, args.repeat)
    assert pool_pages == pages, (pool_pages, pages)
    ceiling = _ceiling(args.cpus)

    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    server, base_url = start_server(0.0)
    os.environ.pop("EXTRACTOR_API_KEY", None)
    try:
        ray_pages, on_ray, ray_failed = _ray_loading(jobs, args.repeat, args.load_batch)
        assert ray_pages == pages and not ray_failed, (ray_pages, pages, ray_failed)
        local = _local_records(base_url, args.texts, args.concurrency)
        remote = _ray_records(base_url, args.texts, args.concurrency)
    finally:
        server.terminate()
        server.wait()
        ray.shutdown()

    report = {
        "files": len(jobs),
        "files_failed_to_load": len(failures),
        "pages": pages,
        "single_pages_per_second": round(pages / single, 1),
        "pool_workers": args.cpus,
        "pool_pages_per_second": round(pages / pooled, 1),
        "cpu_ceiling_speedup": round(ceiling, 2),
        "ray_cpus": args.cpus,
        "ray_files_per_task": args.load_batch,
        "ray_pages_per_second": round(pages / on_ray, 1),
        "texts": args.texts,
        "concurrency": args.concurrency,
        "local_records_per_second": round(args.texts / local, 1),
        "ray_records_per_second": round(args.texts / remote, 1),
        "ray_overhead_ms_per_record": round((remote - local) / args.texts * 1000, 2),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{len(jobs)} PDFs ({pages} pages; {len(failures)} others do not load)")
    print(f"one process             {report['single_pages_per_second']:8.1f} pages/s  ({single:.2f} s)")
    print(f"pool of {args.cpus} (local runner) {report['pool_pages_per_second']:8.1f} pages/s  ({pooled:.2f} s)")
    print(f"  (a pool of {args.cpus} on pure arithmetic on this machine now: {ceiling:.2f}x one process)")
    print(
        f"Ray, {args.cpus} CPUs            {report['ray_pages_per_second']:8.1f} pages/s  ({on_ray:.2f} s, "
        f"{args.load_batch} file(s) a task)"
    )
    print(
        f"{args.texts} texts: locally {report['local_records_per_second']:.1f} records/s, on Ray "
        f"{report['ray_records_per_second']:.1f} records/s: "
        f"{report['ray_overhead_ms_per_record']:.2f} ms more per record on Ray"
    )


if __name__ == "__main__":
    main()
