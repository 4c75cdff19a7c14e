"""`extractor eval`: field-level accuracy of OUT against GOLD, with figures worked out by hand.

The unit tests compare small hand-made pairs (`Evaluator.compare`) and assert exact counts and
metrics. The command is run in-process (`extractor.cli.main`, what the executable calls) for the
reports, and in a subprocess (`python -m extractor eval`) for the exit statuses. The examples and
the invoice2data corpus (skipped when `../shared/corpora` is absent) are checked against copies
with deliberate, counted edits.
"""

from __future__ import annotations

import copy
import datetime
import decimal
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pydantic
import pytest

from extractor.cli import main
from extractor.quality.evaluate import (
    Counts,
    EvalInputError,
    EvalOptions,
    EvalReport,
    Evaluator,
    Record,
    _assign,
    match_records,
    parse_date,
    read_records,
)

ROOT = Path(__file__).resolve().parents[1]
INVOICES = ROOT / "examples" / "invoices" / "expected.jsonl"
RECEIPTS = ROOT / "examples" / "receipts" / "expected.jsonl"


def kinds(counts: Counts) -> dict[str, int]:
    """The non-zero kinds of `counts`."""
    return {k: v for k, v in counts.as_json().items() if k not in ("n", "precision", "recall", "f1", "accuracy") and v}


def compare(gold: Any, out: Any, schema: Any = None, **options: Any) -> EvalReport:
    return Evaluator(schema, EvalOptions(**options)).compare(gold, out)


def field(report: EvalReport, name: str) -> dict[str, int]:
    return kinds(report.fields[name])


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# --- metrics ------------------------------------------------------------------------------------


def test_metrics_of_a_hand_made_pair() -> None:
    gold = {"a": 1, "b": "x", "c": None, "d": None, "e": "y", "f": 2}
    out = {"a": 1, "b": "z", "c": None, "d": "v", "f": None}  # e missing
    report = compare(gold, out)
    total = report.overall
    # a correct, b wrong, c both null, d spurious, e and f missed
    assert kinds(total) == {"correct": 1, "wrong": 1, "both_null": 1, "spurious": 1, "missed": 2}
    assert total.n == 6
    assert total.precision == pytest.approx(1 / 3)  # 1 / (1 + wrong 1 + spurious 1)
    assert total.recall == pytest.approx(1 / 4)  # 1 / (1 + wrong 1 + missed 2)
    assert total.f1 == pytest.approx(2 / 7)  # 2*1 / (2*1 + fp 2 + fn 3) = harmonic mean of 1/3 and 1/4
    assert total.accuracy == pytest.approx(2 / 6)
    assert report.exact == 0
    assert field(report, "d") == {"spurious": 1}
    assert report.fields["d"].precision == 0.0
    assert report.fields["d"].recall is None  # no GOLD value to recall
    assert report.fields["c"].precision is None and report.fields["c"].accuracy == 1.0


def test_null_and_missing_cases() -> None:
    # gold null / out missing or null: agree; "" and "  " count as empty
    report = compare({"a": None, "b": None, "c": "", "d": "  "}, {"b": None, "c": None, "d": ""})
    assert kinds(report.overall) == {"both_null": 4}
    assert report.exact == 1 and report.overall.accuracy == 1.0 and report.overall.precision is None
    # a field neither side mentions is not compared
    assert compare({}, {}).overall.n == 0
    assert field(compare({"a": "x"}, {"a": None}), "a") == {"missed": 1}
    assert field(compare({"a": "x"}, {}), "a") == {"missed": 1}
    assert field(compare({"a": None}, {"a": "x"}), "a") == {"spurious": 1}
    assert field(compare({}, {"a": "x"}), "a") == {"spurious": 1}
    counts = compare({"a": "x"}, {"a": "y"}).fields["a"]
    assert kinds(counts) == {"wrong": 1} and (counts.fp, counts.fn) == (1, 1)


def test_nested_objects_and_paths() -> None:
    gold = {"seller": {"name": "Acme", "vat": None}, "buyer": None, "weird key": {"a.b": 1}}
    out = {"seller": {"name": "ACME", "vat": "X1"}, "buyer": None, "weird key": {"a.b": 1}}
    report = compare(gold, out)
    assert list(report.fields) == ["seller.name", "seller.vat", "buyer", '["weird key"]["a.b"]']
    assert field(report, "seller.name") == {"correct": 1}
    assert field(report, "seller.vat") == {"spurious": 1}
    assert field(report, "buyer") == {"both_null": 1}
    # an object against a string is one wrong value at the object's path
    assert field(compare({"seller": {"name": "A"}}, {"seller": "A"}), "seller") == {"wrong": 1}
    # an object on one side, null on the other: its fields one by one
    assert field(compare({"seller": {"name": "A", "vat": None}}, {"seller": None}), "seller.name") == {"missed": 1}


# --- lists --------------------------------------------------------------------------------------

ITEMS = [
    {"sku": "A", "qty": 1, "price": 10.0},
    {"sku": "B", "qty": 2, "price": 5.5},
    {"sku": "C", "qty": 3, "price": 1.25},
]


def test_list_of_objects_order_does_not_matter() -> None:
    report = compare({"items": ITEMS}, {"items": [ITEMS[2], ITEMS[0], ITEMS[1]]})
    assert kinds(report.overall) == {"correct": 9}
    assert report.exact == 1
    assert list(report.fields) == ["items[].sku", "items[].qty", "items[].price"]


