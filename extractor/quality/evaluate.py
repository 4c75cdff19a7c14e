"""How accurate extracted records are: OUT compared with GOLD field by field, guided by the schema.

Records are paired by id (`match_records`), then each pair is walked together (`Evaluator`). Every
leaf the walk meets is one *comparison* at a *field path* (`seller.name`, `line_items[].amount`,
`tags[]`), of one of six kinds. "Empty" means null, missing, or a string that is empty once its
whitespace is stripped:

- `correct` (true positive): GOLD and OUT both have a value, and they agree;
- `both_null` (true negative): both are empty;
- `wrong` (a false positive and a false negative): both have a value, and they differ;
- `missed` (false negative): GOLD has a value, OUT is empty or lacks the whole record or list item;
- `spurious` (false positive): GOLD is empty, OUT has a value (a value in an extra list item too);
- `absent`: GOLD is empty but OUT lacks the whole record or list item it is in (not a positive
  nor a negative: it only counts against accuracy, so that a missing record misses all its fields).

Per field, and overall (summed over every field, i.e. micro-averaged):

- precision = correct / (correct + wrong + spurious)
- recall = correct / (correct + wrong + missed)
- F1 = 2 correct / (2 correct + 2 wrong + missed + spurious)  (the harmonic mean of the two)
- accuracy = (correct + both_null) / n, n = the sum of all six kinds

each None where its denominator is 0. A record is *exact* when all its comparisons are `correct`
or `both_null`; records missing from OUT are not exact.

How values agree (the schema node of the field decides, where the schema has one):

- objects: key by key over the keys either side has (schema order first); a field neither side
  mentions is not compared; an object on one side and a scalar or list on the other is `wrong`
  at the object's path;
- lists of objects: paired one to one to agree on as many fields as possible, so order does not
  matter: items identical once normalised first; then, when the rest is too large for an optimal
  assignment (`_OPTIMAL_LIMIT`), items with the same identity (a field whose values are all
  distinct, such as a line's description or SKU) by that value; then an optimal assignment of
  what is left (ties go to string similarity, then to equal positions), or, when that is still too
  large, a bounded approximation (each GOLD item scored against the few OUT items sharing the most
  values with it, the best pairs taken first), which the report names (`approximations`). GOLD
  items left over are missed, OUT items left over are spurious. Lists of scalars: multisets (each
  OUT element may match one GOLD element), approximated likewise beyond the limit. An empty or null
  list on both sides adds nothing;
- numbers (JSON numbers, never booleans), exactly: JSON files are read with decimals as they are
  written (`Decimal`), integers as integers of any size. |out - gold| <= max(tolerance,
  relative_tolerance * |gold|), computed in decimal (so 1.005 against 1.0 is within 0.005); at
  tolerance 0 the numbers must be equal (9007199254740993 is not 9007199254740992, 1e-320 is not
  0). A number that no float holds (not finite, or beyond 1.8e308 such as 1e309; integers
  excepted) never agrees. A string is read as a number only where the schema allows both a number
  and a string (a pydantic `Decimal`) and it is a plain decimal literal (`1234.50`, not `1,234.50`
  or `$5`); anywhere else a string against a number is `wrong`;
- dates: where the schema says `format: date`, both sides are read as calendar dates when they
  read as exactly one: ISO `2024-01-17` (or `2024/01/17`, `2024.01.17`), day-month-year or
  month-day-year with a 4-digit year and `.`, `/` or `-` (`17.01.2024`, `01/17/2024`; `01/02/2024`
  reads as two dates and stays text), or an English month name (`17 January 2024`, `Jan 17, 2024`).
  `format: date-time`: ISO 8601, equal when the same instant. Without a format, two strict ISO
  8601 dates or date-times are compared the same way, nothing else;
- strings: equal after Unicode NFKC, case folding and collapsing whitespace; with `fuzzy` (a ratio
  in (0, 1]) free text also agrees when `rapidfuzz.fuzz.ratio` of the normalised strings / 100 is
  at least `fuzzy`. Free text: a string field without `enum`, `const`, `format` or `pattern`;
- booleans: equal booleans only.
"""

from __future__ import annotations

import bisect
import contextlib
import decimal
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeAlias

from rapidfuzz import fuzz

from .._canonical import canonical, exact_number
from ..errors import ExtractorError
from ..schema import compile_schema
from ..schema._refs import RefResolver, UnresolvableRef

__all__ = [
    "KINDS",
    "Comparison",
    "Counts",
    "Disagreement",
    "EvalInputError",
    "EvalOptions",
    "EvalReport",
    "Evaluator",
    "Located",
    "Place",
    "Record",
    "match_records",
    "plain_json",
    "read_records",
]

Kind = Literal["correct", "both_null", "wrong", "missed", "spurious", "absent"]
#: the kinds of comparison, in report order
KINDS: tuple[Kind, ...] = ("correct", "both_null", "wrong", "missed", "spurious", "absent")
_BAD_KINDS = frozenset({"wrong", "missed", "spurious", "absent"})

_OPTIMAL_LIMIT = 2_000_000  # n*m*min(n, m) up to which list items are paired optimally (Hungarian)
#: OUT items each GOLD item is scored against in the bounded approximation (beyond `_OPTIMAL_LIMIT`)
_CANDIDATES = 8
#: a value shared by more OUT items than this says nothing about which one an item is (`EUR`, `1`)
_COMMON = 32
#: tolerances are computed to 1,000 significant digits
_TOLERANT = decimal.Context(prec=1000, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)
_ROOT = "$"


class EvalInputError(ExtractorError):
    """A GOLD or OUT file that cannot be read or paired; the message names the file and line."""


