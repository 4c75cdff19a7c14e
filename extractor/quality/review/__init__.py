"""`extractor review`: one self-contained HTML page showing each record of a run beside its source text,
every extracted value highlighted where it was found (evidence computed at review time), values not
found flagged, repairs and conflicts marked, failures listed with their error, and filters for
failed and unsupported records (`#failed`, `#unsupported`, `#all`).

Large outputs: each record's source text is cut at `max_chars` characters (a note says so; values found
only later say so too), and records use `content-visibility: auto`, so the browser lays out only those
near the viewport. Records are read, rendered and written one at a time (`write_review`).

Labelling (`editing`): each value can be accepted, corrected (inputs typed by the schema) or marked not in
the source, list items removed or added, records marked unusable, from the keyboard; the work is kept in
the browser and exported by the page as `gold.jsonl` for `extractor eval`. With a GOLD file, the page
opens with its labels applied and shows where OUT disagrees with them (`labels`).
"""

from __future__ import annotations

from .build import ReviewSummary, build_page, iter_records, run_key, write_review
from .highlight import Segment, segments
from .labels import GoldLabels, RecordLabels, gold_labels
from .load import Loaded, load_output
from .model import DEFAULT_MAX_CHARS, RecordView, ReviewPage, ValueStatus, ValueView, record_view
from .render import render_page
from .texts import ReviewText, TextFinder

__all__ = [
    "DEFAULT_MAX_CHARS",
    "GoldLabels",
    "Loaded",
    "RecordLabels",
    "RecordView",
    "ReviewPage",
    "ReviewSummary",
    "ReviewText",
    "Segment",
    "TextFinder",
    "ValueStatus",
    "ValueView",
    "build_page",
    "gold_labels",
    "iter_records",
    "load_output",
    "record_view",
    "render_page",
    "run_key",
    "segments",
    "write_review",
]
