"""From review to gold: the review page's labelling in a real headless Chromium (real keys and clicks through
the DevTools protocol, `localStorage`, a real download), the exported file read by the real `extractor eval`
in a subprocess, `review --gold` applying labels and showing where OUT disagrees, the page's schema check
against `jsonschema`, and what a reviewer is shown (weak matches, empty filters, errors, ids)."""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from browser import CTRL, SHIFT, Chromium, DevTools, dumped, running_chromium
from pydantic import BaseModel, Field

from extractor.quality.evaluate import EvalInputError, Evaluator, read_records
from extractor.quality.review import ReviewPage, ReviewText, record_view, render_page
from extractor.quality.review.labels import gold_labels
from extractor.quality.review.load import load_output
from extractor.sources import find_evidence_in

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "number": {"type": "string"},
        "date": {"type": ["string", "null"], "format": "date"},
        "total": {"type": "number"},
        "currency": {"enum": ["EUR", "USD", "GBP", None]},
        "week": {"type": ["integer", "null"]},
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}, "amount": {"type": "number"}},
                "required": ["sku", "qty", "amount"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["number", "total", "currency", "lines"],
    "additionalProperties": False,
}
TEXTS = {
    "a.txt": "Invoice A-17\nDate: 17.01.2024\nWeek 1: delivery\nSKU-1  3 x 10.00 = 30.00\nSKU-2  1 x 12.50 = 12.50\n"
    "Total due: 42.50 EUR\n",
    "b.txt": "Invoice B-22\nDate: 02.02.2024\nSKU-9  2 x 7.25 = 14.50\nSKU-8  4 x 1.00 = 4.00\nTotal: 21.50 USD\n",
    "c.txt": "blurry scan of something\n",
}
RECORDS: dict[str, dict[str, Any]] = {
    "a.txt": {
        "number": "A-17",
        "date": "2024-01-17",
        "total": 42.5,
        "currency": "EUR",
        "week": 1,
        "lines": [{"sku": "SKU-1", "qty": 3, "amount": 30.0}, {"sku": "SKU-2", "qty": 1, "amount": 12.5}],
    },
    "b.txt": {
        "number": "B-22",
        "date": "2024-02-02",
        "total": 21.5,
        "currency": "EUR",
        "week": None,
        "lines": [
            {"sku": "SKU-9", "qty": 2, "amount": 14.5},
            {"sku": "SKU-8", "qty": 4, "amount": 4.0},
            {"sku": "SKU-6", "qty": 1, "amount": 3.0},  # made up
        ],
    },
    "c.txt": {"number": "C-1", "date": None, "total": 1, "currency": None, "week": None, "lines": []},
}


def rows(lines: int) -> list[str]:
    items = [f"lines[{i}].{k}" for i in range(lines) for k in ("sku", "qty", "amount")]
    return ["number", "date", "total", "currency", "week", *(items or ["lines"])]


# the rows of each record, in order (`r<record>v<index>`)
ROWS = {"a.txt": rows(2), "b.txt": rows(3), "c.txt": rows(0)}


def write_run(folder: Path, records: dict[str, dict[str, Any]] = RECORDS, name: str = "out.jsonl") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for file, text in TEXTS.items():
        (folder / file).write_text(text)
    (folder / "schema.json").write_text(json.dumps(SCHEMA))
    out = folder / name
    out.write_text("".join(json.dumps({"id": i, "source": i, "data": d}) + "\n" for i, d in records.items()))
    return out


def extractor(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "extractor", *args], cwd=cwd, capture_output=True, text=True, timeout=180
    )