@dataclass(frozen=True)
class EvalOptions:
    """How values are compared: numeric tolerances and the fuzzy threshold (None: exact strings)."""

    tolerance: float = 0.005
    relative_tolerance: float = 0.0
    fuzzy: float | None = None

    def __post_init__(self) -> None:
        if not (self.tolerance >= 0 and math.isfinite(self.tolerance)):
            raise ValueError("tolerance must be a finite number >= 0")
        if not (self.relative_tolerance >= 0 and math.isfinite(self.relative_tolerance)):
            raise ValueError("relative_tolerance must be a finite number >= 0")
        if self.fuzzy is not None and not 0 < self.fuzzy <= 1:
            raise ValueError("fuzzy must be a ratio in (0, 1]")


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass
class Counts:
    """The comparisons of one field (or of all): how many of each kind, and the metrics they give."""

    correct: int = 0
    both_null: int = 0
    wrong: int = 0
    missed: int = 0
    spurious: int = 0
    absent: int = 0

    def add(self, kind: Kind, times: int = 1) -> None:
        setattr(self, kind, getattr(self, kind) + times)

    def merge(self, other: Counts) -> None:
        for kind in KINDS:
            self.add(kind, getattr(other, kind))

    @property
    def n(self) -> int:
        return sum(getattr(self, kind) for kind in KINDS)

    @property
    def tp(self) -> int:
        return self.correct

    @property
    def fp(self) -> int:
        return self.wrong + self.spurious

    @property
    def fn(self) -> int:
        return self.wrong + self.missed

    @property
    def precision(self) -> float | None:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float | None:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float | None:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def accuracy(self) -> float | None:
        return _ratio(self.correct + self.both_null, self.n)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.n}
        out.update({kind: getattr(self, kind) for kind in KINDS})
        out.update({"precision": self.precision, "recall": self.recall, "f1": self.f1, "accuracy": self.accuracy})
        return out


@dataclass(frozen=True)
class Disagreement:
    """One comparison that did not agree: the record, the place (`line_items[2].amount`), both values."""

    record: str
    where: str
    field: str
    kind: Kind
    gold: Any
    out: Any

    def as_json(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "where": self.where,
            "field": self.field,
            "kind": self.kind,
            "gold": plain_json(self.gold),
            "out": plain_json(self.out),
        }


#: the keys and indexes from a record's data to one value (`("line_items", 2, "amount")`)
Place: TypeAlias = tuple[str | int, ...]


@dataclass(frozen=True)
class Comparison:
    """One comparison, placed on both sides: `gold_at` and `out_at` lead from each record's data to the
    values compared (None: that side lacks the list item the value would be in); `field` is the field
    path it counts for (`line_items[].amount`)."""

    kind: Kind
    field: str
    gold_at: Place | None
    out_at: Place | None
    gold: Any
    out: Any


@dataclass
class Located:
    """Every comparison of one record (`Evaluator.locate`), and the list items only one side has: each
    GOLD item no OUT item was paired with as `(the OUT list's place, the GOLD item's place)`, each such
    OUT item as its place."""

    comparisons: list[Comparison] = field(default_factory=list)
    gold_only: list[tuple[Place, Place]] = field(default_factory=list)
    out_only: list[Place] = field(default_factory=list)


@dataclass
class EvalReport:
    """The outcome of comparing OUT with GOLD."""

    fields: dict[str, Counts] = field(default_factory=dict)
    gold_records: int = 0
    out_records: int = 0
    matched: int = 0
    exact: int = 0
    missing_ids: list[str] = field(default_factory=list)
    extra_ids: list[str] = field(default_factory=list)
    #: GOLD records marked unusable (`{"id", "unusable": true}`): left out of every count but this one
    unusable_ids: list[str] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)
    #: list paths (`line_items[]`) and how many of their lists were paired by the bounded approximation
    approximations: dict[str, int] = field(default_factory=dict)

    @property
    def overall(self) -> Counts:
        total = Counts()
        for counts in self.fields.values():
            total.merge(counts)
        return total

    @property
    def exact_rate(self) -> float | None:
        return _ratio(self.exact, self.gold_records)

    def as_json(self, *, details: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "records": {
                "gold": self.gold_records,
                "out": self.out_records,
                "matched": self.matched,
                "missing": len(self.missing_ids),
                "extra": len(self.extra_ids),
                "exact": self.exact,
                "exact_rate": self.exact_rate,
                "missing_ids": self.missing_ids,
                "extra_ids": self.extra_ids,
                "unusable": len(self.unusable_ids),
                "unusable_ids": self.unusable_ids,
            },
            "overall": self.overall.as_json(),
            "fields": {name: counts.as_json() for name, counts in self.fields.items()},
            "approximations": dict(self.approximations),
        }
        if details:
            out["disagreements"] = [d.as_json() for d in self.disagreements]
        return out


# --- the schema, as a guide -------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    """What the schema says about one place: its JSON types (None: nothing), format, and children."""

    types: frozenset[str] | None = None
    format: str | None = None
    closed: bool = False  # enum, const or pattern: not free text
    properties: Mapping[str, Any] = field(default_factory=dict)
    additional: tuple[Any, ...] = ()
    items: tuple[Any, ...] = ()

    def allows(self, kind: str) -> bool:
        if self.types is None:
            return False
        return kind in self.types or (kind == "number" and "integer" in self.types)

    @property
    def free_text(self) -> bool:
        if self.closed or self.format is not None:
            return False
        return self.types is None or self.types <= {"string", "null"}

    @property
    def is_object(self) -> bool:
        return self.types is not None and self.types - {"null"} == {"object"}


