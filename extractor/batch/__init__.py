"""Running many documents: a paced, budgeted runner, a response cache that makes re-runs free, and
crash-safe resumable JSONL output."""

from ..cache import CacheEntry, ResponseCache
from .budget import Budget
from .limits import AdaptiveLimit, TokenBucket
from .runner import BatchItem, BatchResult, BatchRunner
from .sink import JsonlSink, ScanReport, errors_path_for

__all__ = [
    "AdaptiveLimit",
    "BatchItem",
    "BatchResult",
    "BatchRunner",
    "Budget",
    "CacheEntry",
    "JsonlSink",
    "ResponseCache",
    "ScanReport",
    "TokenBucket",
    "errors_path_for",
]