def key(ident: str, row: str) -> str:
    return f"r{list(RECORDS).index(ident)}v{ROWS[ident].index(row)}"


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run's folder: three text files, OUT, the schema, and the page `review --schema` wrote."""
    folder = tmp_path / "run"
    write_run(folder)
    done = extractor("review", "out.jsonl", "-o", "page.html", "--schema", "schema.json", cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture
def chromium(run: Path) -> Iterator[tuple[asyncio.AbstractEventLoop, Chromium]]:
    with running_chromium((run / "page.html").as_uri()) as started:
        yield started


ROW_CLASSES = "(k => document.querySelector(`tr[data-key='${k}']`).className)"
PROGRESS = "document.getElementById('progress').textContent"


async def at_row(tools: DevTools, row_key: str) -> None:
    await tools.click(f'tr[data-key="{row_key}"] td.path')
    await tools.until(f"document.querySelector('tr.cur') === document.querySelector('tr[data-key=\"{row_key}\"]')")


async def correct(tools: DevTools, row_key: str, *keys: str, text: str | None = None) -> None:
    """Edits a value from the keyboard: e, then `text` typed (replacing it) or `keys` pressed, then Enter."""
    await at_row(tools, row_key)
    await tools.press("e")
    await tools.until("document.activeElement && document.activeElement.classList.contains('in')")
    if text is not None:
        await tools.type(text)
    for k in keys:
        await tools.press(k)
    await tools.press("Enter")
    await tools.until(f"{ROW_CLASSES}('{row_key}').split(' ').includes('fix')")


def test_labels_made_in_the_browser_survive_a_reload_and_eval_reads_the_export(
    run: Path, chromium: tuple[asyncio.AbstractEventLoop, Chromium], tmp_path: Path
) -> None:
    """The issue's check: correct two values, remove a list item, mark a record unusable (keys and clicks),
    reload and find the work restored, export (a real download), and `extractor eval` on the file counts
    exactly what was changed."""
    loop, browser = chromium
    downloads = tmp_path / "downloads"
    downloads.mkdir()

    async def scenario() -> None:
        tools = await browser.page()
        target = await browser.browser_target()
        await target.call("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
        assert await tools.js(PROGRESS) == "0 of 31 values reviewed \u00b7 0 of 3 records done"
        # a.txt: the total typed anew (a number input), then the rest accepted with A
        await correct(tools, key("a.txt", "total"), text="40.5")
        assert await tools.js(f"document.querySelector('tr[data-key={key('a.txt', 'total')}] td.act').textContent")
        await tools.press("A", SHIFT)
        # b.txt: the currency picked from the enum's choices (EUR -> USD), the made-up line removed (x)
        await correct(tools, key("b.txt", "currency"), "ArrowDown")
        assert "\u2192 USD" in await tools.js(
            f"document.querySelector('tr[data-key={key('b.txt', 'currency')}] td.act').textContent"
        )
        await at_row(tools, key("b.txt", "lines[2].qty"))
        await tools.press("x")
        for row in ("lines[2].sku", "lines[2].qty", "lines[2].amount"):
            await tools.until(f"{ROW_CLASSES}('{key('b.txt', row)}').split(' ').includes('gone')")
        await tools.press("A", SHIFT)
        # c.txt: unusable; then one value accepted by mistake and undone (z): the work is as before
        await at_row(tools, key("c.txt", "number"))
        await tools.press("u")
        await tools.until("document.getElementById('r2').classList.contains('bad')")
        done = "31 of 31 values reviewed \u00b7 3 of 3 records done (1 unusable)"
        assert await tools.until(f"{PROGRESS} === '{done}'")
        await tools.press("u")
        await tools.until("!document.getElementById('r2').classList.contains('bad')")
        await tools.press("z")
        await tools.until("document.getElementById('r2').classList.contains('bad')")
        # reloaded: the work is restored from the browser
        await tools.call("Page.reload")
        await asyncio.sleep(0.2)
        await tools.ready()
        assert "Restored your work on 3 records" in await tools.js("document.getElementById('message').textContent")
        assert await tools.js(PROGRESS) == done
        assert "fix" in (await tools.js(f"{ROW_CLASSES}('{key('a.txt', 'total')}')")).split()
        assert "fix" in (await tools.js(f"{ROW_CLASSES}('{key('b.txt', 'currency')}')")).split()
        assert "gone" in (await tools.js(f"{ROW_CLASSES}('{key('b.txt', 'lines[2].sku')}')")).split()
        assert "ok" in (await tools.js(f"{ROW_CLASSES}('{key('b.txt', 'total')}')")).split()
        assert await tools.js("document.getElementById('r2').classList.contains('bad')")
        # exported by the page's own download
        await tools.click("#export")
        deadline = time.monotonic() + 30
        while not (downloads / "gold.jsonl").exists():
            assert time.monotonic() < deadline, "no download"
            await asyncio.sleep(0.1)
        assert "Exported gold.jsonl: 2 records labelled, 1 unusable" in await tools.js(
            "document.getElementById('message').textContent"
        )

    loop.run_until_complete(scenario())
    gold = downloads / "gold.jsonl"
    lines = [json.loads(line) for line in gold.read_text().splitlines()]
    expected_a = {**RECORDS["a.txt"], "total": 40.5}
    expected_b = {**RECORDS["b.txt"], "currency": "USD", "lines": RECORDS["b.txt"]["lines"][:2]}
    assert lines == [
        {"id": "a.txt", "data": expected_a},
        {"id": "b.txt", "data": expected_b},
        {"id": "c.txt", "unusable": True},
    ]
    for line in lines[:2]:
        jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(
            line["data"]
        )
    (run / "gold.jsonl").write_bytes(gold.read_bytes())
    done = extractor("eval", "gold.jsonl", "out.jsonl", "--schema", "schema.json", "--json", "--details", cwd=run)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    overall = report["overall"]
    # two corrections: wrong; the removed line's three values: spurious; nothing else disagrees
    assert (overall["wrong"], overall["spurious"], overall["missed"], overall["absent"]) == (2, 3, 0, 0)
    assert overall["correct"] + overall["both_null"] == overall["n"] - 5
    assert {(d["record"], d["where"], d["kind"]) for d in report["disagreements"]} == {
        ("a.txt", "total", "wrong"),
        ("b.txt", "currency", "wrong"),
        ("b.txt", "lines[out 2].sku", "spurious"),
        ("b.txt", "lines[out 2].qty", "spurious"),
        ("b.txt", "lines[out 2].amount", "spurious"),
    }
    records = report["records"]
    assert (records["gold"], records["out"], records["matched"], records["unusable"]) == (2, 2, 2, 1)
    assert records["unusable_ids"] == ["c.txt"] and records["extra"] == 0
    text = extractor("eval", "gold.jsonl", "out.jsonl", "--schema", "schema.json", cwd=run)
    assert "left out: 1 GOLD record marked unusable (c.txt), and OUT's records of them" in text.stdout


def test_review_with_gold_applies_the_labels_and_shows_where_a_new_out_disagrees(tmp_path: Path) -> None:
    """A second pass: GOLD from the first, a new OUT where a.txt now agrees, b.txt has another currency and
    a week GOLD says is not there, d.txt is new. The page opens with the labels applied (exporting at once
    gives GOLD back) and shows the disagreements (#disagree); d.txt is left to review."""
    folder = tmp_path / "run"
    gold_a = {**RECORDS["a.txt"], "total": 40.5}
    gold_b = {**RECORDS["b.txt"], "currency": "USD", "lines": RECORDS["b.txt"]["lines"][:2]}
    new = {
        "a.txt": gold_a,
        "b.txt": {**RECORDS["b.txt"], "currency": "GBP", "week": 7},
        "c.txt": RECORDS["c.txt"],
        "d.txt": {"number": "D-4", "date": None, "total": 5.0, "currency": "EUR", "week": None, "lines": []},
    }
    write_run(folder, new, "out2.jsonl")
    gold_lines = [
        {"id": "a.txt", "data": gold_a},
        {"id": "b.txt", "data": gold_b},
        {"id": "c.txt", "unusable": True},
        {"id": "gone.txt", "data": {"number": "G-1", "total": 2, "currency": None, "lines": []}},
    ]
    (folder / "gold.jsonl").write_text("".join(json.dumps(line) + "\n" for line in gold_lines))
    done = extractor(
        "review", "out2.jsonl", "--gold", "gold.jsonl", "--schema", "schema.json", "-o", "page.html", cwd=folder
    )
    assert done.returncode == 0, done.stderr
    assert "gold.jsonl: 3 records labelled, OUT disagrees with 1 of them" in done.stdout
    page = folder / "page.html"
    html = page.read_text()
    assert "1 labelled record not reviewable here (not in OUT, or failed): kept as they are in the export" in html
    assert '<span class="dis" title="where OUT disagrees with the gold labels">wrong: gold USD</span>' in html
    assert "spurious: gold null" in html and "missed: gold" not in html  # the removed line is still removed
    with running_chromium(page.as_uri() + "#disagree") as (loop, browser):

        async def check() -> dict[str, Any]:
            tools = await browser.page()
            shown = "Array.from(document.querySelectorAll('section.record:not([hidden])'), s => s.id).join()"
            classes = {
                row: await tools.js(f"{ROW_CLASSES}('r1v{ROWS['b.txt'].index(row)}')")
                for row in ("currency", "week", "lines[2].sku", "number")
            }
            return {
                "shown": await tools.js(shown),
                "classes": classes,
                "progress": await tools.js(PROGRESS),
                "gold": await tools.js("window.extractorReview.goldText()"),
                "todo": await tools.js("document.querySelector('nav a[data-filter=todo]').textContent"),
            }

        got = loop.run_until_complete(check())
    assert got["shown"] == "r1"
    assert "fix" in got["classes"]["currency"].split() and "none" in got["classes"]["week"].split()
    assert "gone" in got["classes"]["lines[2].sku"].split() and "ok" in got["classes"]["number"].split()
    assert got["progress"] == "31 of 37 values reviewed \u00b7 3 of 4 records done (1 unusable)"
    assert got["todo"] == "To review (1)"  # d.txt
    exported = [json.loads(line) for line in got["gold"].splitlines()]
    assert exported == gold_lines  # the labels as they were, the one not on the page carried


def test_gold_labels_from_the_evals_comparison(tmp_path: Path) -> None:
    """`gold_labels` (what `--gold` applies) on a record with every kind of difference: a value corrected,
    one struck (GOLD null), a list item only OUT has (removed) and one only GOLD has (added), a key OUT
    lacks (extra); a null in a scalar list compared with nothing is accepted."""
    out = tmp_path / "out.jsonl"
    data = {"a": 1, "b": "x", "items": [{"k": "p"}, {"k": "q"}], "tags": ["t", None]}
    gold = {"a": 2, "b": None, "items": [{"k": "p"}, {"k": "r"}, {"k": "s"}], "tags": ["t"], "c": "new"}
    out.write_text(json.dumps({"id": "r", "source": "r.txt", "data": data}) + "\n")
    (tmp_path / "gold.jsonl").write_text(json.dumps({"id": "r", "data": gold}) + "\n")
    labels = gold_labels(tmp_path / "gold.jsonl", load_output(out, None), out, Evaluator())
    record = labels.records["r"]
    # rows: a, b, items[0].k, items[1].k, tags[0], tags[1]
    assert record.state["d"] == {"0": ["v", 2], "1": 0, "2": 1, "3": ["v", "r"], "4": 1, "5": 1}
    assert record.state["rm"] == {} and record.state["ex"] == {'["c"]': "new"}
    assert record.state["add"] == {'["items"]': [{"v": {"k": "s"}, "d": 1}]}
    assert record.disagree == {0: ("wrong", 2), 1: ("spurious", None), 3: ("wrong", "r")}
    assert (record.added, record.removed, record.extra, record.disagreements) == (1, 0, 1, 5)
    # an OUT item with nothing like it in GOLD is removed
    (tmp_path / "gold.jsonl").write_text(json.dumps({"id": "r", "data": {**data, "items": [{"k": "p"}]}}) + "\n")
    labels = gold_labels(tmp_path / "gold.jsonl", load_output(out, None), out, Evaluator())
    assert labels.records["r"].state["rm"] == {'["items",1]': 1} and labels.records["r"].removed == 1


def test_the_pages_schema_check_agrees_with_jsonschema(run: Path) -> None:
    """The page checks labels against the schema before it exports them: on these cases (a pydantic model's
    schema with $defs, anyOf, enum and bounds; formats; tuples; oneOf, not) it says what jsonschema says."""

    class Line(BaseModel):
        sku: str = Field(pattern=r"^[A-Z]+-\d+$")
        qty: int = Field(ge=1, le=99)

    class Order(BaseModel):
        id: str = Field(min_length=2, max_length=8)
        kind: str | None = Field(default=None, json_schema_extra={"enum": ["a", "b", None]})
        lines: list[Line] = Field(max_length=2)
        when: str | None = Field(default=None, json_schema_extra={"format": "date"})

    order = Order.model_json_schema()
    other: dict[str, Any] = {
        "type": "object",
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "t": {"type": "string", "format": "time"},
            "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False},
            "one": {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 5}]},
            "no": {"not": {"const": "x"}},
            "tags": {"type": "array", "uniqueItems": True, "items": {"type": "string"}},
            "m": {"type": "number", "multipleOf": 0.5, "exclusiveMinimum": 0},
        },
        "required": ["at"],
        "additionalProperties": False,
    }
    cases: list[tuple[dict[str, Any], Any]] = [
        (order, {"id": "A1", "lines": [{"sku": "AB-1", "qty": 3}]}),
        (order, {"id": "A", "lines": []}),
        (order, {"id": "A1", "kind": "c", "lines": []}),
        (order, {"id": "A1", "kind": None, "lines": [], "when": "2024-02-30"}),
        (order, {"id": "A1", "lines": [], "when": "2024-02-29"}),
        (order, {"id": "A1", "lines": [{"sku": "ab-1", "qty": 3}]}),
        (order, {"id": "A1", "lines": [{"sku": "AB-1", "qty": 0}]}),
        (order, {"id": "A1", "lines": [{"sku": "AB-1", "qty": 1.5}]}),
        (order, {"id": "A1", "lines": [{"sku": "AB-1", "qty": 1}] * 3}),
        (order, {"id": "A1", "lines": [{"sku": "AB-1"}]}),
        (order, {"lines": []}),
        (other, {"at": "2024-01-17T10:00:00Z", "t": "10:00:00+01:00", "pair": [1, "a"], "one": 1, "m": 1.5}),
        (other, {"at": "2024-01-17 10:00"}),
        (other, {"at": "2024-01-17T10:00:00Z", "t": "25:00:00Z"}),
        (other, {"at": "2024-01-17T10:00:00Z", "pair": [1, "a", 2]}),
        (other, {"at": "2024-01-17T10:00:00Z", "pair": ["a"]}),
        (other, {"at": "2024-01-17T10:00:00Z", "one": 7}),
        (other, {"at": "2024-01-17T10:00:00Z", "one": 7.5}),
        (other, {"at": "2024-01-17T10:00:00Z", "no": "x"}),
        (other, {"at": "2024-01-17T10:00:00Z", "tags": ["a", "a"]}),
        (other, {"at": "2024-01-17T10:00:00Z", "m": 1.25}),
        (other, {"at": "2024-01-17T10:00:00Z", "m": 0}),
        (other, {"at": "2024-01-17T10:00:00Z", "m": 0.3}),  # 0.3 / 0.5 is not whole
        (other, {"at": "2024-01-17T10:00:00Z", "extra": 1}),
        (SCHEMA, {**RECORDS["a.txt"], "currency": "JPY"}),
        (SCHEMA, RECORDS["b.txt"]),
    ]
    expected = [
        jsonschema.Draft202012Validator(s, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).is_valid(v)
        for s, v in cases
    ]
    assert expected.count(True) == 5 and expected.count(False) == len(cases) - 5  # the cases do test both
    with running_chromium((run / "page.html").as_uri()) as (loop, browser):

        async def verdicts() -> list[bool]:
            tools = await browser.page()
            return [
                await tools.js(f"window.extractorReview.validate({json.dumps(s)}, {json.dumps(v)}).length === 0")
                for s, v in cases
            ]

        got = loop.run_until_complete(verdicts())
    assert got == expected


