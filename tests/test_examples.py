"""`examples/`: the sample documents are reproducible and readable, the example scripts run offline."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from extractor import compile_schema
from extractor.bundled import bundled_schema
from extractor.sources import Document, Image

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SAMPLE_FOLDERS = ("invoices", "receipts", "texts")
TEXT_SUFFIXES = (".txt", ".md", ".jsonl")


def load_make_samples(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_samples", EXAMPLES / "make_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_samples", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def sample_files(root: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(root)): p
        for folder in SAMPLE_FOLDERS
        for p in sorted((root / folder).iterdir())
        if p.is_file()
    }


def expected(folder: str) -> dict[str, dict[str, Any]]:
    lines = (EXAMPLES / folder / "expected.jsonl").read_text(encoding="utf-8").splitlines()
    return {record["file"]: record["data"] for record in map(json.loads, lines)}


def run_script(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("OPENROUTER_API_KEY", "EXTRACTOR_API_KEY", "OPENAI_API_KEY")
    }
    env.pop("EXTRACTOR_BASE_URL", None)
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


# --- the sample documents -------------------------------------------------------------------------


def test_make_samples_is_deterministic_and_matches_the_committed_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_samples = load_make_samples(monkeypatch)
    assert make_samples.main(["--out", str(tmp_path / "a")]) == 0
    assert make_samples.main(["--out", str(tmp_path / "b")]) == 0
    first, second = sample_files(tmp_path / "a"), sample_files(tmp_path / "b")
    assert list(first) == list(second)
    for name in first:
        assert first[name].read_bytes() == second[name].read_bytes(), name

    committed = sample_files(EXAMPLES)
    assert list(first) == list(committed)
    assert len(committed) == 13
    for name, path in committed.items():
        fresh = first[name]
        if path.suffix in TEXT_SUFFIXES:
            assert fresh.read_bytes() == path.read_bytes(), name
        elif path.suffix == ".pdf":  # bytes may vary with the fpdf2 version; the text may not
            assert [p.text for p in Document.from_path(fresh).pages] == [p.text for p in Document.from_path(path).pages]
        else:
            new, old = Image.from_path(fresh), Image.from_path(path)
            assert (new.format, new.width, new.height) == (old.format, old.width, old.height), name
    printed = capsys.readouterr().out.splitlines()
    assert printed[:13] == [f"{name}  {path.stat().st_size:,} bytes" for name, path in first.items()]


def test_samples_stay_small() -> None:
    assert sum(p.stat().st_size for p in sample_files(EXAMPLES).values()) < 300_000


def test_each_invoice_pdf_loads_and_holds_its_expected_values() -> None:
    values = expected("invoices")
    assert sorted(values) == sorted(p.name for p in (EXAMPLES / "invoices").glob("*.pdf"))
    pages = {}
    checker = compile_schema(bundled_schema("invoice"))
    for name, data in values.items():
        checker.check(data)  # the expected values are a valid record of the bundled schema
        document = Document.from_path(EXAMPLES / "invoices" / name)
        pages[name] = len(document.pages)
        assert document.warnings == []
        text = " ".join(document.text.split())
        assert data["invoice_number"] in text
        assert data["seller"]["name"] in text
        for item in data["line_items"]:
            assert item["description"] in text, (name, item)
        amounts = [round(item["quantity"] * item["unit_price"], 2) for item in data["line_items"]]
        assert [item["amount"] for item in data["line_items"]] == amounts
        assert round(sum(amounts), 2) == data["subtotal"]
        assert round(data["subtotal"] + (data["tax"] or 0), 2) == data["total"]
    assert pages == {
        "kestrel-design-2024-0117.pdf": 1,
        "harbour-finch-HF-23-0042.pdf": 1,
        "bluegum-analytics-BGA-00981.pdf": 2,
        "sierra-vista-SV-7734.pdf": 1,
    }
    two_pages = Document.from_path(EXAMPLES / "invoices" / "bluegum-analytics-BGA-00981.pdf")
    assert "Week 12: Dashboard design (hours)" in two_pages.pages[1].text  # the table goes on over the page
    assert "Total (incl. GST) AUD $83,611.44" in two_pages.pages[1].text
    kestrel = Document.from_path(EXAMPLES / "invoices" / "kestrel-design-2024-0117.pdf").text
    assert "Gesamtbetrag 2.825,06 €" in kestrel  # the euro sign and umlauts survive (cp1252 core fonts)
    assert "Fällig am: 31.01.2024" in kestrel


def test_receipts_are_recognised_by_their_bytes() -> None:
    values = expected("receipts")
    checker = compile_schema(bundled_schema("receipt"))
    formats = {}
    for name, data in values.items():
        checker.check(data)
        image = Image.from_path(EXAMPLES / "receipts" / name)
        formats[name] = (image.format, image.mime_type)
    assert formats == {
        "cafe-luna.png": ("png", "image/png"),
        "ironbark-hardware.jpg": ("jpeg", "image/jpeg"),
        "rye-and-crumb.jpg": ("png", "image/png"),  # PNG bytes under a .jpg name
    }
    assert (EXAMPLES / "receipts" / "rye-and-crumb.jpg").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_texts_and_notes() -> None:
    names = sorted(p.name for p in (EXAMPLES / "texts").iterdir())
    assert names == ["notes.jsonl", "resume-ana-lima.md", "resume-tomas-berg.txt", "services-agreement.txt"]
    notes = [json.loads(line) for line in (EXAMPLES / "texts" / "notes.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [sorted(n) for n in notes] == [["id", "text"]] * 4
    assert [n["id"] for n in notes] == ["note-001", "note-002", "note-003", "note-004"]
    assert Document.from_path(EXAMPLES / "texts" / "resume-ana-lima.md").text.startswith("# Ana Lima\n")


# --- the scripts, offline -------------------------------------------------------------------------


def test_typed_records_offline(tmp_path: Path) -> None:
    proc = run_script("typed_records.py", "--offline", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    sources = [line.split(":")[0] for line in lines[:-1] if not line.startswith(" ")]
    assert sources == [
        "resume-ana-lima.md",
        "resume-tomas-berg.txt",
        "services-agreement.txt",
        "notes.jsonl#note-001",
        "notes.jsonl#note-002",
        "notes.jsonl#note-003",
        "notes.jsonl#note-004",
    ]
    assert lines[-1].startswith("total cost: $") and lines[-1].endswith("; 0 failed")
    assert float(lines[-1].split("$")[1].split(";")[0]) > 0  # the test server reports a cost per request


def test_receipts_offline(tmp_path: Path) -> None:
    proc = run_script("receipts.py", "--offline", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line for line in lines if not line.startswith(" ")] == [
        "cafe-luna.png: image/png, 360x400",
        "ironbark-hardware.jpg: image/jpeg, 360x452",
        "rye-and-crumb.jpg: image/png, 360x374",
    ]
    assert "  named .jpg but the bytes are png: sent as image/png" in lines
    assert sum("fields as expected" in line for line in lines) == 3


def test_invoices_to_jsonl_offline_then_validate_output(tmp_path: Path) -> None:
    proc = run_script("invoices_to_jsonl.py", "--offline", "-o", "out.jsonl", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(Path(r["id"]).name for r in records) == sorted(expected("invoices"))
    assert all(sorted(r) == ["cost", "data", "id", "repairs"] for r in records)
    assert (tmp_path / "out.errors.jsonl").read_text(encoding="utf-8") == ""
    assert proc.stdout.splitlines()[-1].startswith("4 written to out.jsonl, 0 failed (in out.errors.jsonl); cost $")

    bash = shutil.which("bash")
    bin_dir = str(Path(sys.executable).parent)
    if bash is None or shutil.which("extractor", path=bin_dir) is None:
        pytest.skip("validate_output.sh needs bash and the `extractor` executable next to the interpreter")
    records[1]["data"]["total"] = "12,50"  # one record goes bad
    (tmp_path / "out.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    script = str(EXAMPLES / "validate_output.sh")
    check = subprocess.run([bash, script, "out.jsonl"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert check.returncode == 1, check.stderr
    assert check.stdout.splitlines() == [
        "invalid records quarantined in out.bad.jsonl (1 lines); problems:",
        "  out.jsonl:2: $.data.total: '12,50' is not of type 'number'",
        "loading the 3 valid records from out.clean.jsonl",
    ]
    assert check.stderr == "out.jsonl: 4 records, 3 valid, 1 invalid (written to out.bad.jsonl)\n"
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert (tmp_path / "out.bad.jsonl").read_text(encoding="utf-8").splitlines() == [lines[1]]
    assert (tmp_path / "out.clean.jsonl").read_text(encoding="utf-8").splitlines() == [lines[0], *lines[2:]]