def test_list_items_are_paired_by_agreement() -> None:
    changed = [dict(ITEMS[1], qty=20), ITEMS[2], ITEMS[0]]  # B's qty wrong, order shuffled
    report = Evaluator().compare({"items": ITEMS}, {"items": changed})
    assert field(report, "items[].qty") == {"correct": 2, "wrong": 1}
    assert field(report, "items[].sku") == {"correct": 3}
    (d,) = report.disagreements
    assert (d.where, d.gold, d.out) == ("items[1].qty", 2, 20)  # GOLD's index


def test_list_pairing_is_optimal_not_greedy() -> None:
    # greedy would pair gold 0 with out 0 (3 agreeing fields), leaving gold 1 with out 1 (0): 3 in all;
    # the best pairing agrees on 4
    assert _assign([[3.0, 2.0], [2.0, 0.0]]) == [(0, 1), (1, 0)]
    assert _assign([[1.0], [5.0], [2.0]]) == [(1, 0)]
    assert _assign([]) == []
    gold = {"items": [{"a": 1, "b": 2, "c": 3, "d": 4}, {"a": 1, "b": 2, "c": 9, "d": 9}]}
    out = {"items": [{"a": 1, "b": 2, "c": 3, "d": 0}, {"a": 0, "b": 0, "c": 3, "d": 4}]}
    # pairs: g0-o1 agree on c, d; g1-o0 on a, b (4); g0-o0 agrees on 3 but leaves g1-o1 with 0
    assert compare(gold, out).overall.correct == 4


def test_missing_and_extra_list_items() -> None:
    extra = {"sku": "D", "qty": 4, "price": None}
    report = compare({"items": ITEMS}, {"items": [*ITEMS, extra]})
    # the extra item's values are spurious, its null says nothing
    assert kinds(report.overall) == {"correct": 9, "spurious": 2}
    report = compare({"items": [*ITEMS, extra]}, {"items": ITEMS})
    # the missing item's values are missed, its null is absent (it counts against accuracy only)
    assert kinds(report.overall) == {"correct": 9, "missed": 2, "absent": 1}
    assert report.overall.recall == pytest.approx(9 / 11)
    assert report.overall.precision == 1.0
    assert report.overall.accuracy == pytest.approx(9 / 12)
    # empty and null lists agree and add nothing
    assert compare({"items": []}, {"items": None}).overall.n == 0
    assert kinds(compare({"items": ITEMS}, {"items": []}).overall) == {"missed": 9}


def test_scalar_lists_are_multisets() -> None:
    report = compare({"tags": ["a", "b", "b"]}, {"tags": ["b", "A", "c"]})
    assert field(report, "tags[]") == {"correct": 2, "missed": 1, "spurious": 1}
    report = compare({"amounts": [1.0, 2.0]}, {"amounts": [2.004, 0.996]})  # within tolerance, any order
    assert field(report, "amounts[]") == {"correct": 2}


def test_list_of_objects_in_a_pydantic_model_and_refs() -> None:
    class Item(pydantic.BaseModel):
        sku: str
        day: datetime.date | None = None

    class Order(pydantic.BaseModel):
        items: list[Item]

    gold = {"items": [{"sku": "A", "day": "2024-01-17"}, {"sku": "B", "day": None}]}
    out = {"items": [{"sku": "b", "day": None}, {"sku": "A", "day": "17.01.2024"}]}
    report = compare(gold, out, Order)  # `$ref: #/$defs/Item` followed: `day` is a date
    assert field(report, "items[].day") == {"correct": 1, "both_null": 1}
    assert field(report, "items[].sku") == {"correct": 2}


# --- numbers ------------------------------------------------------------------------------------

NUMBER_SCHEMA = {"type": "object", "properties": {"n": {"type": "number"}, "s": {"type": "string"}}}


@pytest.mark.parametrize(
    ("gold", "out", "options", "agree"),
    [
        (10.0, 10.004, {}, True),
        (10.0, 10.006, {}, False),
        (1.0, 1.005, {}, True),  # the default tolerance, 0.005, inclusive
        (100, 100.0, {}, True),
        (10.0, 10.02, {"tolerance": 0.05}, True),
        (1000.0, 1009.0, {"relative_tolerance": 0.01}, True),  # 1% of GOLD's 1000
        (1000.0, 1011.0, {"relative_tolerance": 0.01}, False),
        (0.0, 0.004, {"relative_tolerance": 0.01}, True),  # the absolute tolerance still applies
        (3, 3.0001, {"tolerance": 0}, False),
    ],
)
def test_number_tolerance(gold: float, out: float, options: dict[str, float], agree: bool) -> None:
    report = compare({"n": gold}, {"n": out}, NUMBER_SCHEMA, **options)
    assert field(report, "n") == ({"correct": 1} if agree else {"wrong": 1})


def test_numeric_strings_are_numbers_only_where_the_schema_allows_both() -> None:
    assert field(compare({"n": 1234.5}, {"n": "1,234.50"}, NUMBER_SCHEMA), "n") == {"wrong": 1}
    assert field(compare({"n": 1234.5}, {"n": "1234.50"}, NUMBER_SCHEMA), "n") == {"wrong": 1}  # says number
    assert field(compare({"s": "1,234.50"}, {"s": " 1,234.50"}, NUMBER_SCHEMA), "s") == {"correct": 1}
    assert field(compare({"s": "1234.50"}, {"s": "1234.5"}, NUMBER_SCHEMA), "s") == {"wrong": 1}  # says string
    assert field(compare({"n": True}, {"n": 1}, NUMBER_SCHEMA), "n") == {"wrong": 1}
    assert field(compare({"n": False}, {"n": False}, NUMBER_SCHEMA), "n") == {"correct": 1}

    class Price(pydantic.BaseModel):  # a Decimal: `anyOf: [number, string]`, dumped as "1234.50"
        amount: decimal.Decimal

    assert field(compare({"amount": "1234.50"}, {"amount": 1234.5}, Price), "amount") == {"correct": 1}
    assert field(compare({"amount": "1234.50"}, {"amount": "1234.503"}, Price), "amount") == {"correct": 1}
    assert field(compare({"amount": 1234.5}, {"amount": "1,234.50"}, Price), "amount") == {"wrong": 1}
    assert field(compare({"amount": 5}, {"amount": "$5"}, Price), "amount") == {"wrong": 1}