def test_work_on_changed_data_is_kept_aside_and_an_invalid_label_blocks_the_export(tmp_path: Path) -> None:
    """Reopened on a new OUT whose record b.txt changed, the saved work applies to the unchanged records only;
    a GOLD label that does not fit the schema is named and nothing is exported."""
    folder = tmp_path / "run"
    out = write_run(folder)
    wrong = {"id": "a.txt", "data": {**RECORDS["a.txt"], "total": "lots"}}
    (folder / "gold.jsonl").write_text(json.dumps(wrong) + "\n")
    done = extractor(
        "review",
        "out.jsonl",
        "--schema",
        "schema.json",
        "--gold",
        "gold.jsonl",
        "-o",
        "p.html",
        cwd=folder,
    )
    assert done.returncode == 0, done.stderr
    page = folder / "p.html"
    with running_chromium(page.as_uri()) as (loop, browser):

        async def scenario() -> tuple[int, str, bool, str]:
            tools = await browser.page()
            refused = await tools.js("window.extractorReview.exportGold().problems.length")
            message = await tools.js("document.getElementById('message').textContent")
            # the same page on a new OUT: b.txt's data changed, a.txt's not; b.txt's work is not applied
            await at_row(tools, key("b.txt", "number"))
            await tools.press("A", SHIFT)
            await tools.until(f"{PROGRESS}.startsWith('25 of 31')")
            out.write_text(out.read_text().replace('"B-22"', '"B-23"'))
            again = extractor("review", "out.jsonl", "--schema", "schema.json", "-o", "p.html", cwd=folder)
            assert again.returncode == 0, again.stderr
            await tools.call("Page.reload")
            await asyncio.sleep(0.2)
            await tools.ready()
            note = await tools.js("document.getElementById('message').textContent")
            fresh = await tools.js(f"{ROW_CLASSES}('{key('b.txt', 'number')}')")
            return refused, message, "ok" in fresh.split(), note + " | " + await tools.js(PROGRESS)

        refused, message, applied, note = loop.run_until_complete(scenario())
    assert refused == 1
    assert "Not exported: 1 record does not match the schema" in message
    assert "a.txt: $.total is a string, not number" in message
    assert not applied  # b.txt's work was on other data
    assert note == (
        "1 record has other data than when you reviewed it here: that work is kept aside, not applied. | "
        "0 of 31 values reviewed \u00b7 0 of 3 records done"
    )