_UNKNOWN = _Node()


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def plain_json(value: Any) -> Any:
    """`value` (as read) with its decimals made JSON numbers again: a float when it reads back as the same
    number, an integer when it is one, else (beyond the float range, or more digits than a float keeps)
    the decimal's text (`"1E+309"`)."""
    if isinstance(value, Decimal):
        if exact_number(value) is not None:  # within the float range
            as_float = float(value)
            if Decimal(repr(as_float)) == value:
                return as_float
            if value == value.to_integral_value():
                return int(value)
        return str(value)
    if isinstance(value, dict):
        return {k: plain_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_json(v) for v in value]
    return value


class _Schema:
    """A JSON Schema read for guidance: `$ref`s resolved, `anyOf`/`oneOf`/`allOf` branches merged."""

    def __init__(self, schema: Any) -> None:
        self._resolver = RefResolver(schema) if isinstance(schema, dict) else None
        self._cache: dict[tuple[int, ...], _Node] = {}
        self._keep: list[Any] = []  # the raw schemas cached by id stay alive
        self.root = self.node([schema])

    def node(self, raws: Sequence[Any]) -> _Node:
        key = tuple(id(raw) for raw in raws)
        found = self._cache.get(key)
        if found is not None:
            return found
        acc = _Merged()
        for raw in raws:
            self._collect(raw, acc, 0)
        made = acc.node()
        self._cache[key] = made
        self._keep.append(raws)
        return made

    def child(self, node: _Node, key: str) -> _Node:
        if key in node.properties:
            return self.node([node.properties[key]])
        return self.node(node.additional) if node.additional else _UNKNOWN

    def items(self, node: _Node) -> _Node:
        return self.node(node.items) if node.items else _UNKNOWN

    def _collect(self, raw: Any, acc: _Merged, depth: int) -> None:
        if not isinstance(raw, dict) or depth > 64:
            return
        ref = raw.get("$ref")
        if isinstance(ref, str) and self._resolver is not None:
            with contextlib.suppress(UnresolvableRef):  # a guide: a ref out of reach guides nothing
                self._collect(self._resolver.resolve(ref)[1], acc, depth + 1)
        acc.take(raw)
        for key in ("allOf", "anyOf", "oneOf"):
            branches = raw.get(key)
            if isinstance(branches, list):
                for branch in branches:
                    self._collect(branch, acc, depth + 1)


class _Merged:
    """What the branches of one schema place say, merged (a guide, not a validator)."""

    def __init__(self) -> None:
        self.types: set[str] = set()
        self.format: str | None = None
        self.closed = False
        self.properties: dict[str, Any] = {}
        self.additional: list[Any] = []
        self.items: list[Any] = []

    def take(self, raw: Mapping[str, Any]) -> None:
        declared = raw.get("type")
        if isinstance(declared, str):
            self.types.add(declared)
        elif isinstance(declared, list):
            self.types.update(t for t in declared if isinstance(t, str))
        for key in ("enum", "const"):
            if key in raw:
                self.closed = True
                values = raw[key] if key == "enum" and isinstance(raw[key], list) else [raw[key]]
                if not isinstance(declared, str | list):
                    self.types.update(_json_type(v) for v in values)
        if isinstance(raw.get("pattern"), str):
            self.closed = True
        if isinstance(raw.get("format"), str) and self.format is None:
            self.format = raw["format"]
        properties = raw.get("properties")
        if isinstance(properties, dict):
            for name, sub in properties.items():
                self.properties.setdefault(name, sub)
            if declared is None:
                self.types.add("object")
        if isinstance(raw.get("additionalProperties"), dict):
            self.additional.append(raw["additionalProperties"])
        items = raw.get("items")
        if isinstance(items, dict):
            self.items.append(items)
        elif isinstance(items, list):  # draft 4-2019 tuple form
            self.items.extend(i for i in items if isinstance(i, dict))
        prefix = raw.get("prefixItems")
        if isinstance(prefix, list):
            self.items.extend(i for i in prefix if isinstance(i, dict))
        if (items is not None or prefix is not None) and declared is None:
            self.types.add("array")

    def node(self) -> _Node:
        return _Node(
            types=frozenset(self.types) if self.types else None,
            format=self.format,
            closed=self.closed,
            properties=self.properties,
            additional=tuple(self.additional),
            items=tuple(self.items),
        )


# --- values ---------------------------------------------------------------------------------------

_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?", re.I)
_YEAR_FIRST = re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})")
_YEAR_LAST = re.compile(r"(\d{1,2})([-/.])(\d{1,2})\2(\d{4})")
_DAY_MONTH = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?\.?[\s\-/]*([a-z]+)\.?[\s\-/,]*(\d{4})")
_MONTH_DAY = re.compile(r"([a-z]+)\.?[\s\-/]*(\d{1,2})(?:st|nd|rd|th)?[\s\-/,]*(\d{4})")
_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}


def normalise_text(text: str) -> str:
    """`text` for comparison: Unicode NFKC, case-folded, whitespace runs as one space, trimmed."""
    return " ".join(unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold()).split())


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_date(text: str, *, lenient: bool) -> date | None:
    """The one calendar date `text` reads as (None: none, or more than one). Strict: ISO `YYYY-MM-DD`
    only; lenient (where the schema says `format: date`): the forms in the module's docstring."""
    text = text.strip()
    if _ISO_DATE.fullmatch(text):
        return _date(int(text[:4]), int(text[5:7]), int(text[8:]))
    if not lenient:
        return None
    text = text.casefold()
    if m := _YEAR_FIRST.fullmatch(text):
        return _date(int(m[1]), int(m[3]), int(m[4]))
    if m := _YEAR_LAST.fullmatch(text):
        first, second, year = int(m[1]), int(m[3]), int(m[4])
        readings = {d for d in (_date(year, second, first), _date(year, first, second)) if d is not None}
        return readings.pop() if len(readings) == 1 else None
    if m := _DAY_MONTH.fullmatch(text):
        month = _MONTHS.get(m[2])
        return _date(int(m[3]), month, int(m[1])) if month else None
    if m := _MONTH_DAY.fullmatch(text):
        month = _MONTHS.get(m[1])
        return _date(int(m[3]), month, int(m[2])) if month else None
    return None