# --- dates and strings ---------------------------------------------------------------------------

DATE_SCHEMA = {
    "type": "object",
    "properties": {
        "d": {"type": ["string", "null"], "format": "date"},
        "t": {"type": "string", "format": "date-time"},
        "plain": {"type": "string"},
    },
}


@pytest.mark.parametrize(
    "written",
    ["2024-01-17", "17.01.2024", "01/17/2024", "17/01/2024", "2024/01/17", "17 January 2024", "Jan 17, 2024",
     "17-Jan-2024", "january 17th 2024", " 2024-01-17 "],
)  # fmt: skip
def test_dates_where_the_schema_says_date(written: str) -> None:
    assert parse_date(written, lenient=True) == datetime.date(2024, 1, 17)
    assert field(compare({"d": "2024-01-17"}, {"d": written}, DATE_SCHEMA), "d") == {"correct": 1}


def test_dates_never_guessed() -> None:
    assert parse_date("01/02/2024", lenient=True) is None  # 1 February or January 2: text
    assert parse_date("05/05/2024", lenient=True) == datetime.date(2024, 5, 5)  # both readings agree
    assert parse_date("17.01.24", lenient=True) is None  # a 2-digit year
    assert parse_date("2024-02-30", lenient=True) is None
    assert parse_date("17.01.2024", lenient=False) is None  # without `format: date`, ISO only
    assert field(compare({"d": "2024-01-02"}, {"d": "01/02/2024"}, DATE_SCHEMA), "d") == {"wrong": 1}
    assert field(compare({"d": "2024-01-17"}, {"d": "2024-01-18"}, DATE_SCHEMA), "d") == {"wrong": 1}
    # no date format: not normalised
    assert field(compare({"plain": "2024-01-17"}, {"plain": "17.01.2024"}, DATE_SCHEMA), "plain") == {"wrong": 1}
    assert field(compare({"x": "2024-01-17"}, {"x": "17.01.2024"}), "x") == {"wrong": 1}


def test_date_times_are_instants() -> None:
    same = compare({"t": "2024-01-17T10:00:00Z"}, {"t": "2024-01-17T11:00:00+01:00"}, DATE_SCHEMA)
    assert field(same, "t") == {"correct": 1}
    naive = compare({"t": "2024-01-17T10:00:00Z"}, {"t": "2024-01-17T10:00:00"}, DATE_SCHEMA)
    assert field(naive, "t") == {"wrong": 1}
    # strict ISO 8601 without a format too
    assert field(compare({"x": "2024-01-17T10:00Z"}, {"x": "2024-01-17 10:00:00+00:00"}), "x") == {"correct": 1}


def test_strings_normalised() -> None:
    pairs = [
        ("Kestrel Design Studio GmbH", "  KESTREL\tdesign   studio gmbh\n"),  # case, whitespace
        ("\uff46\uff55\uff4c\uff4c \uff57\uff49\uff44\uff54\uff48 \u21165", "full width No5"),  # NFKC: fullwidth, №
        ("Hafenstraße 3", "HAFENSTRASSE 3"),  # case folding
        ("ﬁle", "file"),
    ]
    for gold, out in pairs:
        assert field(compare({"s": gold}, {"s": out}), "s") == {"correct": 1}, (gold, out)
    assert field(compare({"s": "DE 232"}, {"s": "DE232"}), "s") == {"wrong": 1}


FUZZY_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "code": {"type": "string", "enum": ["abcdefghij", "abcdefghix"]},
        "email": {"type": "string", "format": "email"},
    },
}


def test_fuzzy_strings() -> None:
    # "abcdefghij" / "abcdefghix": 2 insertions and deletions in 20 characters, a ratio of exactly 0.9
    gold, out = {"name": "abcdefghij"}, {"name": "abcdefghix"}
    assert field(compare(gold, out, FUZZY_SCHEMA), "name") == {"wrong": 1}
    assert field(compare(gold, out, FUZZY_SCHEMA, fuzzy=0.9), "name") == {"correct": 1}
    assert field(compare(gold, out, FUZZY_SCHEMA, fuzzy=0.91), "name") == {"wrong": 1}
    # normalised first: case and spaces cost nothing
    assert field(compare({"name": "ABCDEFGHIJ "}, {"name": "abcdefghix"}, FUZZY_SCHEMA, fuzzy=0.9), "name") == {
        "correct": 1
    }
    # enums, formats and patterns are not free text
    assert field(compare({"code": "abcdefghij"}, {"code": "abcdefghix"}, FUZZY_SCHEMA, fuzzy=0.5), "code") == {
        "wrong": 1
    }
    email = compare({"email": "ann@example.com"}, {"email": "anne@example.com"}, FUZZY_SCHEMA, fuzzy=0.5)
    assert field(email, "email") == {"wrong": 1}
    with pytest.raises(ValueError):
        EvalOptions(fuzzy=0)