# --- what a reviewer is shown ------------------------------------------------------------------------


def test_a_one_or_two_digit_number_found_elsewhere_is_a_weak_match_not_support() -> None:
    """A made-up `week: 1` is "found" in "Week 1:" (and `qty: 3` in "3 x"): shown as weak, not as found."""
    text = TEXTS["a.txt"]
    evidence = {e.path: e for e in find_evidence_in(RECORDS["a.txt"], text)}
    assert evidence["$.week"].found and evidence["$.week"].weak and text[slice(*evidence["$.week"].spans[0])] == "1"
    assert evidence["$.lines[0].qty"].weak and not evidence["$.total"].weak and not evidence["$.number"].weak
    assert not find_evidence_in({"n": 123}, "Item 123")[0].weak and find_evidence_in({"n": "12"}, "x 12")[0].weak
    assert find_evidence_in({"rate": 0.19}, "VAT 19%")[0].weak  # two digits, printed as a percentage
    view = record_view(0, {"id": "a", "source": "a", "data": RECORDS["a.txt"]}, ReviewText(text))
    by_path = {v.path: v for v in view.values}
    assert by_path["$.week"].status == "weak" and by_path["$.total"].status == "found"
    assert [v.path for v in view.weak] == ["$.week", "$.lines[0].qty", "$.lines[1].qty"]
    html = render_page(ReviewPage("out.jsonl", None, [view]))
    assert '<tr class="v weak" data-key="r0v4"' in html and "3 weak matches" in html
    assert '<mark class="ev weak" data-v="r0v4 r0v9" title="$.week, $.lines[1].qty">1</mark>' in html