def parse_datetime(text: str) -> datetime | None:
    """An ISO 8601 date-time (`Z` for UTC allowed); None when `text` is not one."""
    text = text.strip()
    if not _ISO_DATETIME.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", text))
    except ValueError:
        return None


def _same_instant(a: datetime, b: datetime) -> bool:
    if (a.tzinfo is None) != (b.tzinfo is None):
        return False
    return a == b


# --- the walk ---------------------------------------------------------------------------------

Side = Literal["both", "gold_only", "out_only"]


class _Sink:
    """Where the walk reports each comparison (and each list it paired approximately). A sink also
    says how the place of a value is written (`where`): by default as text (`line_items[2].amount`,
    GOLD's index; `[out 3]` for an item only OUT has), starting from `root`."""

    root: Any = ""

    def add(self, path: str, kind: Kind, where: Any, gold: Any, out: Any) -> None:
        raise NotImplementedError

    def key(self, where: Any, key: str) -> Any:
        """The place of `key` in the object at `where`."""
        return _join(where, key)

    def item(self, where: Any, gold: int | None, out: int | None) -> Any:
        """The place of a list item in the list at `where`: GOLD's item `gold` paired with OUT's `out`
        (None: that side has no such item)."""
        return f"{where}[{gold}]" if gold is not None else f"{where}[out {out}]"

    def approximated(self, path: str) -> None:
        """The items of the list at `path` were paired by the bounded approximation."""


class _Score(_Sink):
    """How well two list items agree: the values they agree on, then string similarity of the rest."""

    root = None

    def __init__(self) -> None:
        self.agree = 0
        self.similar = 0.0

    def key(self, where: Any, key: str) -> Any:
        return None  # places are not needed to score a pair

    def item(self, where: Any, gold: int | None, out: int | None) -> Any:
        return None

    def add(self, path: str, kind: Kind, where: Any, gold: Any, out: Any) -> None:
        if kind == "correct":
            self.agree += 1
        elif kind == "wrong" and isinstance(gold, str) and isinstance(out, str):
            self.similar += fuzz.ratio(normalise_text(gold), normalise_text(out)) / 100


class _Tally(_Sink):
    """Counts per field for a report, the disagreements of one record, and whether it is exact."""

    def __init__(self, report: EvalReport, record: str, details: bool) -> None:
        self.report = report
        self.record = record
        self.details = details
        self.exact = True

    def add(self, path: str, kind: Kind, where: Any, gold: Any, out: Any) -> None:
        name = path or _ROOT
        counts = self.report.fields.get(name)
        if counts is None:
            counts = self.report.fields[name] = Counts()
        counts.add(kind)
        if kind in _BAD_KINDS:
            self.exact = False
            if self.details:
                self.report.disagreements.append(Disagreement(self.record, where or _ROOT, name, kind, gold, out))

    def approximated(self, path: str) -> None:
        self.report.approximations[path] = self.report.approximations.get(path, 0) + 1


class _Places(_Sink):
    """Each comparison placed on both sides (`Located`); a place is `(GOLD's, OUT's)`."""

    root = ((), ())

    def __init__(self) -> None:
        self.found = Located()

    def key(self, where: Any, key: str) -> Any:
        gold, out = where
        return (None if gold is None else (*gold, key), None if out is None else (*out, key))

    def item(self, where: Any, gold: int | None, out: int | None) -> Any:
        gold_list, out_list = where
        gold_at = None if gold is None or gold_list is None else (*gold_list, gold)
        out_at = None if out is None or out_list is None else (*out_list, out)
        if gold_at is not None and out_at is None and out_list is not None:
            self.found.gold_only.append((out_list, gold_at))
        if out_at is not None and gold_at is None and gold_list is not None:
            self.found.out_only.append(out_at)
        return (gold_at, out_at)

    def add(self, path: str, kind: Kind, where: Any, gold: Any, out: Any) -> None:
        self.found.comparisons.append(Comparison(kind, path or _ROOT, where[0], where[1], gold, out))


_PLAIN_KEY = re.compile(r'[^.\[\]"\s]+')


def _join(path: str, key: str) -> str:
    if _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _optimal(rows: int, cols: int) -> bool:
    """Whether `rows` x `cols` items are few enough to be paired by an optimal assignment."""
    return rows * cols * min(rows, cols) <= _OPTIMAL_LIMIT


