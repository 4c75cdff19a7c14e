"""The review page's model: each record's values with their evidence, its source text cut into
highlight segments, its repairs, conflicts and error. Everything the page shows is decided here;
`render` only escapes and lays it out.

Evidence is computed at review time with `find_evidence_in` (strings, numbers and dates; booleans,
nulls and empty lists or objects are not looked up). A value is `found` (exact, normalized or
formatted), `partial` (only inside a longer token), `fuzzy` (an approximate match), `weak` (a number
found only as one or two digits, which most texts hold by chance: `Evidence.weak`; shown, not taken as
support), `missing` (not in the text: the record is then "unsupported"), `skipped` (not looked up) or
`unchecked` (no text to look in; the run's own `meta.unsupported`, if it looked, still flags it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

from ..._jsonpath import join_path
from ...errors import ExtractorError
from ...sources import Evidence, EvidenceMethod, find_evidence_in
from ...sources._pages import PageStarts
from .highlight import Segment, segments
from .texts import ReviewText

if TYPE_CHECKING:
    from .labels import GoldLabels

__all__ = [
    "DEFAULT_MAX_CHARS",
    "Place",
    "RecordView",
    "ReviewPage",
    "ValueStatus",
    "ValueView",
    "leaves",
    "record_view",
]

#: characters of a record's source text shown on the page (the rest is left out, with a note)
DEFAULT_MAX_CHARS: Final = 100_000

ValueStatus: TypeAlias = Literal["found", "partial", "fuzzy", "weak", "missing", "skipped", "unchecked"]


@dataclass(frozen=True)
class ValueView:
    """One extracted value: its `key` on the page, JSON `path`, the value as `shown`, its `status`, and
    where it was found (`spans` in the whole text, the first one's `page`); `beyond` when every span
    lies past the text shown. `conflict` lists `(chunk, value)` the chunks offered when they disagreed;
    `flagged` says the run itself found the value unsupported. `at` is the value's place in the
    record's data (keys and indexes), for the page's editing."""

    key: str
    path: str
    shown: str
    status: ValueStatus
    method: EvidenceMethod | None = None
    spans: tuple[tuple[int, int], ...] = ()
    page: int | None = None
    score: float = 0.0
    beyond: bool = False
    conflict: tuple[tuple[Any, str], ...] = ()
    flagged: bool = False
    at: tuple[str | int, ...] = ()


@dataclass(frozen=True)
class RecordView:
    """One record (or failure) as the page shows it."""

    index: int
    id: str
    source: str
    values: list[ValueView] = field(default_factory=list)
    text: str | None = None  # the text shown: at most max_chars of it
    total_chars: int = 0
    text_note: str | None = None
    origin: str = ""
    segments: list[Segment] = field(default_factory=list)
    repairs: dict[str, int] = field(default_factory=dict)
    conflicts: dict[str, list[tuple[Any, str]]] = field(default_factory=dict)
    flagged_paths: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    error_type: str | None = None
    error_message: str | None = None
    data: Any = None  # the record's data as OUT has it (None for a failure)

    @property
    def failed(self) -> bool:
        return self.error_type is not None

    @property
    def weak(self) -> list[ValueView]:
        """Values found only as a one- or two-digit number (shown as weak matches, not as support)."""
        return [v for v in self.values if v.status == "weak"]

    @property
    def missing(self) -> list[ValueView]:
        """Values not found in the source (or, without a text, flagged by the run)."""
        return [v for v in self.values if v.status == "missing" or (v.status == "unchecked" and v.flagged)]

    @property
    def unsupported(self) -> bool:
        return bool(self.missing)


@dataclass(frozen=True)
class ReviewPage:
    """The whole page: what was read (`out`, `errors`), the records, and lines that could not be read;
    the gold labels applied (`labels`), and the page script's `config` (the run's key, the schema)."""

    out: str
    errors: str | None
    records: list[RecordView]
    problems: list[str] = field(default_factory=list)
    max_chars: int = DEFAULT_MAX_CHARS
    labels: GoldLabels | None = None
    config: dict[str, Any] | None = None

    @property
    def failed(self) -> int:
        return sum(r.failed for r in self.records)

    @property
    def unsupported(self) -> int:
        return sum(r.unsupported for r in self.records)


def shown(value: Any) -> str:
    """A value as the page shows it: a string as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


Place: TypeAlias = tuple[str | int, ...]


def leaves(value: Any, path: str = "$", at: Place = ()) -> list[tuple[str, Place, Any]]:
    """`(path, place, value)` of every scalar, empty list and empty object in a JSON value, in order: the
    page's rows."""
    if isinstance(value, dict) and value:
        return [
            leaf for key, item in value.items() for leaf in leaves(item, join_path(path, str(key)), (*at, str(key)))
        ]
    if isinstance(value, list) and value:
        return [leaf for i, item in enumerate(value) for leaf in leaves(item, join_path(path, i), (*at, i))]
    return [(path, at, value)]


