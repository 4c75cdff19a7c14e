"""One input's outcome counted for the run's summary and written in the OUT line's format."""

from __future__ import annotations

from typing import Any

from ..output.repairs import summarize_repairs
from ..runs.records import write_record
from ..runs.runner import BatchResult
from ..runs.sink import JsonlSink
from ..schema import CompiledSchema
from .progress import RunStats

__all__ = ["count_result", "write_result"]


def count_result(stats: RunStats, result: BatchResult[Any]) -> None:
    """`result` added to the run's figures."""
    usage = result.usage
    stats.prompt_tokens += usage.prompt_tokens
    stats.completion_tokens += usage.completion_tokens
    stats.cost += usage.cost
    stats.cost_known = stats.cost_known and usage.cost_known
    if result.skipped:
        if result.stopped:
            stats.stopped += 1
        else:
            stats.skipped += 1
    elif result.ok and result.result is not None:
        stats.ok += 1
        r = result.result
        if r.repairs:
            stats.repaired += 1
            stats.repair_kinds.update(summarize_repairs(r.repairs))
        stats.reasked += 1 if r.reasks else 0
        stats.cached += 1 if r.attempts and all(a.cached for a in r.attempts) else 0
    else:
        stats.failed += 1
        stats.error_types[type(result.error).__name__] += 1


def write_result(result: BatchResult[Any], compiled: CompiledSchema[Any], sink: JsonlSink, stats: RunStats) -> None:
    """One input's outcome counted and written: its record to OUT, or its error to the errors file."""
    count_result(stats, result)
    write_record(result, compiled, sink)