def _assign(score: list[list[float]]) -> list[tuple[int, int]]:
    """One-to-one pairs (row, column), min(rows, columns) of them, with the greatest total score (the
    Hungarian algorithm: for matrices within `_optimal`)."""
    rows = len(score)
    cols = len(score[0]) if rows else 0
    if not rows or not cols:
        return []
    flipped = rows > cols
    matrix = [list(col) for col in zip(*score, strict=True)] if flipped else score
    n, m = len(matrix), len(matrix[0])
    top = max(max(row) for row in matrix)
    cost = [[top - s for s in row] for row in matrix]
    inf = math.inf
    u = [0.0] * (n + 1)
    v = [0.0] * (m + 1)
    owner = [0] * (m + 1)  # owner[j]: the row given column j (1-based, 0: none)
    way = [0] * (m + 1)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        minv = [inf] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0 = owner[j0]
            delta = inf
            j1 = 0
            row = cost[i0 - 1]
            for j in range(1, m + 1):
                if not used[j]:
                    cur = row[j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j] = cur
                        way[j] = j0
                    if minv[j] < delta:
                        delta = minv[j]
                        j1 = j
            for j in range(m + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    found = [(owner[j] - 1, j - 1) for j in range(1, m + 1) if owner[j]]
    return sorted((j, i) for i, j in found) if flipped else sorted(found)


class Evaluator:
    """Compares OUT values with GOLD ones, guided by `schema` (a JSON Schema dict, a pydantic type, or
    None for no guidance) and `options`."""

    def __init__(self, schema: Any = None, options: EvalOptions | None = None) -> None:
        self.options = options or EvalOptions()
        if schema is None:
            raw: Any = True
        elif isinstance(schema, dict | bool):
            raw = schema
        else:
            raw = compile_schema(schema).original_schema
        self._schema = _Schema(raw)

    # the whole of it

    def evaluate(self, gold: Sequence[Record], out: Sequence[Record], *, details: bool = False) -> EvalReport:
        """The report on `out` against `gold`, records paired by `match_records`. A GOLD record marked
        unusable is left out (and its OUT record with it): `unusable_ids` counts it, nothing else does."""
        pairs, extra = match_records(gold, out)
        unusable = [i for i, record in enumerate(gold) if record.unusable]
        left_out = {pairs[i] for i in unusable if i in pairs}
        report = EvalReport(gold_records=len(gold) - len(unusable), out_records=len(out) - len(left_out))
        report.extra_ids = [out[j].label for j in extra]
        report.unusable_ids = [gold[i].label for i in unusable]
        for i, record in enumerate(gold):
            if record.unusable:
                continue
            j = pairs.get(i)
            if j is None:
                report.missing_ids.append(record.label)
            else:
                report.matched += 1
            if self.compare_into(report, record.label, record.data, None if j is None else out[j].data, details):
                report.exact += 1
        return report

    def compare_into(self, report: EvalReport, record: str, gold: Any, out: Any, details: bool = False) -> bool:
        """Adds the comparisons of one record to `report` (`out` None: OUT lacks the record);
        whether every one of them agreed."""
        tally = _Tally(report, record, details)
        side: Side = "both" if out is not None else "gold_only"
        self._walk("", tally.root, self._schema.root, gold, out, tally, side)
        return tally.exact and out is not None

    def locate(self, gold: Any, out: Any) -> Located:
        """The comparisons of one record's GOLD and OUT data, each placed on both sides (for the review
        page: which value of OUT each GOLD value was compared with), and the list items one side lacks."""
        places = _Places()
        self._walk("", places.root, self._schema.root, gold, out, places, "both")
        return places.found

    def compare(self, gold: Any, out: Any) -> EvalReport:
        """The report on one pair of values (a convenience for tests and notebooks)."""
        report = EvalReport(gold_records=1, out_records=1, matched=1)
        if self.compare_into(report, "value", gold, out, details=True):
            report.exact = 1
        return report

    # values

    def agree(self, node: _Node, gold: Any, out: Any) -> bool:
        """Whether two non-empty scalars agree at `node`."""
        if isinstance(gold, bool) or isinstance(out, bool):
            return isinstance(gold, bool) and isinstance(out, bool) and gold == out
        g, o = self._number(node, gold), self._number(node, out)
        if g is not None and o is not None:
            return self._close(g, o)
        if isinstance(gold, str) and isinstance(out, str):
            return self._same_text(node, gold, out)
        return bool(gold == out)

    def _number(self, node: _Node, value: Any) -> float | int | Decimal | None:
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return value
        if (
            isinstance(value, str)
            and node.allows("number")
            and node.allows("string")
            and _DECIMAL.fullmatch(value.strip())
        ):
            return Decimal(value.strip())
        return None

    def _close(self, gold: float | int | Decimal, out: float | int | Decimal) -> bool:
        """Whether two numbers agree within the tolerances, in exact decimal arithmetic."""
        g, o = exact_number(gold), exact_number(out)
        if g is None or o is None:
            return False  # not finite, or beyond any float: never a right value
        tolerance, relative = self.options.tolerance, self.options.relative_tolerance
        if not tolerance and not relative:
            return g == o
        with decimal.localcontext(_TOLERANT):
            allowed = max(Decimal(repr(tolerance)), Decimal(repr(relative)) * abs(g))
            return abs(o - g) <= allowed

    def _same_text(self, node: _Node, gold: str, out: str) -> bool:
        if node.format == "date":
            gd, od = parse_date(gold, lenient=True), parse_date(out, lenient=True)
            if gd is not None and od is not None:
                return gd == od
        elif node.format == "date-time" or node.format is None:
            gt, ot = parse_datetime(gold), parse_datetime(out)
            if gt is not None and ot is not None:
                return _same_instant(gt, ot)
        if node.format is None:
            gd, od = parse_date(gold, lenient=False), parse_date(out, lenient=False)
            if gd is not None and od is not None:
                return gd == od
        a, b = normalise_text(gold), normalise_text(out)
        if a == b:
            return True
        fuzzy = self.options.fuzzy
        return fuzzy is not None and node.free_text and fuzz.ratio(a, b) / 100 >= fuzzy

    # structure

    def _walk(self, path: str, where: Any, node: _Node, gold: Any, out: Any, sink: _Sink, side: Side) -> None:
        if isinstance(gold, dict) or isinstance(out, dict):
            if (gold is None or isinstance(gold, dict)) and (out is None or isinstance(out, dict)):
                g: dict[str, Any] = gold or {}
                o: dict[str, Any] = out or {}
                for key in _keys(node, g, o):
                    child = self._schema.child(node, key)
                    self._walk(_join(path, key), sink.key(where, key), child, g.get(key), o.get(key), sink, side)
                return
        elif (isinstance(gold, list) or isinstance(out, list)) and (
            (gold is None or isinstance(gold, list)) and (out is None or isinstance(out, list))
        ):
            self._walk_list(path, where, node, gold or [], out or [], sink, side)
            return
        self._leaf(path, where, node, gold, out, sink, side)

    def _leaf(self, path: str, where: Any, node: _Node, gold: Any, out: Any, sink: _Sink, side: Side) -> None:
        g_empty, o_empty = _is_empty(gold), _is_empty(out)
        kind: Kind
        if side == "gold_only":
            kind = "absent" if g_empty else "missed"
        elif side == "out_only":
            if o_empty:
                return  # a null in an extra list item says nothing
            kind = "spurious"
        elif g_empty and o_empty:
            kind = "both_null"
        elif g_empty:
            kind = "spurious"
        elif o_empty:
            kind = "missed"
        elif isinstance(gold, dict | list) or isinstance(out, dict | list):
            kind = "wrong"  # an object or list against something else
        else:
            kind = "correct" if self.agree(node, gold, out) else "wrong"
        sink.add(path, kind, where, gold, out)

    def _walk_list(
        self, path: str, where: Any, node: _Node, gold: list[Any], out: list[Any], sink: _Sink, side: Side
    ) -> None:
        item = self._schema.items(node)
        item_path = f"{path}[]"
        objects = item.is_object or any(isinstance(v, dict) for v in (*gold, *out))
        # the items' places in the lists as given (empty scalars are left out of the comparison)
        gold_at: Sequence[int] = range(len(gold))
        out_at: Sequence[int] = range(len(out))
        if not objects:
            gold_at = [i for i, v in enumerate(gold) if not _is_empty(v)]
            out_at = [j for j, v in enumerate(out) if not _is_empty(v)]
            gold = [gold[i] for i in gold_at]
            out = [out[j] for j in out_at]
        pairs: list[tuple[int, int]] = []
        if side == "both" and gold and out:
            pairs = _identical(gold, out)  # most items of a good OUT: paired at once, in linear time
            left_gold = sorted(set(range(len(gold))) - {i for i, _ in pairs})
            left_out = sorted(set(range(len(out))) - {j for _, j in pairs})
            if left_gold and left_out:
                pair = self._pair if objects else self._pair_scalars
                found, approximate = pair(item, gold, out, left_gold, left_out)
                pairs += found
                if approximate:
                    sink.approximated(item_path)
        paired_gold = {i for i, _ in pairs}
        paired_out = {j for _, j in pairs}
        for i, j in sorted(pairs):
            self._walk(item_path, sink.item(where, gold_at[i], out_at[j]), item, gold[i], out[j], sink, "both")
        for i, value in enumerate(gold):
            if i not in paired_gold:
                self._walk(item_path, sink.item(where, gold_at[i], None), item, value, None, sink, "gold_only")
        for j, value in enumerate(out):
            if j not in paired_out:
                self._walk(item_path, sink.item(where, None, out_at[j]), item, None, value, sink, "out_only")

    def _pair(
        self, item: _Node, gold: list[Any], out: list[Any], rows: list[int], cols: list[int]
    ) -> tuple[list[tuple[int, int]], bool]:
        """Pairs of GOLD items `rows` and OUT items `cols` agreeing on the most values, and whether the
        bounded approximation made them: too many for an optimal assignment, items are first paired
        by an identity field, the rest assigned optimally when few enough, else approximately."""
        pairs: list[tuple[int, int]] = []
        if not _optimal(len(rows), len(cols)):
            pairs = _same_identity(gold, out, rows, cols)
            paired_rows, paired_cols = {a for a, _ in pairs}, {b for _, b in pairs}
            rows = [i for i in rows if i not in paired_rows]
            cols = [j for j in cols if j not in paired_cols]
        if not rows or not cols:
            return pairs, False
        if not _optimal(len(rows), len(cols)):
            return pairs + self._approximate(item, gold, out, rows, cols), True
        score = [[self._score(item, gold[i], out[j], i == j) for j in cols] for i in rows]
        return pairs + [(rows[a], cols[b]) for a, b in _assign(score)], False

    def _score(self, item: _Node, gold: Any, out: Any, same_place: bool) -> float:
        """How well two list items agree: the values they agree on, then string similarity, then place."""
        s = _Score()
        self._walk("", s.root, item, gold, out, s, "both")
        return s.agree + s.similar * 1e-3 + (1e-7 if same_place else 0.0)

    def _approximate(
        self, item: _Node, gold: list[Any], out: list[Any], rows: list[int], cols: list[int]
    ) -> list[tuple[int, int]]:
        """Pairs in bounded time: each GOLD item scored against the `_CANDIDATES` OUT items that share the
        most field values with it (values more than `_COMMON` items share tell nothing), the
        best-scoring pairs taken first; the items left then paired in order."""
        holding: dict[str, list[int]] = {}
        for j in cols:
            for fact in _facts(out[j]):
                holding.setdefault(fact, []).append(j)
        ranked: list[tuple[float, int, int, int]] = []
        for i in rows:
            shared: dict[int, int] = {}
            for fact in _facts(gold[i]):
                found = holding.get(fact, [])
                if len(found) <= _COMMON:
                    for j in found:
                        shared[j] = shared.get(j, 0) + 1
            for j in sorted(shared, key=lambda j: (-shared[j], abs(i - j)))[:_CANDIDATES]:
                ranked.append((self._score(item, gold[i], out[j], i == j), -abs(i - j), i, j))
        ranked.sort(reverse=True)
        used_rows: set[int] = set()
        used_cols: set[int] = set()
        pairs: list[tuple[int, int]] = []
        for _, _, i, j in ranked:
            if i not in used_rows and j not in used_cols:
                used_rows.add(i)
                used_cols.add(j)
                pairs.append((i, j))
        rest = zip((i for i in rows if i not in used_rows), (j for j in cols if j not in used_cols), strict=False)
        return pairs + list(rest)

    def _pair_scalars(
        self, item: _Node, gold: list[Any], out: list[Any], rows: list[int], cols: list[int]
    ) -> tuple[list[tuple[int, int]], bool]:
        """Pairs of GOLD elements `rows` and OUT elements `cols` that agree, as many as can be, and whether
        the bounded approximation made them (beyond an optimal assignment's size, each GOLD element tries
        the `_CANDIDATES` OUT elements nearest it in sorted order)."""
        if not _optimal(len(rows), len(cols)):
            return self._near_scalars(item, gold, out, rows, cols), True
        agree = [[self._scalar_agree(item, gold[i], out[j]) for j in cols] for i in rows]
        score = [
            [(1.0 if agree[a][b] else 0.0) + (1e-7 if i == j else 0.0) for b, j in enumerate(cols)]
            for a, i in enumerate(rows)
        ]
        return [(rows[a], cols[b]) for a, b in _assign(score) if agree[a][b]], False

    def _near_scalars(
        self, item: _Node, gold: list[Any], out: list[Any], rows: list[int], cols: list[int]
    ) -> list[tuple[int, int]]:
        """`_pair_scalars`'s approximation."""
        ordered = sorted(cols, key=lambda j: _order(out[j]))
        keys = [_order(out[j]) for j in ordered]
        free = [True] * len(ordered)
        pairs: list[tuple[int, int]] = []
        for i in rows:
            at = bisect.bisect_left(keys, _order(gold[i]))
            near = range(max(0, at - _CANDIDATES // 2), min(len(ordered), at + _CANDIDATES // 2))
            for k in sorted(near, key=lambda k: abs(k - at)):
                if free[k] and self._scalar_agree(item, gold[i], out[ordered[k]]):
                    free[k] = False
                    pairs.append((i, ordered[k]))
                    break
        return pairs

    def _scalar_agree(self, node: _Node, gold: Any, out: Any) -> bool:
        if isinstance(gold, dict | list) or isinstance(out, dict | list):
            return bool(gold == out)
        return self.agree(node, gold, out)


def _canonical(value: Any) -> Any:
    """A form of `value` equal for two values only if they agree in every field whatever the schema
    (None: empty): the loose canonical form (`extractor._canonical`), strings normalised."""
    return canonical(value, text=normalise_text)


def _order(value: Any) -> tuple[int, Any]:
    """Where a scalar sorts, so that values that may agree are near each other: numbers by value, the
    rest by their normalised text."""
    number = exact_number(value) if isinstance(value, int | float | Decimal) else None
    return (0, number) if number is not None else (1, normalise_text(str(value)))


def _facts(value: Any) -> Iterator[str]:
    """The top-level scalar fields of a list item, each as `key=value` normalised (for the approximation)."""
    if isinstance(value, dict):
        for key, field_value in value.items():
            if not isinstance(field_value, dict | list) and not _is_empty(field_value):
                yield f"{key}={json.dumps(_canonical(field_value))}"


def _identity(item: Any, key: str) -> str | None:
    """The value of `key` in a list item as an identity (a non-blank string or an integer), normalised."""
    value = item.get(key) if isinstance(item, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int) or _is_empty(value):
        return None
    return json.dumps(_canonical(value))


def _identity_field(items: list[Any], rows: list[int]) -> str | None:
    """A field that tells `items[rows]` apart: a string or an integer that nine in ten of them have, never
    twice the same (the first such field in the first item's order), or None."""
    first = items[rows[0]]
    if not isinstance(first, dict):
        return None
    for key in first:
        present = [v for v in (_identity(items[i], str(key)) for i in rows) if v is not None]
        if len(present) >= 0.9 * len(rows) and len(set(present)) == len(present):
            return str(key)
    return None


def _same_identity(gold: list[Any], out: list[Any], rows: list[int], cols: list[int]) -> list[tuple[int, int]]:
    """Pairs of GOLD items `rows` and OUT items `cols` with the same value of GOLD's identity field (a value
    that one OUT item alone has)."""
    key = _identity_field(gold, rows)
    if key is None:
        return []
    where: dict[str, int] = {}
    seen: dict[str, int] = {}
    for j in cols:
        value = _identity(out[j], key)
        if value is not None:
            seen[value] = seen.get(value, 0) + 1
            where[value] = j
    pairs = []
    for i in rows:
        value = _identity(gold[i], key)
        if value is not None and seen.get(value) == 1:
            pairs.append((i, where[value]))
    return pairs


def _identical(gold: list[Any], out: list[Any]) -> list[tuple[int, int]]:
    """Pairs of GOLD and OUT list items that are the same once normalised (each used once, in order)."""
    waiting: dict[str, list[int]] = {}
    for j, value in enumerate(out):
        waiting.setdefault(json.dumps(_canonical(value), sort_keys=True), []).append(j)
    pairs = []
    for i, value in enumerate(gold):
        same = waiting.get(json.dumps(_canonical(value), sort_keys=True))
        if same:
            pairs.append((i, same.pop(0)))
    return pairs


def _keys(node: _Node, gold: Mapping[str, Any], out: Mapping[str, Any]) -> Iterator[str]:
    """The keys either side has: in the schema's order first, then GOLD's, then OUT's."""
    seen: set[str] = set()
    for source in (node.properties, gold, out):
        for key in source:
            if key not in seen and (key in gold or key in out):
                seen.add(key)
                yield key


# --- records ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One line of a GOLD or OUT file: where it is, what names it, and its `data`."""

    file: str
    line: int
    id: str | None
    names: tuple[str, ...]  # `source` and `file` (paths), for matching a GOLD `file`
    data: Any
    #: a GOLD line `{"id", "unusable": true}` (a bad scan, marked on the review page): left out, counted
    unusable: bool = False

    @property
    def label(self) -> str:
        """The record's name in reports: its id, else its file."""
        return self.id if self.id is not None else self.names[0] if self.names else f"{self.file}:{self.line}"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_records(path: str | Path, role: str, *, labels: bool | None = None) -> list[Record]:
    """The records of a JSONL file (`role`: GOLD or OUT, for messages). Lines: `{"id", "data"}`,
    `{"file", "data"}` or OUT's `{"id", "source", "data", "meta"}`; blank lines are skipped. With
    `labels` (by default for GOLD), also `{"id", "unusable": true}`: a record the review page marked
    unusable (`Record.unusable`, its `data` None).
    Raises EvalInputError naming the file (and line) when it cannot be read or a line is not one."""
    if labels is None:
        labels = role == "GOLD"
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise EvalInputError(f"{role} {name}: cannot read it ({exc.strerror or exc})") from None
    records: list[Record] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{role} {name}:{number}"
        try:
            text = line.decode("utf-8-sig" if number == 1 else "utf-8")
            value = json.loads(text, parse_constant=_reject_constant, parse_float=Decimal)
        except UnicodeDecodeError as exc:
            raise EvalInputError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except ValueError as exc:
            raise EvalInputError(f"{where}: not JSON ({exc})") from None
        except RecursionError:
            raise EvalInputError(f"{where}: not JSON this reader accepts (nested too deeply)") from None
        if not isinstance(value, dict):
            raise EvalInputError(f'{where}: a line is a JSON object with "data", this one is {_json_type(value)}')
        unusable = value.get("unusable", False)
        if labels and unusable is not False:
            if unusable is not True:
                raise EvalInputError(f'{where}: "unusable" is true or left out, not {_json_type(unusable)}')
            if "data" in value:
                raise EvalInputError(f'{where}: a record is "unusable" or has "data", not both')
        elif "data" not in value:
            hint = " (an error record: those belong in the errors file)" if "error" in value else ""
            raise EvalInputError(f'{where}: no "data" key{hint}')
        ident = value.get("id")
        if ident is not None and (isinstance(ident, bool) or not isinstance(ident, str | int)):
            raise EvalInputError(f'{where}: "id" must be a string or an integer, not {_json_type(ident)}')
        names = tuple(v for v in (value.get("file"), value.get("source")) if isinstance(v, str) and v)
        if ident is None and not names:
            raise EvalInputError(f'{where}: no "id" or "file" to match it by')
        records.append(
            Record(name, number, None if ident is None else str(ident), names, value.get("data"), unusable is True)
        )
    return records


def _path_key(text: str) -> tuple[str, ...]:
    parts = [p for p in text.replace("\\", "/").split("/") if p and p != "."]
    return tuple(parts)


def _suffixes(text: str) -> Iterable[tuple[str, ...]]:
    parts = _path_key(text)
    return (parts[k:] for k in range(len(parts)))


def match_records(gold: Sequence[Record], out: Sequence[Record]) -> tuple[dict[int, int], list[int]]:
    """The OUT record of each GOLD record (`{gold index: out index}`) and the OUT records no GOLD
    record has (indexes).

    A GOLD line with an `id` has the OUT line with the same id (`7` and `"7"` are the same). One
    with only a `file` has the OUT line whose `source`, `id` or `file`, read as a path, is that path
    or ends with it, whole components (`a.pdf` is the basename of `invoices/a.pdf`; `b/a.pdf` does
    not match `ab/a.pdf`). Raises EvalInputError for an OUT id seen twice, a `file` that matches
    several OUT records, or two GOLD lines that get the same OUT record.
    """
    by_id: dict[str, int] = {}
    by_path: dict[tuple[str, ...], set[int]] = {}
    for j, record in enumerate(out):
        if record.id is not None:
            if record.id in by_id:
                first = out[by_id[record.id]]
                raise EvalInputError(
                    f"OUT {record.file}:{record.line}: duplicate id {record.id!r} (first at line {first.line})"
                )
            by_id[record.id] = j
        for text in {*record.names, *([record.id] if record.id is not None else [])}:
            for suffix in _suffixes(text):
                by_path.setdefault(suffix, set()).add(j)
    pairs: dict[int, int] = {}
    taken: dict[int, int] = {}  # out index -> gold index
    keys: dict[tuple[str, ...], int] = {}  # a GOLD line's id or file -> its line
    for i, record in enumerate(gold):
        where = f"GOLD {record.file}:{record.line}"
        key = ("id", record.id) if record.id is not None else ("file", *_path_key(record.names[0]))
        if key in keys:
            raise EvalInputError(f"{where}: {key[0]} {record.label!r} again (first at line {keys[key]})")
        keys[key] = record.line
        match: int | None
        if record.id is not None:
            match = by_id.get(record.id)
        else:
            wanted = _path_key(record.names[0])
            found = sorted(by_path.get(wanted, set())) if wanted else []
            if len(found) > 1:
                ids = ", ".join(repr(out[k].label) for k in found[:3])
                raise EvalInputError(
                    f"{where}: file {record.names[0]!r} matches {len(found)} OUT records ({ids}); "
                    f"give its path, or an id"
                )
            match = found[0] if found else None
        if match is None:
            continue
        if match in taken:
            first = gold[taken[match]]
            raise EvalInputError(
                f"{where}: {record.label!r} is the same record as line {first.line} (OUT id {out[match].label!r})"
            )
        taken[match] = i
        pairs[i] = match
    extra = [j for j in range(len(out)) if j not in taken]
    return pairs, extra
