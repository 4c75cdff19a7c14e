"""`extractor review`: the page model (spans, flags, escaping), the real command in a subprocess on real
files, and the page in a real headless Chromium (the DOM after its script ran, a screenshot, and real
mouse events through the DevTools protocol). Browser tests skip when no Chromium is installed."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from browser import DevTools, chrome_args, dumped, running_chromium
from fpdf import FPDF
from pdf_samples import text_pdf
from PIL import Image as PILImage

from extractor.quality.review import (
    ReviewPage,
    ReviewText,
    Segment,
    TextFinder,
    load_output,
    record_view,
    render_page,
    segments,
)
from extractor.quality.review.assets import SCRIPT
from extractor.quality.review.editing import EDIT_SCRIPT
from extractor.quality.review.texts import OUTSIDE_ROOTS
from extractor.testing import TestServer

EVIL = "<script>document.title='pwned'</script>"
INVOICE = (
    "Invoice A-17\nSeller: ACME GmbH\nDate: 17.01.2024\nTotal due: 1,234.50 EUR\n"
    f"Note: {EVIL} & <img src=x onerror=alert(1)>\n"
)
FOUND_RGB = (0xFD, 0xE6, 0x8A)  # --found: a highlighted value
ACTIVE_RGB = (0xF5, 0x9E, 0x0B)  # --active: the value clicked / selected by the hash
FAILED_RGB = (0xB9, 0x1C, 0x1C)  # --missing: a failed record's border


# --- the page model ------------------------------------------------------------------------------


def test_segments_split_overlapping_spans_and_mark_pages() -> None:
    out = segments(20, [("a", 0, 5), ("b", 3, 8), ("c", 15, 99)], pages=[(1, 0), (2, 10)])
    assert out == [
        Segment(0, 3, ("a",), page=1),
        Segment(3, 5, ("a", "b")),
        Segment(5, 8, ("b",)),
        Segment(8, 10, ()),
        Segment(10, 15, (), page=2),
        Segment(15, 20, ("c",)),  # cut at the text's end
    ]
    # one page: no marker; a value's adjacent spans merge; empty and out-of-range spans are dropped
    assert segments(6, [("a", 0, 2), ("a", 2, 4), ("b", 3, 3), ("c", 7, 9)], pages=[(1, 0)]) == [
        Segment(0, 4, ("a",)),
        Segment(4, 6, ()),
    ]
    assert segments(0, [("a", 0, 1)]) == []


def record(data: Any, meta: dict[str, Any] | None = None, ident: str = "a.txt") -> dict[str, Any]:
    return {"id": ident, "source": ident, "data": data, "meta": meta or {}}


def test_values_found_flagged_and_skipped_with_their_spans() -> None:
    data = {
        "number": "A-17",
        "seller": "ACME",  # inside "ACME GmbH": found, exact (the word stands apart)
        "date": "2024-01-17",
        "total": 1234.5,
        "city": "Shelbyville",
        "paid": True,
        "memo": None,
        "lines": [{"sku": "A-1"}],  # "A-1" only inside "A-17": partial
        "tags": [],
    }
    meta = {"conflicts": {"$.total": [{"chunk": 1, "value": 1234.5}, {"chunk": 2, "value": 1243.5}]}}
    view = record_view(3, record(data, meta), ReviewText(INVOICE, origin="a.txt"))
    by_path = {v.path: v for v in view.values}
    assert list(by_path) == [
        "$.number", "$.seller", "$.date", "$.total", "$.city", "$.paid", "$.memo", "$.lines[0].sku", "$.tags"
    ]  # fmt: skip
    assert [v.key for v in view.values][:2] == ["r3v0", "r3v1"]

    def spanned(path: str) -> list[str]:
        return [INVOICE[s:e] for s, e in by_path[path].spans]

    assert (by_path["$.number"].status, spanned("$.number")) == ("found", ["A-17"])
    assert (by_path["$.seller"].status, spanned("$.seller")) == ("found", ["ACME"])
    assert (by_path["$.date"].method, spanned("$.date")) == ("formatted", ["17.01.2024"])
    assert (by_path["$.total"].method, spanned("$.total")) == ("formatted", ["1,234.50"])
    assert by_path["$.total"].conflict == ((1, "1234.5"), (2, "1243.5"))
    assert (by_path["$.lines[0].sku"].status, spanned("$.lines[0].sku")) == ("partial", ["A-1"])
    assert (by_path["$.city"].status, by_path["$.city"].spans) == ("missing", ())
    assert [by_path[p].status for p in ("$.paid", "$.memo", "$.tags")] == ["skipped"] * 3
    assert view.unsupported and [v.path for v in view.missing] == ["$.city"]

    # the marks: each found value's span is a segment naming it ("A-17" holds both A-17 and A-1)
    marked = {view.text[s.start : s.end]: s.keys for s in view.segments if s.keys} if view.text else {}
    assert marked["A-1"] == ("r3v0", "r3v7") and marked["7"] == ("r3v0",)
    assert marked["ACME"] == ("r3v1",) and marked["17.01.2024"] == ("r3v2",) and marked["1,234.50"] == ("r3v3",)
    assert "Shelbyville" not in INVOICE


def test_long_texts_are_cut_and_values_beyond_say_so() -> None:
    text = "Header line\n" + "filler text " * 50 + "\nCode ZX-42 at the end"
    view = record_view(0, record({"head": "Header", "code": "ZX-42"}), ReviewText(text), max_chars=100)
    assert view.text == text[:100] and view.total_chars == len(text)
    head, code = view.values
    assert (head.status, head.beyond) == ("found", False)
    assert (code.status, code.beyond) == ("found", True)
    assert all(s.end <= 100 for s in view.segments)
    assert "showing the first 100 of" in render_page(ReviewPage("out.jsonl", None, [view]))
    assert record_view(0, record({"a": "x"}), ReviewText(text), max_chars=0).text == text  # 0: no cap


def test_without_a_text_values_are_unchecked_unless_the_run_flagged_them() -> None:
    meta = {"unsupported": ["$.b"], "repairs": {"fence": 2}}
    view = record_view(0, record({"a": "x", "b": "y"}, meta), ReviewText(None, note="source not found: a.txt"))
    assert [(v.status, v.flagged) for v in view.values] == [("unchecked", False), ("unchecked", True)]
    assert view.unsupported and [v.path for v in view.missing] == ["$.b"]
    assert view.repairs == {"fence": 2} and view.text is None and view.text_note == "source not found: a.txt"


def test_a_failure_shows_its_error_and_no_values() -> None:
    failure = {"id": "c.pdf", "source": "c.pdf", "error": {"type": "ValidationError", "message": "bad"}, "meta": {}}
    view = record_view(1, failure, ReviewText("some text"))
    assert view.failed and (view.error_type, view.error_message) == ("ValidationError", "bad")
    assert view.values == [] and view.text == "some text" and not view.unsupported


def test_everything_is_escaped_and_only_the_page_script_may_run() -> None:
    data = {"note": EVIL, "seller": "ACME GmbH"}
    meta = {"repairs": {"<b>kind</b>": 1}, "conflicts": {"$.note": [{"chunk": 1, "value": "<i>x</i>"}]}}
    ok = record_view(0, {"id": '"><b>id', "source": "<u>src</u>", "data": data, "meta": meta}, ReviewText(INVOICE))
    failed = record_view(
        1, {"id": "f", "source": "f", "error": {"type": "<T>", "message": "<svg onload=alert(1)>"}}, ReviewText(None)
    )
    page = render_page(ReviewPage('<out>".jsonl', None, [ok, failed], problems=["<bad line>"]))
    for raw in (EVIL, "<img src=x", "<svg", "<b>", "<u>", "<i>x", "<T>", "<bad", "<out>"):
        assert raw not in page, raw
    assert page.count("<script>") == 2  # the page's own two (and its settings, a data block)
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in page  # in the values table
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # in the source text
    assert 'data-key="r0v0"' in page and "&quot;&gt;&lt;b&gt;id" in page
    digests = [base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() for code in (EDIT_SCRIPT, SCRIPT)]
    assert f"script-src 'sha256-{digests[0]}' 'sha256-{digests[1]}';" in page and "default-src 'none'" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched


# --- reading the files ---------------------------------------------------------------------------


def test_source_texts_are_found_by_path_jsonl_line_and_id(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("text of a")
    (tmp_path / "in.jsonl").write_text('{"id": "x", "text": "text of x"}\n{"text": "no id"}\n')
    (tmp_path / "copy.jsonl").write_text('{"id": "-#line=1", "text": "from stdin"}\n')
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 not really")
    PILImage.new("RGB", (8, 8)).save(tmp_path / "scan.png")
    finder = TextFinder(base=tmp_path)  # the current folder is elsewhere: relative names are tried in base
    assert finder.find("a.txt", "a.txt").text == "text of a"
    assert finder.find("x", "in.jsonl:1") == ReviewText("text of x", origin="in.jsonl:1")
    assert finder.find("in.jsonl#line=2", "in.jsonl:2").text == "no id"
    assert "another id" in (finder.find("y", "in.jsonl:1").note or "")
    assert "has no text" in (finder.find("z", "in.jsonl:9").note or "")
    assert "not found" in (finder.find("w", "gone.jsonl:1").note or "")
    assert "standard input" in (finder.find("-#line=1", "-:1").note or "")
    assert finder.find("m", "missing.pdf") == ReviewText(None, note="source not found: missing.pdf")
    assert (finder.find("bad.pdf", "bad.pdf").note or "").startswith("cannot read")
    assert finder.find("scan.png", "scan.png").note == "no text to show: an image"
    given = TextFinder(inputs=[tmp_path / "copy.jsonl"], base=tmp_path)
    assert given.find("-#line=1", "-:1").text == "from stdin"


def test_unreadable_lines_are_named_and_a_failure_in_out_too_is_left_out(tmp_path: Path) -> None:
    out, errors = tmp_path / "out.jsonl", tmp_path / "out.errors.jsonl"
    out.write_text('{"id": "a", "data": {}}\nnot json\n[1]\n\n{"id": 7, "data": {}}\n')
    errors.write_text('{"id": "a", "error": {}}\n{"id": "b", "error": {"type": "E", "message": "m"}}\n')
    loaded = load_output(out, errors)
    assert [r["id"] for r in loaded.records] == ["a", "7"] and [r["id"] for r in loaded.failures] == ["b"]
    assert [p.split(": ", 1)[1][:14] for p in loaded.problems] == ["not JSON (Expe", "not a record (", "a failed once "]


# --- the command, on real files ------------------------------------------------------------------


def two_page_pdf(path: Path, first: str, second: str) -> Path:
    doc = FPDF()
    doc.set_font("helvetica", size=12)
    for text in (first, second):
        doc.add_page()
        doc.multi_cell(0, 8, text)
    doc.output(str(path))
    return path


def line(ident: str, source: str, data: dict[str, Any], **meta: Any) -> str:
    return json.dumps({"id": ident, "source": source, "data": data, "meta": meta}) + "\n"


def make_run(folder: Path) -> Path:
    """A run's output written by hand: a text file, a two-page PDF, a JSONL line, a long text, a missing
    source; one failure. Sources are relative to `folder` (OUT's folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "docs").mkdir()
    (folder / "docs" / "invoice.txt").write_text(INVOICE)
    two_page_pdf(folder / "docs" / "order.pdf", "Order 4711 from Globex Corp", "Ship to Springfield\nAmount 99.95")
    text_pdf(folder / "docs" / "broken.pdf", "Never extracted")
    (folder / "in.jsonl").write_text(json.dumps({"id": "t1", "text": "Dear Mr Smith, your code is XJ-99."}) + "\n")
    (folder / "docs" / "long.txt").write_text("".join(f"line {i} of filler\n" for i in range(400)) + "Code ZX-42\n")
    out = folder / "out.jsonl"
    conflict = {"$.number": [{"chunk": 1, "value": "A-17"}, {"chunk": 2, "value": "A-71"}]}
    out.write_text(
        line("docs/invoice.txt", "docs/invoice.txt", {"number": "A-17", "note": EVIL, "city": "Shelbyville"},
             repairs={"fence": 1}, conflicts=conflict)
        + line("docs/order.pdf", "docs/order.pdf", {"order": "4711", "customer": "Globex Corp", "amount": 99.95})
        + line("t1", "in.jsonl:1", {"name": "Smith", "code": "XJ-99"})
        + line("docs/long.txt", "docs/long.txt", {"code": "ZX-42", "first": "line 0"})
        + line("gone.pdf", "gone.pdf", {"x": "y"}, unsupported=["$.x"])
    )  # fmt: skip
    failure = {"type": "ValidationError", "message": "total: <b>not a number</b>"}
    (folder / "out.errors.jsonl").write_text(
        json.dumps({"id": "docs/broken.pdf", "source": "docs/broken.pdf", "error": failure, "meta": {}}) + "\n"
    )
    return out


def review(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "extractor", "review", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page of `make_run`'s output, written by the real command run from another folder."""
    root = tmp_path_factory.mktemp("review")
    out = make_run(root / "run")
    (root / "elsewhere").mkdir()
    done = review([str(out), "-o", str(root / "review.html")], root / "elsewhere")
    assert done.returncode == 0, done.stderr
    assert "6 records (1 failed, 2 with values not found in the source)" in done.stdout
    return root / "review.html"


class Dom(HTMLParser):
    """The records (`section.record`) of a page and the marks in each: attributes and text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.sections: list[dict[str, Any]] = []
        self.rows: dict[str, dict[str, Any]] = {}
        self._mark: dict[str, Any] | None = None
        self.scripts = 0
        self.nav: dict[str, str] = {}
        self.title = ""
        self._in_title = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "section":
            self.sections.append({**a, "marks": []})
        elif tag == "mark" and "data-v" in a:
            self._mark = {**a, "text": ""}
            self.sections[-1]["marks"].append(self._mark)
        elif tag == "tr" and "data-key" in a:
            self.rows[a["data-key"]] = a
        elif tag == "a" and "data-filter" in a:
            self.nav[a["data-filter"]] = a.get("aria-current", "")
        self.scripts += tag == "script" and "type" not in a  # a data block (type=application/json) does not run
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark":
            self._mark = None
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._mark is not None:
            self._mark["text"] += data
        if self._in_title:
            self.title += data

    def shown(self) -> list[str]:
        return [s["id"] for s in self.sections if "hidden" not in s]

    def marks(self, key: str) -> list[dict[str, Any]]:
        return [m for s in self.sections for m in s["marks"] if key in m["data-v"].split()]


def test_the_command_writes_a_self_contained_page(page: Path) -> None:
    html = page.read_text()
    dom = Dom(html)
    assert [s["id"] for s in dom.sections] == ["r0", "r1", "r2", "r3", "r4", "r5"]
    flags = [(s["data-failed"], s["data-unsupported"]) for s in dom.sections]
    assert flags == [("0", "1"), ("0", "0"), ("0", "0"), ("0", "0"), ("0", "1"), ("1", "0")]
    assert [m["text"] for m in dom.marks("r0v0")] == ["A-17"] and dom.rows["r0v2"]["class"] == "v missing"
    assert [m["text"] for m in dom.marks("r0v1")] == [EVIL]  # the value found, as text
    assert "repaired: fence \u00d71" in html and "1 conflict between chunks" in html and "chunk 2: A-71" in html
    assert [m["text"] for m in dom.marks("r1v2")] == ["99.95"] and "p. 2" in html  # the PDF's second page
    assert html.count('class="pg"') == 2  # two page markers in the PDF's text
    assert [m["text"] for m in dom.marks("r2v1")] == ["XJ-99"]  # the JSONL line read again
    assert "source not found: gone.pdf" in html and "no text to look in · flagged by the run" in html
    assert "total: &lt;b&gt;not a number&lt;/b&gt;" in html and "Never extracted" in html  # the failure, its text
    assert dom.scripts == 2 and not re.search(r"""(src|href)=["']?(https?:)?//""", html)


def test_stdin_inputs_need_inputs_and_a_missing_out_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "out.jsonl").write_text(line("-#line=1", "-:1", {"code": "XJ-99"}))
    (tmp_path / "copy.jsonl").write_text(json.dumps({"text": "code XJ-99"}) + "\n")
    done = review(["out.jsonl"], tmp_path)  # -o defaults to out.review.html
    assert done.returncode == 0, done.stderr
    assert "not available (give it with --inputs" in (tmp_path / "out.review.html").read_text()
    (tmp_path / "copy.jsonl").write_text(json.dumps({"id": "-#line=1", "text": "code XJ-99"}) + "\n")
    done = review(["out.jsonl", "--inputs", "copy.jsonl", "-o", "r.html"], tmp_path)
    assert done.returncode == 0 and "0 with values not found" in done.stdout
    assert '<mark class="ev found" data-v="r0v0" title="$.code">XJ-99</mark>' in (tmp_path / "r.html").read_text()
    done = review(["nothing.jsonl"], tmp_path)
    assert done.returncode == 2 and "OUT nothing.jsonl: no such file" in done.stderr
    before = (tmp_path / "out.jsonl").read_text()
    done = review(["out.jsonl", "-o", "./out.jsonl"], tmp_path)
    assert done.returncode == 2 and "is a file the page is made from" in done.stderr
    assert (tmp_path / "out.jsonl").read_text() == before


def test_sources_outside_the_allowed_folders_are_never_read(tmp_path: Path) -> None:
    """OUT lines naming files outside the current folder and OUT's (absolute, `..`, a symlink out, a JSONL
    line) were read and put in the page, or refused with their first bytes quoted; now none of them is
    opened, and `--source-root` allows a folder."""
    secrets = tmp_path / "home" / ".ssh"
    secrets.mkdir(parents=True)
    (secrets / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY----- KEYSECRET")
    (secrets / "environ.pdf").write_bytes(b"PATH=/bin\x00TOKEN=ENVSECRET\x00")  # not a PDF: its bytes were quoted
    (secrets / "notes.jsonl").write_text(json.dumps({"id": "n1", "text": "LINESECRET"}) + "\n")
    extra = tmp_path / "shared"
    extra.mkdir()
    (extra / "allowed.txt").write_text("Order ZX-42 from the shared folder")
    run = tmp_path / "run"
    run.mkdir()
    (run / "mine.txt").write_text("Invoice A-17 for Globex")
    (run / "link.txt").symlink_to(secrets / "id_ed25519")
    (tmp_path / "cwd").mkdir()
    out = run / "out.jsonl"
    out.write_text(
        line("mine", "mine.txt", {"n": "A-17"})
        + line("abs", str(secrets / "id_ed25519"), {"k": "x"})
        + line("up", "../home/.ssh/id_ed25519", {"k": "x"})
        + line("dotdot", str(run / ".." / "home" / ".ssh" / "id_ed25519"), {"k": "x"})
        + line("link", "link.txt", {"k": "x"})
        + line("env", str(secrets / "environ.pdf"), {"k": "x"})
        + line("n1", str(secrets / "notes.jsonl") + ":1", {"k": "x"})
        + line("missing", str(secrets / "absent.txt"), {"k": "x"})
        + line("shared", str(extra / "allowed.txt"), {"code": "ZX-42"})
    )
    done = review([str(out), "-o", str(tmp_path / "page.html")], tmp_path / "cwd")
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "page.html").read_text()
    for secret in ("KEYSECRET", "OPENSSH", "ENVSECRET", "PATH=/bin", "LINESECRET", "from the shared folder"):
        assert secret not in html
    assert html.count("not shown: outside the allowed folders (--source-root to allow)") == 8
    assert " for Globex" in html  # under OUT's folder: shown
    done = review([str(out), "-o", str(tmp_path / "page.html"), "--source-root", str(extra)], tmp_path / "cwd")
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "page.html").read_text()
    assert " from the shared folder" in html and "KEYSECRET" not in html
    assert html.count("not shown: outside the allowed folders (--source-root to allow)") == 7


