"""Pages per second of PDF loading (`Document.from_path`) over the real-world PDF corpora.

    python benchmarks/pdf_pages.py [--repeat N] [--workers N] [--split PAGES] [--images auto|never] [--json]

Loads every PDF of `../shared/corpora/pypdf-sample-files` and `pypdf-resources` that loads (with
the passwords the corpora document), once in this process and once spread over a
`ProcessPoolExecutor` (one worker per core; the workers are started and warmed before timing; long
PDFs are cut into one page range per worker so that one long file does not hold up the pool),
and prints pages per second for both and the speed-up, next to the speed-up the same pool gets on pure
arithmetic at that moment (the ceiling on a shared or busy machine). Also prints the share of invoice2data's
expected values that evidence matching finds in the text pypdf extracts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from extractor.errors import ExtractorError
from extractor.sources import Document, find_evidence, number_forms

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
FOLDERS = ("pypdf-sample-files", "pypdf-resources")


def _passwords() -> dict[Path, str]:
    """The password each encrypted corpus PDF opens with, from the corpora's `pdf_probe.jsonl`."""
    passwords: dict[Path, str] = {}
    for folder in FOLDERS:
        probe = CORPORA / folder / "pdf_probe.jsonl"
        for line in probe.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if "password_used" in record:
                passwords[CORPORA / folder / record["file"]] = record["password_used"]
    return passwords


Job = tuple[str, str | None, str, str | None]  # path, password, images, pages


def load(job: Job) -> int:
    """The number of pages read from one PDF, or from a page range of it (run in the workers too)."""
    path, password, images, pages = job
    doc = Document.from_path(path, password=password, images=images, pages=pages)  # type: ignore[arg-type]
    return len(doc.pages)


def _split(jobs: list[Job], pages: dict[str, int], workers: int, longer_than: int) -> list[Job]:
    """PDFs of more than `longer_than` pages cut into one page range per worker, so that one long file does not
    keep the pool waiting (each range re-reads the file's structure: more pieces cost more)."""
    out: list[Job] = []
    for path, password, images, _ in jobs:
        count = pages[path]
        if count <= longer_than or workers < 2:
            out.append((path, password, images, None))
            continue
        size = -(-count // workers)
        out.extend((path, password, images, f"{a}-{min(a + size - 1, count)}") for a in range(1, count + 1, size))
    return out


def _warm(_: int) -> int:
    return os.getpid()


def _burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def _ceiling(workers: int) -> float:
    """The speed-up the pool gets on pure Python arithmetic right now: the most PDF loading could get."""
    work = [3_000_000] * (workers * 2)
    start = time.perf_counter()
    for n in work:
        _burn(n)
    alone = time.perf_counter() - start
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_warm, range(workers * 4)))
        start = time.perf_counter()
        list(pool.map(_burn, work))
        pooled = time.perf_counter() - start
    return alone / pooled


def _loadable(images: str) -> tuple[list[Job], dict[str, int], dict[str, str]]:
    passwords = _passwords()
    jobs: list[Job] = []
    pages: dict[str, int] = {}
    failures: dict[str, str] = {}
    paths = sorted(p for folder in FOLDERS for p in (CORPORA / folder).rglob("*.pdf"))
    for path in paths:
        job: Job = (str(path), passwords.get(path), images, None)
        try:
            pages[str(path)] = load(job)
        except ExtractorError as exc:
            failures[str(path.relative_to(CORPORA))] = f"{type(exc).__name__}: {exc}"
            continue
        jobs.append(job)
    return jobs, pages, failures


def _single(jobs: list[Job], repeat: int) -> tuple[int, float]:
    best = float("inf")
    pages = 0
    for _ in range(repeat):
        start = time.perf_counter()
        pages = sum(load(job) for job in jobs)
        best = min(best, time.perf_counter() - start)
    return pages, best