def test_a_failed_records_error_is_shown_once_and_equal_id_and_source_once() -> None:
    error = {"type": "OutputInvalidError", "message": "OutputInvalidError: total: not a number"}
    failure = {"id": "x.pdf", "source": "x.pdf", "error": error}
    html = render_page(ReviewPage("out.jsonl", None, [record_view(0, failure, ReviewText(None))]))
    assert html.count("OutputInvalidError") == 1 and '<pre class="error">total: not a number</pre>' in html
    assert html.count(">x.pdf<") == 1 and 'class="src"' not in html
    bare = {"id": "y", "source": "in.jsonl:2", "error": {"type": "TimeoutError", "message": "TimeoutError"}}
    html = render_page(ReviewPage("out.jsonl", None, [record_view(0, bare, ReviewText(None))]))
    assert html.count("TimeoutError") == 1 and '<pre class="error">' not in html
    assert '<span class="rid">y</span><span class="src">in.jsonl:2</span>' in html


def test_an_empty_filter_says_so_and_values_do_not_wrap_mid_word(run: Path) -> None:
    """`#failed` on a run without failures says there are none. A long single-word value beside the "not
    found" flag keeps its word whole (it wrapped inside the word when the cell could break anywhere)."""
    html = dumped(run / "page.html", "#failed")
    assert '<p class="legend" id="none">No failed records.</p>' in html
    assert dumped(run / "page.html", "#all").count('<p class="legend" id="none" hidden="">') == 1
    words = {"seller": "Schwarzwaldhochstrassenverwaltungsgesellschaft", "note": "Supercalifragilisticexpialidocious"}
    write_run(run, {"a.txt": {**words, "city": "Shelbyville-Springfield"}}, "long.jsonl")
    assert extractor("review", "long.jsonl", "-o", "long.html", cwd=run).returncode == 0
    lines = """(() => Array.from(document.querySelectorAll('tr.v td.val'), cell => {
        const range = document.createRange(); range.selectNodeContents(cell.firstChild);
        return new Set(Array.from(range.getClientRects(), r => Math.round(r.top))).size; }))()"""
    with running_chromium((run / "long.html").as_uri()) as (loop, browser):

        async def measure() -> list[int]:
            tools = await browser.page()
            assert await tools.js("document.querySelectorAll('tr.missing').length") == 3
            result: list[int] = await tools.js(lines)
            return result

        assert loop.run_until_complete(measure()) == [1, 1, 1]