def test_the_allowed_folders_are_checked_after_resolving_links_and_dots(tmp_path: Path) -> None:
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("SECRET")
    (inside / "doc.txt").write_text("fine")
    (inside / "escape").symlink_to(outside, target_is_directory=True)
    finder = TextFinder(base=inside, roots=[inside])
    assert finder.find("a", str(inside / "doc.txt")).text == "fine"
    assert finder.find("a", "doc.txt").text == "fine"  # relative to base
    for name in ("escape/secret.txt", "../outside/secret.txt", str(outside / "secret.txt"), "/etc/hostname"):
        found = finder.find("a", name)
        assert found == ReviewText(None, note=OUTSIDE_ROOTS), name
    assert finder.find("a", "nothing.txt") == ReviewText(None, note="source not found: nothing.txt")


def test_a_real_run_reviewed(server: TestServer, tmp_path: Path) -> None:
    """`extractor run` writes OUT (against the test server), then `review` finds the sources it names."""
    (tmp_path / "in.jsonl").write_text('{"id": "a", "text": "Receipt from Corner Shop"}\n{"text": "second"}\n')
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "EXTRACTOR_BASE_URL"}
    env["EXTRACTOR_CACHE_DIR"] = str(tmp_path / "cache")
    done = subprocess.run(
        [sys.executable, "-m", "extractor", "run", "in.jsonl", "-", "--schema", "receipt", "-o", "out.jsonl",
         "--base-url", server.base_url],
        cwd=tmp_path, env=env,
        input='{"text": "from stdin"}\n', capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = review(["out.jsonl", "-o", "review.html"], tmp_path)
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "review.html").read_text()
    assert "Receipt from Corner Shop" in html and "second" in html  # read again from in.jsonl's lines
    assert "read from standard input: not available" in html