def _pooled(jobs: list[Job], repeat: int, workers: int) -> tuple[int, float]:
    best = float("inf")
    pages = 0
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_warm, range(workers * 4)))
        for _ in range(repeat):
            start = time.perf_counter()
            pages = sum(pool.map(load, jobs, chunksize=1))
            best = min(best, time.perf_counter() - start)
    return pages, best


def _strings(value: Any, skip: set[str]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k not in skip and not k.startswith("date")}


def _numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [n for item in value.values() for n in _numbers(item)]
    if isinstance(value, list):
        return [n for item in value for n in _numbers(item)]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [value]
    return []


def _evidence() -> dict[str, Any]:
    """The share of invoice2data's expected strings (and numbers, as printed) found in the extracted text."""
    folder = CORPORA / "invoice2data" / "compare"
    found = total = numbers_found = numbers_total = 0
    methods: dict[str, int] = {}
    for gold_path in sorted(folder.glob("*.json")):
        pdf = gold_path.with_suffix(".pdf")
        if not pdf.is_file():
            continue
        gold = json.loads(gold_path.read_text(encoding="utf-8"))[0]
        doc = Document.from_path(pdf)
        for e in find_evidence(_strings(gold, {"desc", "currency"}), doc):
            total += 1
            found += e.found
            if e.method:
                methods[e.method] = methods.get(e.method, 0) + 1
        for number in _numbers(gold):
            numbers_total += 1
            numbers_found += any(e.found for e in find_evidence(number_forms(number), doc, whole_words=True))
    return {
        "strings_found": found,
        "strings_total": total,
        "strings_share": round(found / total, 3) if total else None,
        "by_method": methods,
        "numbers_found": numbers_found,
        "numbers_total": numbers_total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measure; the best is kept")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes in the pool")
    parser.add_argument("--images", choices=("auto", "never"), default="auto", help="take images of pages without text")
    parser.add_argument(
        "--split", type=int, default=32, help="in the pool, cut PDFs of more pages than this by worker (0: never)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if not CORPORA.is_dir():
        sys.exit(f"corpora not found at {CORPORA}")

    jobs, page_counts, failures = _loadable(args.images)
    pages, single = _single(jobs, args.repeat)
    pool_jobs = _split(jobs, page_counts, args.workers, args.split) if args.split > 0 else list(jobs)
    # most pages first, so that the pool does not end waiting on one long job
    pool_jobs.sort(key=lambda job: -(page_counts[job[0]] if job[3] is None else page_counts[job[0]] // args.workers))
    pooled_pages, pooled = _pooled(pool_jobs, args.repeat, args.workers)
    assert pooled_pages == pages
    ceiling = _ceiling(args.workers)
    report = {
        "files_loaded": len(jobs),
        "files_failed": failures,
        "pages": pages,
        "images": args.images,
        "single_seconds": round(single, 3),
        "single_pages_per_second": round(pages / single, 1),
        "workers": args.workers,
        "pool_jobs": len(pool_jobs),
        "pool_seconds": round(pooled, 3),
        "pool_pages_per_second": round(pages / pooled, 1),
        "speedup": round(single / pooled, 2),
        "cpu_ceiling_speedup": round(ceiling, 2),
        "evidence": _evidence(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{len(jobs)} PDFs loaded ({pages} pages), {len(failures)} failed:")
    for name, error in failures.items():
        print(f"  {name}: {error}")
    print(f"single process    {report['single_pages_per_second']:8.1f} pages/s  ({single:.2f} s)")
    print(
        f"pool of {args.workers} workers {report['pool_pages_per_second']:8.1f} pages/s  ({pooled:.2f} s, "
        f"{len(pool_jobs)} jobs)"
    )
    print(f"speed-up          {report['speedup']:8.2f}x  (pure arithmetic on this machine now: {ceiling:.2f}x)")
    ev = report["evidence"]
    print(
        f"invoice2data evidence: {ev['strings_found']}/{ev['strings_total']} expected strings found "
        f"({ev['strings_share']:.0%}; {ev['by_method']}), numbers as printed "
        f"{ev['numbers_found']}/{ev['numbers_total']}"
    )


if __name__ == "__main__":
    main()
