"""Labels already made (`extractor review OUT --gold gold.jsonl`): each GOLD line turned into the page's
work on OUT's record, and where OUT disagrees with it, by the eval's own comparison.

GOLD records are paired with OUT's by `match_records` (by id, or a `file` by its path), and each pair is
compared by `Evaluator.locate`, which places every comparison on both sides. The page's work on a
record is then what a reviewer would have done to OUT's record to make GOLD's:

- a value GOLD has as OUT has it (exactly) is accepted; one it has otherwise is corrected to GOLD's
  value (to null: "not in the source"); a value GOLD has where OUT has no key is added (`extra`);
- a list item only OUT has is removed; one only GOLD has is added to OUT's list;
- a value neither side compared (a null in a list, an empty list on both sides) is accepted;
- `{"id", "unusable": true}` marks the record unusable.

Each comparison that did not agree (`wrong`, `missed`, `spurious`) is kept to show beside the value,
so that a second pass over a new OUT reviews only what changed. GOLD lines whose record is not on the
page (not in OUT, or a failure) are carried: the page's export writes them again as they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..evaluate import Evaluator, Located, Record, match_records, plain_json, read_records
from .load import Loaded
from .model import Place, leaves

__all__ = ["GoldLabels", "RecordLabels", "gold_labels", "place_key"]

_BAD = frozenset({"wrong", "missed", "spurious"})


def place_key(at: Place) -> str:
    """A place as the page keys it: its JSON array, compact (`["line_items",2,"amount"]`)."""
    return json.dumps(list(at), ensure_ascii=False, separators=(",", ":"))


@dataclass
class RecordLabels:
    """The page's work on one record, made from its GOLD line (`state`, as the page keeps it:
    `d` decisions by value index: 1 accepted, 0 not in the source, `["v", value]` corrected; `rm`
    removed list items; `add` added items by list; `ex` values OUT has no key for; `bad` unusable),
    and where OUT disagrees with GOLD: by value index (kind, GOLD's value), and how many list items
    were added or removed for it."""

    state: dict[str, Any]
    disagree: dict[int, tuple[str, Any]] = field(default_factory=dict)
    added: int = 0
    removed: int = 0
    extra: int = 0

    @property
    def disagreements(self) -> int:
        """How many places OUT disagrees with GOLD at: values, and list items added or removed."""
        return len(self.disagree) + self.added + self.removed + self.extra


@dataclass
class GoldLabels:
    """The labels of a GOLD file for the records of a page (by OUT id), the GOLD lines carried as they
    are (their record is not on the page, or failed), and notes about them."""

    records: dict[str, RecordLabels] = field(default_factory=dict)
    carried: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _at(data: Any, place: Place) -> Any:
    for part in place:
        data = data[part]
    return data


def _same(a: Any, b: Any) -> bool:
    """Whether two JSON values are the same value (1 and 1.0 alike, a boolean never a number)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) != isinstance(b, int | float):
        return False
    return bool(a == b)


def _record_labels(located: Located, gold: Any, out: Any) -> RecordLabels:
    rows = {at: (i, value) for i, (_, at, value) in enumerate(leaves(out))}
    decided: dict[str, Any] = {}
    labels = RecordLabels(state={})
    extra: dict[str, Any] = {}
    for c in located.comparisons:
        if c.gold_at is None or c.out_at is None:
            continue  # inside a list item one side lacks: added or removed whole, below
        value = plain_json(c.gold)
        row = rows.get(c.out_at)
        if row is None:  # OUT has no key there (or an object where GOLD has a value)
            if value is not None:
                extra[place_key(c.out_at)] = value
                labels.extra += c.kind in _BAD
            continue
        index, shown = row
        decided[str(index)] = 1 if _same(value, shown) else 0 if value is None else ["v", value]
        if c.kind in _BAD:
            labels.disagree[index] = (c.kind, value)
    added: dict[str, list[Any]] = {}
    for out_list, gold_at in located.gold_only:
        added.setdefault(place_key(out_list), []).append({"v": plain_json(_at(gold, gold_at)), "d": 1})
        labels.added += 1
    removed = {place_key(at): 1 for at in located.out_only}
    labels.removed = len(removed)
    for index, _ in rows.values():
        decided.setdefault(str(index), 1)  # compared with nothing (an empty list, a null in a list): as GOLD has it
    labels.state = {"d": decided, "rm": removed, "add": added, "ex": extra}
    return labels


def _out_records(loaded: Loaded, out: Path) -> list[Record]:
    lines = [*loaded.records, *loaded.failures]
    return [
        Record(str(out), i + 1, str(line["id"]), (str(line["source"]),) if line.get("source") else (), line.get("data"))
        for i, line in enumerate(lines)
    ]


def gold_labels(gold_path: Path, loaded: Loaded, out: Path, evaluator: Evaluator) -> GoldLabels:
    """The labels `gold_path` holds for the records of `loaded` (OUT's records, then its failures).
    Raises `EvalInputError` (an `ExtractorError`) naming the file and line when GOLD cannot be read or
    paired (a line that is not a record, two lines for one record)."""
    gold = read_records(gold_path, "GOLD")
    outs = _out_records(loaded, out)
    pairs, _ = match_records(gold, outs)
    failed = len(loaded.records)
    result = GoldLabels()
    missing: list[str] = []
    for i, record in enumerate(gold):
        j = pairs.get(i)
        if j is None or (j >= failed and not record.unusable):
            line: dict[str, Any] = {"id": record.id} if record.id is not None else {"file": record.names[0]}
            line.update({"unusable": True} if record.unusable else {"data": plain_json(record.data)})
            result.carried.append(line)
            missing.append(record.label)
            continue
        ident = str(outs[j].id)
        if record.unusable:
            result.records[ident] = RecordLabels(state={"bad": 1})
        else:
            located = evaluator.locate(record.data, outs[j].data)
            result.records[ident] = _record_labels(located, record.data, outs[j].data)
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        result.notes.append(
            f"{gold_path}: {len(missing)} labelled record{'' if len(missing) == 1 else 's'} not reviewable here "
            f"(not in OUT, or failed): kept as they are in the export ({shown})"
        )
    return result
