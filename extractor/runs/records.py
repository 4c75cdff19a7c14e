"""The OUT line's format: what `extractor run`, provider batches and Ray write for one input's outcome.

An OUT line is `{"id", "source", "data", "meta"}` (the record, `data` dumped by the compiled schema);
an errors-file line is `{"id", "source", "error": {"type", "message"}, "meta"}`. `meta` says how the
record was made (attempts, usage, cost, model, mode, repairs, conflicts...), never the API key.
"""

from __future__ import annotations

from typing import Any

from ..output.repairs import summarize_repairs
from ..schema import CompiledSchema
from .runner import BatchResult
from .sink import JsonlSink

__all__ = ["record_meta", "write_record"]


def record_meta(result: BatchResult[Any]) -> dict[str, Any]:
    """What a record says about how it was made (never the API key)."""
    r = result.result
    usage = result.usage
    meta: dict[str, Any] = dict(result.meta)
    meta.update(
        {
            "attempts": len(r.attempts) if r else len(getattr(result.error, "attempts", None) or []),
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "reasoning_tokens": usage.reasoning_tokens,
            },
            "cost": round(usage.cost, 8),
        }
    )
    conflicts = r.conflicts if r is not None else getattr(result.error, "conflicts", None)
    if conflicts:  # chunks of a long document that disagreed: kept as data, whichever value was used
        meta["conflicts"] = {
            path: [{"chunk": index + 1, "value": value} for index, value in offered]
            for path, offered in conflicts.items()
        }
    if r is not None:
        meta.update(
            {
                "model": r.model,
                "mode": r.mode,
                "reasks": r.reasks,
                "cached": all(a.cached for a in r.attempts),
                "repairs": summarize_repairs(r.repairs),
                "latency": round(r.latency, 3),
                "finish_reason": r.finish_reason,
                "generation_id": r.generation_id,
            }
        )
        if r.chunks:
            meta["chunks"] = len(r.chunks)
        if r.fallbacks:
            meta["fallbacks"] = r.fallbacks
        if r.evidence is not None:
            meta["unsupported"] = [e.path for e in r.unsupported]
    return meta


def write_record(result: BatchResult[Any], compiled: CompiledSchema[Any], sink: JsonlSink) -> None:
    """One input's outcome written: its record to OUT, or its error to the errors file (an input not
    started writes nothing: it is left for the next run)."""
    if result.skipped:
        return
    if result.ok:
        data = compiled.dump(result.value)
        sink.write_ok({"id": result.id, "source": result.source, "data": data, "meta": record_meta(result)})
    else:
        error = {"type": type(result.error).__name__, "message": str(result.error)}
        sink.write_error({"id": result.id, "source": result.source, "error": error, "meta": record_meta(result)})