def test_eval_reads_unusable_lines_and_refuses_malformed_ones(tmp_path: Path) -> None:
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"id": "a", "unusable": true}\n{"id": "b", "data": {"x": 1}}\n')
    records = read_records(gold, "GOLD")
    assert [(r.id, r.unusable, r.data) for r in records] == [("a", True, None), ("b", False, {"x": 1})]
    with pytest.raises(EvalInputError, match='no "data" key'):
        read_records(gold, "OUT")  # only GOLD holds labels
    for line, said in (
        ('{"id": "a", "unusable": "yes"}', '"unusable" is true or left out, not string'),
        ('{"id": "a", "unusable": true, "data": {}}', 'a record is "unusable" or has "data", not both'),
    ):
        gold.write_text(line + "\n")
        with pytest.raises(EvalInputError, match=f"GOLD {gold}:1: {said}"):
            read_records(gold, "GOLD")


def test_eval_names_a_scalar_lists_items_by_their_own_index() -> None:
    """A null in a list of strings is left out of the comparison; the places reported are the list's own
    indexes (they counted from the list without its nulls)."""
    report = Evaluator().compare({"tags": ["a", None, "b"]}, {"tags": [None, "a", "c"]})
    assert {(d.where, d.kind) for d in report.disagreements} == {("tags[2]", "missed"), ("tags[out 2]", "spurious")}
    located = Evaluator().locate({"tags": ["a", None, "b"]}, {"tags": [None, "a", "c"]})
    assert [(c.gold_at, c.out_at, c.kind) for c in located.comparisons] == [
        (("tags", 0), ("tags", 1), "correct"),
        (("tags", 2), None, "missed"),
        (None, ("tags", 2), "spurious"),
    ]
    assert located.gold_only == [(("tags",), ("tags", 2))] and located.out_only == [("tags", 2)]