# --- in a real browser ---------------------------------------------------------------------------


def dump_dom(page: Path, fragment: str) -> Dom:
    return Dom(dumped(page, fragment))


def test_the_hash_filters_records_in_the_browser(page: Path) -> None:
    every = dump_dom(page, "#all")
    assert every.shown() == ["r0", "r1", "r2", "r3", "r4", "r5"]
    failed = dump_dom(page, "#failed")
    assert failed.shown() == ["r5"]
    unsupported = dump_dom(page, "#unsupported")
    assert unsupported.shown() == ["r0", "r4"]
    assert unsupported.nav == {"all": "false", "failed": "false", "unsupported": "true", "todo": "false"}
    # the injected script did not run, and is on the page as text only
    assert every.title.startswith("review: ") and every.scripts == 2
    assert [m["text"] for m in every.marks("r0v1")] == [EVIL]


def test_a_value_in_the_hash_is_highlighted_in_the_browser(page: Path) -> None:
    dom = dump_dom(page, "#all&v=r1v2")
    assert [(m["text"], "active" in m["class"].split()) for m in dom.marks("r1v2")] == [("99.95", True)]
    assert "active" in dom.rows["r1v2"]["class"].split()
    assert not any("active" in m["class"].split() for m in dom.marks("r1v0"))
    junk = dump_dom(page, "#failed&v=%22%5D,*%5Bx")  # a key that is not one: ignored
    assert junk.shown() == ["r5"]


