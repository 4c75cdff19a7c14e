"""`extractor run ... --ray`: the inputs loaded and extracted on a Ray cluster, the lines written here.

The driver (this process) lists the inputs and leaves out those OUT already has, as a local run does;
the cluster reads the files and makes the requests within one shared set of limits
(`extractor.runs.ray.extract_dataset`); the results stream back here and go through the same `JsonlSink`,
so that a run killed at any point resumes with exactly one line per input.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import ExtractorError
from ..runs.runner import BatchItem, BatchResult
from ..runs.sink import JsonlSink
from ..schema import CompiledSchema
from .progress import Reporter, RunStats
from .records import write_result

__all__ = ["run_on_ray"]

log = logging.getLogger("extractor")


def _rows(
    items: Iterator[BatchItem],
    compiled: CompiledSchema[Any],
    sink: JsonlSink,
    stats: RunStats,
) -> list[dict[str, Any]]:
    """The inputs as dataset rows; those known to fail already (unreadable JSONL lines...) written at once."""
    rows: list[dict[str, Any]] = []
    for item in items:
        error = item.error
        source = item.source
        if error is None and not isinstance(source, (str, Path)):
            error = ExtractorError(f"cannot run on Ray: a {type(source).__name__} input")
        if error is not None:
            write_result(BatchResult(item.id, item.name, None, error=error, meta=item.meta), compiled, sink, stats)
            continue
        rows.append(
            {
                "id": item.id,
                "source": item.name,
                "path": str(source) if isinstance(source, Path) else None,
                "text": source if isinstance(source, str) else None,
                "password": item.password,
                "meta": json.dumps(item.meta, ensure_ascii=False),
            }
        )
    return rows


def _count(stats: RunStats, row: Mapping[str, Any]) -> None:
    """A result row counted as `extractor run` counts its results."""
    meta = json.loads(row["meta"]) if row.get("meta") else {}
    usage = meta.get("usage") or {}
    stats.prompt_tokens += int(usage.get("prompt_tokens") or 0)
    stats.completion_tokens += int(usage.get("completion_tokens") or 0)
    stats.cost += float(meta.get("cost") or 0.0)
    error = json.loads(row["error"]) if row.get("error") else None
    if row.get("skipped"):
        if error is not None and error.get("type") == "RunStoppedError":
            stats.stopped += 1
        else:
            stats.skipped += 1
    elif error is None:
        stats.ok += 1
        repairs = meta.get("repairs") or {}
        if repairs:
            stats.repaired += 1
            stats.repair_kinds.update(repairs)
        stats.reasked += 1 if meta.get("reasks") else 0
        stats.cached += 1 if meta.get("cached") else 0
    else:
        stats.failed += 1
        stats.error_types[str(error.get("type"))] += 1


def run_on_ray(
    address: str | None,
    schema: Any,
    compiled: CompiledSchema[Any],
    items: Iterator[BatchItem],
    sink: JsonlSink,
    stats: RunStats,
    *,
    model: str,
    base_url: str | None,
    api_key: str | None,
    timeout: float,
    concurrency: int,
    requests_per_minute: float | None,
    tokens_per_minute: float | None,
    max_cost: float | None,
    max_file_size: int | None,
    options: Mapping[str, Any],
) -> str | None:
    """Run the inputs on Ray (connecting to `address`, or starting a local cluster), writing each result
    through `sink`; returns why the run stopped, if it did."""
    from ..runs.ray import WriteCounts, _ray, extract_dataset, write_row

    ray = _ray()
    rows = _rows(items, compiled, sink, stats)
    if not rows:
        return None  # nothing left to do: no cluster needed
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    if not log.isEnabledFor(logging.INFO):  # the run's own progress line says how it goes
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    results = extract_dataset(
        ray.data.from_items(rows),
        schema,
        base_url=base_url,
        api_key=api_key,
        model=model,
        concurrency=concurrency,
        requests_per_minute=requests_per_minute,
        tokens_per_minute=tokens_per_minute,
        max_cost=max_cost,
        max_file_size=max_file_size,
        timeout=timeout,
        **options,
    )
    counts = WriteCounts()
    with Reporter(stats) as reporter:
        for row in results.iter_rows():
            _count(stats, row)
            write_row(sink, row, counts)
            reporter.update()
    return counts.stop_message