def test_keys_move_strike_add_and_undo_and_eval_counts_an_added_item_as_missed(
    run: Path, chromium: tuple[asyncio.AbstractEventLoop, Chromium]
) -> None:
    """j/k move, n strikes a nullable value (and is refused for a required one), + adds a list item whose
    fields are typed in, Ctrl+Z undoes, . finds the next value to review; eval then counts the struck
    value as spurious and the added item's fields as missed. Without a schema a corrected number stays a
    number."""
    loop, browser = chromium
    current = "document.querySelector('tr.cur') && document.querySelector('tr.cur').getAttribute('data-key')"

    async def scenario() -> str:
        tools = await browser.page()
        assert await tools.js("window.extractorReview.exportGold().lines.length") == 0
        assert (await tools.js("document.getElementById('message').textContent")).startswith("Nothing to export yet")
        for k, expected in (("j", "number"), ("j", "date"), ("j", "total"), ("k", "date")):
            await tools.press(k)
            assert await tools.until(current) == key("a.txt", expected)
        await tools.press("n")  # the date is nullable: struck
        await tools.until(f"{ROW_CLASSES}('{key('a.txt', 'date')}').split(' ').includes('none')")
        assert await tools.js(current) == key("a.txt", "total")
        await at_row(tools, key("a.txt", "number"))
        await tools.press("n")  # required, not nullable: refused
        assert "The schema needs a value at $.number" in await tools.until(
            "document.getElementById('message').textContent"
        )
        assert "none" not in (await tools.js(f"{ROW_CLASSES}('{key('a.txt', 'number')}')")).split()
        await at_row(tools, key("a.txt", "lines[1].sku"))
        await tools.press("+")  # a line the model missed: its three fields, typed in
        await tools.until("document.activeElement && document.activeElement.classList.contains('in')")
        await tools.type("SKU-3")
        await tools.press("Enter")
        for typed in ("5", "50"):
            await tools.until("document.querySelector('tr.cur') && !document.querySelector('tr.cur .editor')")
            await tools.press("e")
            await tools.until("document.activeElement && document.activeElement.classList.contains('in')")
            await tools.type(typed)
            await tools.press("Enter")
        await tools.until("document.querySelectorAll('tbody.more tr.ok').length === 3")
        await at_row(tools, key("a.txt", "currency"))
        await tools.press("a")
        await tools.until(f"{ROW_CLASSES}('{key('a.txt', 'currency')}').split(' ').includes('ok')")
        await tools.press("z", CTRL)
        await tools.until(f"!{ROW_CLASSES}('{key('a.txt', 'currency')}').split(' ').includes('ok')")
        assert await tools.js(current) == key("a.txt", "week")  # a moved on; z undid, leaving the place
        await tools.press(".")  # the next value not reviewed yet
        assert await tools.until(current) == key("a.txt", "lines[0].sku")
        await tools.press("A", SHIFT)
        await tools.until("document.querySelector('#r0 .tools .done').textContent === '14 of 14 reviewed'")
        gold: str = await tools.js("window.extractorReview.goldText()")
        return gold

    gold = loop.run_until_complete(scenario())
    lines = [json.loads(line) for line in gold.splitlines()]
    added = {"sku": "SKU-3", "qty": 5, "amount": 50}
    assert lines == [
        {"id": "a.txt", "data": {**RECORDS["a.txt"], "date": None, "lines": [*RECORDS["a.txt"]["lines"], added]}}
    ]
    (run / "gold.jsonl").write_text(gold)
    done = extractor("eval", "gold.jsonl", "out.jsonl", "--schema", "schema.json", "--json", cwd=run)
    assert done.returncode == 0, done.stderr
    overall = json.loads(done.stdout)["overall"]
    assert (overall["spurious"], overall["missed"], overall["wrong"]) == (1, 3, 0)

    # without a schema, a value keeps its type: a number typed in is a number
    assert extractor("review", "out.jsonl", "-o", "plain.html", cwd=run).returncode == 0
    with running_chromium((run / "plain.html").as_uri()) as (loop2, browser2):

        async def plain() -> Any:
            tools = await browser2.page()
            await correct(tools, key("a.txt", "total"), text="41")
            await tools.press("A", SHIFT)
            return json.loads((await tools.js("window.extractorReview.goldText()")).splitlines()[0])["data"]["total"]

        assert loop2.run_until_complete(plain()) == 41