# --- records ----------------------------------------------------------------------------------


def test_missing_and_extra_records(tmp_path: Path) -> None:
    gold = write_jsonl(
        tmp_path / "gold.jsonl",
        [
            {"id": "a", "data": {"x": 1, "y": None}},
            {"id": 7, "data": {"x": 2, "y": "k"}},
            {"id": "gone", "data": {"x": 3, "y": None, "z": [{"q": 1}]}},
        ],
    )
    out = write_jsonl(
        tmp_path / "out.jsonl",
        [
            {"id": "7", "source": "s/7.txt", "data": {"x": 2, "y": "k"}},
            {"id": "a", "source": "s/a.txt", "data": {"x": 1, "y": None}},
            {"id": "new", "source": "s/new.txt", "data": {"x": 9}},
        ],
    )
    report = Evaluator().evaluate(read_records(gold, "GOLD"), read_records(out, "OUT"))
    assert (report.gold_records, report.out_records, report.matched, report.exact) == (3, 3, 2, 2)
    assert report.missing_ids == ["gone"] and report.extra_ids == ["new"]
    # the missing record's values are missed, its null is absent; the extra record is not scored
    assert kinds(report.overall) == {"correct": 3, "both_null": 1, "missed": 2, "absent": 1}
    assert report.fields["z[].q"].missed == 1
    assert report.exact_rate == pytest.approx(2 / 3)
    assert report.overall.accuracy == pytest.approx(4 / 7)


def test_gold_file_matches_the_basename_or_a_path_suffix(tmp_path: Path) -> None:
    gold = write_jsonl(
        tmp_path / "gold.jsonl",
        [{"file": "a.pdf", "data": {}}, {"file": "x/b.pdf", "data": {}}, {"file": "c.pdf", "data": {}}],
    )
    out = write_jsonl(
        tmp_path / "out.jsonl",
        [
            {"id": "docs/x/b.pdf", "source": "docs/x/b.pdf", "data": {}},
            {"id": "docs/a.pdf", "source": "docs/a.pdf", "data": {}},
            {"id": "docs/xc.pdf", "source": "docs/xc.pdf", "data": {}},  # not c.pdf
        ],
    )
    pairs, extra = match_records(read_records(gold, "GOLD"), read_records(out, "OUT"))
    assert pairs == {0: 1, 1: 0} and extra == [2]
    # a basename that names two OUT records is an error, naming the GOLD line
    write_jsonl(out, [{"id": "p/a.pdf", "data": {}}, {"id": "q/a.pdf", "data": {}}])
    with pytest.raises(EvalInputError, match=r"^GOLD .*gold.jsonl:1: file 'a.pdf' matches 2 OUT records"):
        match_records(read_records(gold, "GOLD"), read_records(out, "OUT"))


def test_unreadable_lines_name_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    cases = [
        ('{"id": "a", "data": {}}\n\n{"id": "b", "data": {NaN}\n', r"bad.jsonl:3: not JSON"),
        ('{"id": "a", "data": {}}\n[1]\n', r"bad.jsonl:2: a line is a JSON object"),
        ('{"id": "a", "error": {"type": "X"}}\n', r"bad.jsonl:1: no \"data\" key \(an error record"),
        ('{"data": {}}\n', r"bad.jsonl:1: no \"id\" or \"file\""),
        ('{"id": ["a"], "data": {}}\n', r"bad.jsonl:1: \"id\" must be a string or an integer"),
    ]
    for text, message in cases:
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(EvalInputError, match=message):
            read_records(bad, "GOLD")
    bad.write_bytes(b'{"id": "a", "data": "\xff"}\n')
    with pytest.raises(EvalInputError, match=r"bad\.jsonl:1: not UTF-8"):
        read_records(bad, "OUT")
    with pytest.raises(EvalInputError, match="cannot read it"):
        read_records(tmp_path / "none.jsonl", "OUT")
    dup = write_jsonl(tmp_path / "dup.jsonl", [{"id": "a", "data": {}}, {"id": "a", "data": {}}])
    with pytest.raises(EvalInputError, match=r"dup.jsonl:2: duplicate id 'a' \(first at line 1\)"):
        match_records([], read_records(dup, "OUT"))
    with pytest.raises(EvalInputError, match=r"dup.jsonl:2: id 'a' again \(first at line 1\)"):
        match_records(read_records(dup, "GOLD"), [])


def test_long_lists_stay_fast() -> None:
    # identical items (once normalised) are paired at once, whatever their number
    items = [{"n": i, "s": f"item {i}", "x": None} for i in range(5000)]
    same = [{"n": float(i), "s": f" ITEM {i}"} for i in reversed(range(5000))]
    assert kinds(compare({"items": items}, {"items": same}).overall) == {"correct": 10000, "both_null": 5000}
    # beyond the optimal pairing's size (150 * 150 * 150 > 2,000,000), the rest are paired greedily
    changed = [{"n": i, "s": f"item {i}!"} for i in reversed(range(150))]
    report = compare({"items": items[:150]}, {"items": changed})
    assert field(report, "items[].n") == {"correct": 150}
    assert field(report, "items[].s") == {"wrong": 150}
    assert all(d.where == f"items[{d.out[5:-1]}].s" for d in report.disagreements if d.field == "items[].s")


# --- the command --------------------------------------------------------------------------------


