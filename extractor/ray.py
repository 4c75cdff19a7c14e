"""Ray Data: extract a whole dataset across a cluster, with one budget and one rate limit shared by
every worker, written to resumable JSONL (`extractor.runs.ray` holds the code; this is its public name)."""

from .runs.ray import (
    RECORD_COLUMNS,
    SharedLimits,
    WriteCounts,
    done_ids,
    extract_dataset,
    shared_limits,
    sink_record,
    write_jsonl,
    write_row,
)

__all__ = [
    "RECORD_COLUMNS",
    "SharedLimits",
    "WriteCounts",
    "done_ids",
    "extract_dataset",
    "shared_limits",
    "sink_record",
    "write_jsonl",
    "write_row",
]