def test_the_guides_commands_run_as_written(tmp_path: Path) -> None:
    """The eval-and-review guide's three commands, as written, on the examples' invoices (their PDFs
    beside OUT): the page (its gold.jsonl made in Chromium as the export button makes it), eval on it,
    and a second pass."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "docs" / "guides" / "eval-review.md").read_text()
    block = readme.split("### From review to gold", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line.split("#", 1)[0]) for line in block.splitlines() if line.strip()]
    assert [c[:2] for c in commands] == [["extractor", "review"], ["extractor", "eval"], ["extractor", "review"]]
    invoices = root / "examples" / "invoices"
    expected = [json.loads(line) for line in (invoices / "expected.jsonl").read_text().splitlines()]
    for line in expected:
        shutil.copy(invoices / line["file"], tmp_path / line["file"])
    out = [{"id": line["file"], "source": line["file"], "data": line["data"]} for line in expected]
    (tmp_path / "out.jsonl").write_text("".join(json.dumps(r) + "\n" for r in out))
    out[0]["data"] = {**out[0]["data"], "total": out[0]["data"]["total"] + 1}
    (tmp_path / "new.jsonl").write_text("".join(json.dumps(r) + "\n" for r in out))

    done = extractor(*commands[0][1:], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with running_chromium((tmp_path / "review.html").as_uri()) as (loop, browser):

        async def label() -> str:
            tools = await browser.page()
            assert await tools.js("window.extractorReview.acceptAll()") > 100
            got = await tools.js("window.extractorReview.exportGold()")
            assert got["problems"] == [] and got["labelled"] == 4
            text: str = await tools.js("window.extractorReview.goldText()")
            return text

        (tmp_path / "gold.jsonl").write_text(loop.run_until_complete(label()))
    done = extractor(*commands[1][1:], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "records: 4 in GOLD, 4 in OUT, 4 matched" in done.stdout and "every field right: 4 of 4" in done.stdout
    done = extractor(*commands[2][1:], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "gold.jsonl: 4 records labelled, OUT disagrees with 1 of them" in done.stdout


def test_a_gold_file_that_cannot_be_read_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    write_run(tmp_path)
    (tmp_path / "gold.jsonl").write_text('{"id": "a.txt", "data": {}}\n{"id": "a.txt", "unusable": true}\n')
    done = extractor("review", "out.jsonl", "--gold", "gold.jsonl", cwd=tmp_path)
    assert done.returncode == 2 and "error: GOLD gold.jsonl:2: id 'a.txt' again (first at line 1)" in done.stderr
    done = extractor("review", "out.jsonl", "--gold", "none.jsonl", cwd=tmp_path)
    assert done.returncode == 2 and "error: --gold none.jsonl: no such file" in done.stderr
    done = extractor("review", "out.jsonl", "--schema", "nothing.json", cwd=tmp_path)
    assert done.returncode == 2 and "schema file nothing.json not found" in done.stderr
    assert not (tmp_path / "out.review.html").exists()