def run_main(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["eval", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def as_out(gold_rows: list[dict[str, Any]], folder: str) -> list[dict[str, Any]]:
    """`extractor run`'s lines for GOLD `{"file", "data"}` lines."""
    return [
        {"id": f"{folder}/{r['file']}", "source": f"{folder}/{r['file']}", "data": r["data"], "meta": {}}
        for r in gold_rows
    ]


def read_gold(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_examples_against_themselves(capsys: pytest.CaptureFixture[str]) -> None:
    for gold, schema, fields in ((INVOICES, "invoice", 272), (RECEIPTS, "receipt", None)):
        code, out, err = run_main(capsys, gold, gold, "--schema", schema, "--json", "--min-accuracy", "1")
        assert code == 0, err
        result = json.loads(out)
        assert result["overall"]["accuracy"] == 1.0 and result["overall"]["f1"] == 1.0
        assert result["records"]["exact_rate"] == 1.0 and result["passed"] is True
        if fields is not None:
            assert result["overall"]["n"] == fields


def invoice_edits(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OUT for the 4 example invoices, with counted edits (see test_examples_with_known_edits)."""
    by_file = {r["file"].split("-")[0]: copy.deepcopy(r) for r in rows}
    kestrel = by_file["kestrel"]["data"]  # edits that all still agree: the record stays exact
    kestrel["issue_date"] = "17.01.2024"  # format: date
    kestrel["total"] = 2825.064  # within 0.005
    kestrel["seller"]["name"] = "KESTREL  design studio gmbh"
    kestrel["line_items"].reverse()
    harbour = by_file["harbour"]["data"]
    harbour["total"] = 493.54  # wrong
    harbour["purchase_order"] = None  # missed
    harbour["buyer"]["email"] = "tea@copper-kettle.example"  # spurious (GOLD null)
    bluegum = by_file["bluegum"]["data"]
    del bluegum["line_items"][5]  # 4 values missed
    out = as_out([by_file["kestrel"], by_file["harbour"], by_file["bluegum"]], "examples/invoices")
    out.append({"id": "examples/invoices/other.pdf", "source": "examples/invoices/other.pdf", "data": {}})
    return out  # sierra-vista missing: its 27 values missed, its 5 nulls absent


def test_examples_with_known_edits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = read_gold(INVOICES)
    out = write_jsonl(tmp_path / "out.jsonl", invoice_edits(rows))
    code, stdout, err = run_main(capsys, INVOICES, out, "--schema", "invoice", "--json", "--details")
    assert code == 0, err
    result = json.loads(stdout)
    # GOLD: 258 values and 14 nulls; sierra-vista 27 values and 5 nulls, harbour-finch buyer.email null
    overall = result["overall"]
    expected = {"correct": 258 - 1 - 1 - 4 - 27, "both_null": 14 - 1 - 5, "wrong": 1, "missed": 1 + 4 + 27}
    expected |= {"spurious": 1, "absent": 5, "n": 272}
    assert {k: overall[k] for k in expected} == expected
    assert overall["precision"] == pytest.approx(225 / 227)
    assert overall["recall"] == pytest.approx(225 / 258)
    assert overall["f1"] == pytest.approx(450 / 485)
    assert overall["accuracy"] == pytest.approx(233 / 272)
    records = result["records"]
    assert (records["matched"], records["missing"], records["extra"], records["exact"]) == (3, 1, 1, 1)
    assert records["missing_ids"] == ["sierra-vista-SV-7734.pdf"]
    assert records["extra_ids"] == ["examples/invoices/other.pdf"]
    total = result["fields"]["total"]  # kestrel right, harbour wrong, bluegum right, sierra missed
    assert (total["correct"], total["wrong"], total["missed"]) == (2, 1, 1)
    assert (total["precision"], total["recall"], total["accuracy"]) == (pytest.approx(2 / 3), 0.5, 0.5)
    amount = result["fields"]["line_items[].amount"]  # 48 items: 1 dropped from bluegum, 3 of sierra
    assert (amount["n"], amount["correct"], amount["missed"], amount["precision"]) == (48, 44, 4, 1.0)
    wrong = [d for d in result["disagreements"] if d["kind"] == "wrong"]
    assert wrong == [
        {"record": "harbour-finch-HF-23-0042.pdf", "where": "total", "field": "total", "kind": "wrong",
         "gold": 493.44, "out": 493.54}
    ]  # fmt: skip

    # the text report: the same figures
    code, stdout, err = run_main(capsys, INVOICES, out, "--schema", "invoice")
    assert code == 0
    lines = stdout.splitlines()
    assert lines[0].startswith("GOLD ") and "schema bundled:invoice; tolerance 0.005, fuzzy off" in lines[0]
    header = next(line for line in lines if line.startswith("field"))
    columns = "field n right wrong missed spurious absent precision recall F1 accuracy"
    assert header.split() == columns.split()
    assert next(line for line in lines if line.startswith("total ")).split() == [
        "total", "4", "2", "1", "1", "0", "0", "0.667", "0.500", "0.571", "0.500"
    ]  # fmt: skip
    overall_row = next(line for line in lines if line.startswith("overall"))
    assert overall_row.split() == ["overall", "272", "233", "1", "32", "1", "5", "0.991", "0.872", "0.928", "0.857"]
    assert "3 matched, 1 missing from OUT (sierra-vista-SV-7734.pdf), 1 extra in OUT" in stdout
    assert "records with every field right: 1 of 4 (25.0%)" in stdout


# --- exit statuses, as a real process ----------------------------------------------------------


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "extractor", "eval", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_exit_statuses(tmp_path: Path) -> None:
    out = write_jsonl(tmp_path / "out.jsonl", invoice_edits(read_gold(INVOICES)))
    ok = run(INVOICES, out, "--schema", "invoice", "--min-accuracy", "0.85")  # accuracy 233/272 = 0.857
    assert ok.returncode == 0, ok.stderr
    assert "overall " in ok.stdout and ok.stderr == ""

    low = run(INVOICES, out, "--schema", "invoice", "--min-accuracy", "0.9", "--json")
    assert low.returncode == 1
    assert json.loads(low.stdout)["passed"] is False
    assert low.stderr.strip() == "overall accuracy 0.8566 is below --min-accuracy 0.9"

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a", "data": {}}\n{"id": "b", "data": \n', encoding="utf-8")
    bad_line = run(INVOICES, broken, "--schema", "invoice")
    assert bad_line.returncode == 2 and bad_line.stdout == ""
    assert bad_line.stderr.startswith(f"error: OUT {broken}:2: not JSON (")

    no_file = run(tmp_path / "nope.jsonl", out, "--schema", "invoice")
    assert no_file.returncode == 2
    assert (
        no_file.stderr.strip() == f"error: GOLD {tmp_path / 'nope.jsonl'}: cannot read it (No such file or directory)"
    )


def test_usage_errors_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, INVOICES, INVOICES, "--schema", "no_such_schema")
    assert code == 2 and err.startswith("error: unknown schema 'no_such_schema'")
    schema = tmp_path / "s.json"
    schema.write_text("{not json", encoding="utf-8")
    code, _, err = run_main(capsys, INVOICES, INVOICES, "--schema", schema)
    assert code == 2 and f"schema file {schema}: not readable JSON" in err
    code, _, err = run_main(capsys, INVOICES, INVOICES, "--schema", "invoice", "--min-accuracy", "95")
    assert code == 2 and "not a fraction between 0 and 1" in err
    code, _, err = run_main(capsys, INVOICES, INVOICES, "--schema", "invoice", "--fuzzy", "1.5")
    assert code == 2 and "not a similarity ratio" in err
    code, _, err = run_main(capsys, INVOICES, INVOICES, "--schema", "invoice", "--tolerance", "-1")
    assert code == 2
    # no GOLD record found its OUT record: a hint on how each side names them
    other = write_jsonl(tmp_path / "o.jsonl", [{"id": "elsewhere.pdf", "data": {}}])
    code, _, err = run_main(capsys, INVOICES, other, "--schema", "invoice", "--min-accuracy", "0.5")
    assert code == 1
    assert "note: no GOLD record found its OUT record; GOLD names them like 'kestrel-design-2024-0117.pdf'" in err


# --- invoice2data: real invoices and their expected values --------------------------------------

I2D_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "issuer": {"type": "string"},
        "invoice_number": {"type": "string"},
        "date": {"type": "string", "format": "date"},
        "date_due": {"type": ["string", "null"], "format": "date"},
        "amount": {"type": "number"},
        "amount_untaxed": {"type": ["number", "null"]},
        "amount_tax": {"type": ["number", "null"]},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "qty": {"type": ["number", "null"]},
                    # AmazonWebServices writes it as a string ("0.01"), the others as a number
                    "price_unit": {"type": ["number", "string", "null"]},
                    "price_subtotal": {"type": ["number", "null"]},
                },
            },
        },
    },
}


def i2d_files(corpora: Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """GOLD lines `{"file", "data"}` from invoice2data's `compare/NAME.json`, and the data by NAME."""
    folder = corpora / "invoice2data" / "compare"
    gold = []
    for expected in sorted(folder.glob("*.json")):
        (data,) = json.loads(expected.read_text(encoding="utf-8"))  # one invoice per file
        document = next(p for p in (expected.with_suffix(".pdf"), expected.with_suffix(".txt")) if p.exists())
        gold.append({"file": document.name, "data": data})
    return gold, {Path(g["file"]).stem: g["data"] for g in gold}


def test_invoice2data_known_errors(corpora: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gold_rows, gold = i2d_files(corpora)
    assert len(gold_rows) == 12
    data = copy.deepcopy(gold)
    aws = data["AmazonWebServices"]
    aws["amount"] = 4.12  # wrong (4.11)
    aws["amount_untaxed"] = 4.113  # within 0.005
    aws["lines"] = [dict(line, price_unit=float(line["price_unit"])) for line in reversed(aws["lines"])]
    data["AzureInterior"]["lines"].reverse()  # order does not matter
    del data["AzureInterior"]["lines"][2]["code"]  # GOLD "" (empty) against missing: both empty
    assert gold["AzureInterior"]["lines"][4]["code"] == ""
    data["FlipkartInvoice"]["date"] = "20.10.2015"  # the same date
    data["oyo"]["hotel_details"] = "OYO 4189  resort NANGANALLUR"  # GOLD " OYO 4189 Resort Nanganallur"
    assert data["coolblue1"]["lines"].pop(1) == {"line_note": "Serienummer: SDMPP373MPP15"}  # missed
    extra_line = {"name": "Bonus", "qty": 1.0, "price_unit": 0.0, "price_subtotal": 0.0}
    data["saeco"]["lines"].append(extra_line)  # 4 spurious values
    data["free_fiber"]["invoice_number"] = None  # missed
    data["NetpresseInvoice"]["amount_tax"] = 9.34  # spurious: GOLD has no amount_tax
    data["QualityHosting"]["vat"] = "DE232446240"  # wrong ("DE 232 446 240"); fuzzy ratio 22/25 = 0.88
    data["SammyMaystoneLinesTest"]["invoice_number"] = "INV-2022-0001"  # wrong ("invoice_number_1")
    del data["Orlen"]  # missing: its 11 values missed
    folder = str(corpora / "invoice2data" / "compare")
    kept = [{"file": g["file"], "data": data[Path(g["file"]).stem]} for g in gold_rows if Path(g["file"]).stem in data]
    out_rows = as_out(kept, folder)
    out_rows.append({"id": "files/camelot-example.pdf", "source": "files/camelot-example.pdf", "data": {"issuer": "x"}})
    gold_path = write_jsonl(tmp_path / "gold.jsonl", gold_rows)
    out_path = write_jsonl(tmp_path / "out.jsonl", out_rows)
    schema = tmp_path / "invoice2data.schema.json"
    schema.write_text(json.dumps(I2D_SCHEMA), encoding="utf-8")

    # GOLD: 337 values and 1 empty string (AzureInterior's "code": "")
    code, stdout, err = run_main(capsys, gold_path, out_path, "--schema", schema, "--json")
    assert code == 0, err
    result = json.loads(stdout)
    overall = result["overall"]
    wrong, missed, spurious = 3, 1 + 1 + 11, 4 + 1
    correct = 337 - wrong - missed
    assert correct == 321
    expected = {"n": 338 + spurious, "correct": correct, "both_null": 1, "wrong": wrong, "missed": missed}
    expected |= {"spurious": spurious, "absent": 0}
    assert {k: overall[k] for k in expected} == expected
    assert overall["precision"] == pytest.approx(321 / 329)  # 0.9757
    assert overall["recall"] == pytest.approx(321 / 337)  # 0.9525
    assert overall["f1"] == pytest.approx(642 / 666)  # 0.9640
    assert overall["accuracy"] == pytest.approx(322 / 343)  # 0.9388
    records = result["records"]
    assert (records["gold"], records["out"], records["matched"]) == (12, 12, 11)
    assert records["missing_ids"] == ["Orlen.txt"] and records["extra_ids"] == ["files/camelot-example.pdf"]
    assert records["exact"] == 4  # AzureInterior, FlipkartInvoice, coolblue2, oyo
    fields = result["fields"]
    # every invoice but SammyMaystone has an amount: AWS wrong, Orlen missed
    assert [fields["amount"][k] for k in ("n", "correct", "wrong", "missed")] == [11, 9, 1, 1]
    assert fields["date"]["correct"] == 11 and fields["date"]["missed"] == 1
    assert (fields["lines[].line_note"]["correct"], fields["lines[].line_note"]["missed"]) == (2, 1)
    assert fields["lines[].price_unit"]["wrong"] == 0 and fields["lines[].price_unit"]["spurious"] == 1
    assert fields["hotel_details"]["correct"] == 1

    # --fuzzy 0.85 forgives QualityHosting's VAT number (0.88), not Sammy's invoice number
    code, stdout, _ = run_main(capsys, gold_path, out_path, "--schema", schema, "--json", "--fuzzy", "0.85")
    result = json.loads(stdout)
    assert (result["overall"]["correct"], result["overall"]["wrong"]) == (322, 2)
    assert result["overall"]["accuracy"] == pytest.approx(323 / 343)
    assert result["records"]["exact"] == 5
    assert result["fields"]["invoice_number"]["wrong"] == 1

    # gold against itself
    code, stdout, _ = run_main(capsys, gold_path, gold_path, "--schema", schema, "--json", "--min-accuracy", "1")
    assert code == 0
    assert json.loads(stdout)["overall"]["accuracy"] == 1.0


# --- impossible and exact numbers, long lists -------------------------------------------------------------


def read_pair(tmp_path: Path, gold: str, out: str) -> tuple[list[Record], list[Record]]:
    """GOLD and OUT records with `data` written as JSON text, read as the command reads them."""
    (tmp_path / "g.jsonl").write_text(f'{{"id": "r", "data": {{"n": {gold}}}}}\n')
    (tmp_path / "o.jsonl").write_text(f'{{"id": "r", "data": {{"n": {out}}}}}\n')
    return read_records(tmp_path / "g.jsonl", "GOLD"), read_records(tmp_path / "o.jsonl", "OUT")


@pytest.mark.parametrize(
    ("gold", "out", "tolerance", "agree"),
    [
        ("5", "1e309", 0.005, False),  # beyond any float: never right (the noise term was infinite)
        ("1e309", "5", 0.0, False),
        ("0", "-1e999", 0.0, False),
        ("1e309", "1e309", 0.005, False),
        ("9007199254740993", "9007199254740992", 0.0, False),  # integers as integers
        ("9007199254740993", "9007199254740993", 0.0, True),
        ("1e-320", "0", 0.0, False),  # exact at tolerance 0
        ("1e-320", "0", 0.005, True),
        ("1e-400", "0", 0.0, False),  # too small for a float, still not 0
        ("0.1000000000000000000001", "0.1", 0.0, False),  # more digits than a float keeps
        ("1.005", "1.0", 0.005, True),  # decimal arithmetic: exactly the tolerance
        ("1" + "0" * 400, "1" + "0" * 400, 0.0, True),  # a 401-digit integer: no OverflowError
        ("1" + "0" * 400, "1" + "0" * 399 + "1", 0.0, False),
        ("1" + "0" * 400, "1" + "0" * 399 + "1", 0.005, False),
        ("1" + "0" * 400, "1" + "0" * 399 + "1", 1.0, True),
    ],
)
def test_numbers_are_compared_exactly_and_impossible_ones_never_agree(
    tmp_path: Path, gold: str, out: str, tolerance: float, agree: bool
) -> None:
    golds, outs = read_pair(tmp_path, gold, out)
    report = Evaluator(NUMBER_SCHEMA, EvalOptions(tolerance=tolerance)).evaluate(golds, outs)
    assert field(report, "n") == ({"correct": 1} if agree else {"wrong": 1})


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_numbers_given_in_python_never_agree(value: float) -> None:
    assert field(compare({"n": value}, {"n": value}, NUMBER_SCHEMA, tolerance=1.0), "n") == {"wrong": 1}
    assert field(compare({"n": 5}, {"n": value}, NUMBER_SCHEMA, relative_tolerance=1.0), "n") == {"wrong": 1}


def test_the_command_reports_impossible_numbers_without_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    huge = "1" + "0" * 400
    gold = tmp_path / "gold.jsonl"
    gold.write_text(f'{{"id": "r", "data": {{"a": 5, "b": {huge}, "c": 1.25}}}}\n')
    out = tmp_path / "out.jsonl"
    out.write_text(f'{{"id": "r", "data": {{"a": 1e309, "b": {huge}1, "c": 1.25}}}}\n')
    code, text, err = run_main(capsys, gold, out, "--schema", "invoice", "--json", "--details", "--tolerance", "0")
    assert code == 0 and err == ""
    result = json.loads(text)
    assert result["fields"]["a"]["wrong"] == 1 and result["fields"]["b"]["wrong"] == 1
    assert result["fields"]["c"]["correct"] == 1
    shown = {d["field"]: (d["gold"], d["out"]) for d in result["disagreements"]}
    assert shown["a"] == (5, "1E+309") and shown["b"] == (int(huge), int(huge + "1"))


INVOICE_SCHEMA = json.loads((ROOT / "schemas" / "invoice.json").read_text())


def line_items(count: int, *, unit_price: float | None = 2.5) -> list[dict[str, Any]]:
    return [
        {"description": f"part {i:05d}", "quantity": i % 7 + 1, "unit_price": unit_price, "amount": i * 1.5}
        for i in range(count)
    ]


def test_long_lists_are_paired_by_identity_in_bounded_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """3,000 lines, none identical to its GOLD line (OUT lacks every unit price), shuffled: 72.7 s and
    9 million item comparisons before; now paired by their description, a handful of comparisons."""
    gold = line_items(3000)
    out = line_items(3000, unit_price=None)
    out.reverse()
    out[10]["amount"] = -1.0
    scored: list[int] = []
    original = Evaluator._score

    def counting(self: Evaluator, *args: Any) -> float:
        scored.append(1)
        return original(self, *args)

    monkeypatch.setattr(Evaluator, "_score", counting)
    report = compare({"line_items": gold}, {"line_items": out}, INVOICE_SCHEMA)
    assert field(report, "line_items[].description") == {"correct": 3000}
    assert field(report, "line_items[].unit_price") == {"missed": 3000}
    assert field(report, "line_items[].amount") == {"correct": 2999, "wrong": 1}
    assert report.approximations == {} and scored == []


def test_what_identity_leaves_is_assigned_optimally_or_approximated_and_said(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gold = line_items(2000)
    out = line_items(2000, unit_price=None)
    for item in out[:30]:  # misspelt: these 30 have no identity in OUT; 30 x 30 x 30 is assigned optimally
        item["description"] = item["description"].replace("part", "prat")
    report = compare({"line_items": gold}, {"line_items": out}, INVOICE_SCHEMA)
    assert field(report, "line_items[].description") == {"correct": 1970, "wrong": 30}
    assert field(report, "line_items[].amount") == {"correct": 2000}  # each paired with its own line
    assert report.approximations == {}
    for item in out[:400]:  # 400 x 400 x 400 is past the optimal assignment: the bounded approximation
        item["description"] = item["description"].replace("part", "prat")
    scored: list[int] = []
    original = Evaluator._score
    monkeypatch.setattr(Evaluator, "_score", lambda self, *a: scored.append(1) or original(self, *a))
    report = compare({"line_items": gold}, {"line_items": out}, INVOICE_SCHEMA)
    assert report.approximations == {"line_items[]": 1}
    assert len(scored) <= 400 * 8  # each left item against at most _CANDIDATES others
    assert field(report, "line_items[].amount") == {"correct": 2000}  # the amounts tell them apart
    write_jsonl(tmp_path / "g.jsonl", [{"id": "r", "data": {"line_items": gold}}])
    write_jsonl(tmp_path / "o.jsonl", [{"id": "r", "data": {"line_items": out}}])
    code, text, _ = run_main(capsys, tmp_path / "g.jsonl", tmp_path / "o.jsonl", "--schema", "invoice")
    assert code == 0
    assert "note: 1 list at line_items[] paired approximately" in text
    code, text, _ = run_main(capsys, tmp_path / "g.jsonl", tmp_path / "o.jsonl", "--schema", "invoice", "--json")
    assert json.loads(text)["approximations"] == {"line_items[]": 1}


def test_long_scalar_lists_are_approximated_in_bounded_work() -> None:
    gold = [i * 1.0 for i in range(400)]
    out = [i + 0.001 for i in reversed(range(400))]  # none identical, each within the tolerance
    report = compare({"amounts": gold}, {"amounts": out})
    assert field(report, "amounts[]") == {"correct": 400}
    assert report.approximations == {"amounts[]": 1}