def _status(value: Any, evidence: Evidence | None, has_text: bool) -> ValueStatus:
    if value is None or isinstance(value, bool | dict | list) or (isinstance(value, str) and not value.strip()):
        return "skipped"
    if not has_text:
        return "unchecked"
    if evidence is None:
        return "skipped"
    if not evidence.found:
        return "missing"
    if evidence.weak:
        return "weak"
    return "partial" if evidence.method == "partial" else "fuzzy" if evidence.method == "fuzzy" else "found"


def _conflicts(meta: dict[str, Any]) -> dict[str, list[tuple[Any, str]]]:
    raw = meta.get("conflicts")
    out: dict[str, list[tuple[Any, str]]] = {}
    if isinstance(raw, dict):
        for path, offered in raw.items():
            if isinstance(offered, list):
                out[str(path)] = [
                    (o.get("chunk"), shown(o.get("value"))) if isinstance(o, dict) else (None, shown(o))
                    for o in offered
                ]
    return out


def _details(meta: dict[str, Any]) -> list[str]:
    """A few facts about how the record was made: model, chunks, attempts, re-asks."""
    out = [f"{name}: {meta[name]}" for name in ("model", "chunks", "attempts", "reasks") if meta.get(name)]
    return [d for d in out if len(d) < 200]


def _values(
    index: int,
    data: Any,
    evidence: dict[str, Evidence],
    has_text: bool,
    meta: dict[str, Any],
    text: ReviewText,
    limit: int,
) -> list[ValueView]:
    """The views of every value in `data`, in order."""
    conflicts = _conflicts(meta)
    flagged = set(_flagged(meta))
    starts = PageStarts(text.pages) if len(text.pages) > 1 else None  # a page number says more only then
    out: list[ValueView] = []
    for i, (path, at, value) in enumerate(leaves(data)):
        ev = evidence.get(path)
        status = _status(value, ev, has_text)
        spans = tuple(ev.spans) if ev is not None and status in ("found", "partial", "fuzzy", "weak") else ()
        out.append(
            ValueView(
                key=f"r{index}v{i}",
                path=path,
                shown=shown(value),
                status=status,
                method=ev.method if ev is not None and spans else None,
                spans=spans,
                page=starts.page_at(spans[0][0]) if starts is not None and spans else None,
                score=ev.score if ev is not None else 0.0,
                beyond=bool(spans) and all(s >= limit for s, _ in spans),
                conflict=tuple(conflicts.get(path, ())),
                flagged=path in flagged,
                at=at,
            )
        )
    return out


def _flagged(meta: dict[str, Any]) -> list[str]:
    """The paths the run itself found unsupported (`meta.unsupported`, with `run --evidence`)."""
    listed = meta.get("unsupported")
    return [p for p in listed if isinstance(p, str)] if isinstance(listed, list) else []


def _error(error: Any, name: str, default: str) -> str:
    """The error's `type` or `message` (an error that is not an object is all message)."""
    if isinstance(error, dict):
        return str(error.get(name) or default)
    return default if name == "type" or error is None else shown(error)


def record_view(
    index: int, record: dict[str, Any], text: ReviewText, *, max_chars: int = DEFAULT_MAX_CHARS
) -> RecordView:
    """The view of one line of OUT (`{"id", "source", "data", "meta"}`) or of the errors file
    (`{"id", "source", "error", "meta"}`), given its source text."""
    raw_meta = record.get("meta")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    failed = "error" in record and "data" not in record
    note = text.note
    has_text = text.text is not None
    evidence: dict[str, Evidence] = {}
    if text.text is not None and not failed:
        try:
            evidence = {e.path: e for e in find_evidence_in(record.get("data"), text.text)}
        except ExtractorError as exc:  # a blank text
            note, has_text = f"values not looked up: {exc}", False
    full = text.text or ""
    limit = max_chars if max_chars > 0 else len(full)
    shown_text = full[:limit] if text.text is not None else None
    values = [] if failed else _values(index, record.get("data"), evidence, has_text, meta, text, limit)
    repairs = meta.get("repairs")
    source = record.get("source")
    return RecordView(
        index=index,
        id=str(record.get("id")),
        source=str(source if source is not None else record.get("id")),
        values=values,
        text=shown_text,
        total_chars=len(full),
        text_note=note,
        origin=text.origin,
        segments=segments(len(shown_text or ""), [(v.key, s, e) for v in values for s, e in v.spans], text.pages),
        repairs={str(k): n for k, n in repairs.items() if isinstance(n, int)} if isinstance(repairs, dict) else {},
        conflicts=_conflicts(meta),
        flagged_paths=_flagged(meta),
        details=_details(meta),
        error_type=_error(record.get("error"), "type", "Error") if failed else None,
        error_message=_error(record.get("error"), "message", "") if failed else None,
        data=None if failed else record.get("data"),
    )