def colours(png: Path) -> dict[tuple[int, int, int], int]:
    with PILImage.open(png) as image:
        counts = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    return {rgb: n for n, rgb in counts}


def test_the_page_renders_highlights_in_a_screenshot(page: Path, tmp_path: Path) -> None:
    shots = {}
    for name, fragment in (("all", "#all&v=r0v0"), ("failed", "#failed")):
        shot = tmp_path / f"{name}.png"
        with tempfile.TemporaryDirectory() as profile:
            done = subprocess.run(
                chrome_args(profile, f"--screenshot={shot}", page.as_uri() + fragment), capture_output=True, timeout=120
            )
        assert done.returncode == 0 and shot.stat().st_size > 10_000, done.stderr[-2000:]
        shots[name] = colours(shot)
    every, failed = shots["all"], shots["failed"]
    assert len(every) > 100  # text, badges, marks: not a blank page
    assert every.get(FOUND_RGB, 0) > 500 and every.get(ACTIVE_RGB, 0) > 200  # marks, and the selected one
    assert failed.get(FAILED_RGB, 0) > 200  # the failed record's border and badge
    assert failed.get(FOUND_RGB, 0) < every[FOUND_RGB] / 2  # the highlighted records are hidden (legend only)


@pytest.fixture
def devtools(page: Path) -> Iterator[tuple[asyncio.AbstractEventLoop, DevTools]]:
    with running_chromium(page.as_uri() + "#all") as (loop, chromium):
        yield loop, loop.run_until_complete(chromium.page())


def test_hovering_and_clicking_values_in_the_browser(devtools: tuple[asyncio.AbstractEventLoop, DevTools]) -> None:
    loop, tools = devtools

    async def scenario() -> None:
        marked = "(s => Array.from(document.querySelectorAll(s), e => e.getAttribute('data-v')))"
        # hover a value: its mark is outlined; hover a mark: its value is
        await tools.hover('tr[data-key="r1v1"]')
        assert await tools.until(f"{marked}('.hover').join() === 'r1v1,r1v1'")
        await tools.hover('mark[data-v~="r2v0"]')
        assert await tools.until(f"{marked}('.hover').join() === 'r2v0,r2v0'")
        # click a value whose text is far down a long source: it is selected and scrolled into its pane
        assert await tools.js("document.querySelector('#r3 .source').scrollTop") == 0
        await tools.click('tr[data-key="r3v0"]')
        assert await tools.until(f"{marked}('.active').join() === 'r3v0,r3v0'")  # the row and its mark
        assert await tools.js("document.querySelector('#r3 .source').scrollTop") > 1000
        visible = """(() => { const pane = document.querySelector('#r3 .source').getBoundingClientRect();
            const mark = document.querySelector('mark[data-v~="r3v0"]').getBoundingClientRect();
            return mark.top >= pane.top && mark.bottom <= pane.bottom; })()"""
        assert await tools.js(visible)
        assert await tools.js("location.hash") == "#all&v=r3v0"
        # clicking another value moves the selection; clicking a mark selects its value
        await tools.click('tr[data-key="r0v0"]')
        assert await tools.until(f"{marked}('.active').join() === 'r0v0,r0v0'")
        await tools.click('mark[data-v~="r1v2"]')
        assert await tools.until(f"{marked}('.active').join() === 'r1v2,r1v2'")
        # clicking a filter link filters
        await tools.click('nav a[data-filter="failed"]')
        shown = "Array.from(document.querySelectorAll('section.record:not([hidden])'), s => s.id).join()"
        await tools.until("location.hash === '#failed'")
        await tools.until(f"{shown} !== 'r0,r1,r2,r3,r4,r5'")  # the hashchange handler ran
        assert await tools.js(shown) == "r5"
        assert await tools.js("document.getElementById('shown').textContent") == "1 of 6 records shown"

    loop.run_until_complete(scenario())
