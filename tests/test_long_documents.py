"""Long documents without invented values: each chunk is asked with a schema that lets it say null, the
merged record is validated against the user's schema, disagreements are kept, page images are planned,
the dry run plans the chunks the run sends, and later chunks carry the document's header."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF
from PIL import Image as PILImage
from pydantic import BaseModel
from test_cli_accounting import run

from extractor import ConfigurationError, ConflictError, Extractor, OutputInvalidError, RetryPolicy
from extractor.bundled import bundled_schema
from extractor.testing import ModelSpec, RecordedRequest, Reply, TestServer

MODEL = "mistralai/mistral-small-2603"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "invoices"
FILLER = "\n".join(f"Delivery note line {i}: goods received in good order." for i in range(30))


class Invoice(BaseModel):
    number: str
    total: float
    seller: str | None = None


class Scan(BaseModel):
    pages: list[int] = []


def make(server: TestServer, tmp_path: Path, **kwargs: Any) -> Extractor:
    kwargs.setdefault("mode", "json_schema")
    return Extractor(base_url=server.base_url, cache_dir=tmp_path / "cache", retry=RetryPolicy(attempts=2), **kwargs)


def user_text(request: RecordedRequest) -> str:
    content = request.json["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "\n".join(p["text"] for p in content if p.get("type") == "text")


def split(request: RecordedRequest) -> tuple[str, str]:
    """The chunk's preamble and its own text (what the chunk states)."""
    preamble, _, text = user_text(request).partition("\n\n")
    return preamble, text


def two_pages(path: Path, first: str, second: str) -> Path:
    doc = FPDF()
    doc.set_font("helvetica", size=11)
    for text in (first, second):
        doc.add_page()
        doc.multi_cell(0, 6, text)
    doc.output(str(path))
    return path


def invoice_answer(text: str, numbers: dict[str, str]) -> Reply:
    """What a chunk states: each invoice number printed in it (by the label it follows), the total, the seller."""
    number = next((value for label, value in numbers.items() if label in text), None)
    total = 99.5 if "Total due: 99.50" in text else None
    seller = "ACME GmbH" if "Seller: ACME GmbH" in text else None
    return Reply.json({"number": number, "total": total, "seller": seller, "part_note": None})


def schema_of(request: RecordedRequest) -> dict[str, Any]:
    schema: dict[str, Any] = request.json["response_format"]["json_schema"]["schema"]
    return schema


def test_a_total_printed_only_in_the_second_chunk_is_taken_from_it_not_invented(
    server: TestServer, tmp_path: Path
) -> None:
    path = two_pages(
        tmp_path / "inv.pdf", f"Invoice INV-7\nSeller: ACME GmbH\n{FILLER}", f"{FILLER}\nTotal due: 99.50 EUR"
    )
    server.handler = lambda request: invoice_answer(split(request)[1], {"Invoice INV-7": "INV-7"})
    result = make(server, tmp_path, max_chars=2_000).extract_result(Invoice, path)
    assert result.value == Invoice(number="INV-7", total=99.5, seller="ACME GmbH")
    assert result.conflicts == {}
    assert [c.pages for c in result.chunks] == [(1,), (2,)]
    assert result.provenance["$.total"] == 1 and result.provenance["$.number"] == 0
    requests = server.chat_requests
    assert len(requests) == 2  # one per chunk: nothing re-asked, nothing invented
    for n, request in enumerate(requests, 1):
        preamble, _ = split(request)
        assert preamble.startswith(f"[This is part {n} of 2 of inv.pdf, page {n}. Extract only what this part states")
        schema = schema_of(request)
        assert {"type": "null"} in schema["properties"]["total"]["anyOf"]  # a chunk may say "not here"
        assert "part_note" in schema["properties"] and "part_note" in schema["required"]


def test_a_required_field_that_no_chunk_states_fails_naming_the_field(server: TestServer, tmp_path: Path) -> None:
    path = two_pages(tmp_path / "inv.pdf", f"Invoice INV-7\n{FILLER}", f"{FILLER}\nNo total on this one.")
    server.handler = lambda request: invoice_answer(split(request)[1], {"Invoice INV-7": "INV-7"})
    with pytest.raises(OutputInvalidError) as info:
        make(server, tmp_path, max_chars=2_000).extract(Invoice, path)
    assert str(info.value).startswith("the merged record of 2 chunks does not validate")
    assert [(e.path, e.kind) for e in info.value.errors] == [("$.total", "unstated")]
    assert "$.total: stated in none of the 2 chunks" in str(info.value)
    assert len(server.chat_requests) == 2 and len(info.value.attempts) == 2  # no re-ask for it


def test_chunks_that_disagree_are_kept_as_conflicts_or_fail_the_record(server: TestServer, tmp_path: Path) -> None:
    path = two_pages(
        tmp_path / "inv.pdf",
        f"Invoice INV-7\nSeller: ACME GmbH\n{FILLER}",
        f"Invoice INV-8\n{FILLER}\nTotal due: 99.50 EUR",
    )
    numbers = {"Invoice INV-7": "INV-7", "Invoice INV-8": "INV-8"}
    server.handler = lambda request: invoice_answer(split(request)[1], numbers)
    result = make(server, tmp_path, max_chars=2_000).extract_result(Invoice, path)
    assert result.value == Invoice(number="INV-7", total=99.5, seller="ACME GmbH")
    assert result.conflicts == {"$.number": [(0, "INV-7"), (1, "INV-8")]}
    with pytest.raises(ConflictError) as info:
        make(server, tmp_path, max_chars=2_000, on_conflict="fail").extract(Invoice, path)
    assert info.value.conflicts == {"$.number": [(0, "INV-7"), (1, "INV-8")]}
    assert "the 2 chunks of inv.pdf disagree on $.number" in str(info.value)
    assert "chunk 1 says 'INV-7'; chunk 2 says 'INV-8'" in str(info.value)
    with pytest.raises(ConfigurationError, match="on_conflict='last'"):
        make(server, tmp_path).extract(Invoice, "text", on_conflict="last")  # type: ignore[typeddict-item]


def scanned_pdf(path: Path, pages: int) -> Path:
    doc = FPDF()
    for n in range(pages):
        doc.add_page()
        png = io.BytesIO()
        PILImage.new("RGB", (40, 20), (n * 6 % 256, 80, 160)).save(png, format="PNG")
        doc.image(png, x=20, y=20, w=60)
    doc.output(str(path))
    return path


def test_forty_page_images_against_a_32k_context_go_out_in_chunks_that_fit(tmp_path: Path) -> None:
    path = scanned_pdf(tmp_path / "scan.pdf", 40)

    def handler(request: RecordedRequest) -> Reply:
        first, last = re.search(r"pages (\d+)-(\d+)", split(request)[0]).groups()  # type: ignore[union-attr]
        return Reply.json({"pages": list(range(int(first), int(last) + 1)), "part_note": None})

    with TestServer(models=[ModelSpec(MODEL, context_length=32_000, max_completion_tokens=8_000)]) as server:
        server.handler = handler
        result = make(server, tmp_path, model=MODEL).extract_result(Scan, path)
        images = [
            sum(1 for p in r.json["messages"][-1]["content"] if p.get("type") == "image_url")
            for r in server.chat_requests
        ]
    # room: 32,000 - 8,000 for the answer - the schema, instructions and 1,000 of overhead: 14 images of 1,600.
    # A list's answer is predicted at 1,500 tokens a scanned page: the first part (4 pages: within 90% of the
    # 8,000-token answer) is asked alone, and its short answer lets the rest go by the context alone
    assert images == [4, 14, 14, 8]
    assert result.value == Scan(pages=list(range(1, 41)))  # every page seen once
    assert [c.pages for c in result.chunks] == [
        tuple(range(1, 5)),
        tuple(range(5, 19)),
        tuple(range(19, 33)),
        tuple(range(33, 41)),
    ]


class Seller(BaseModel):
    seller: str | None = None


def _carried(request: RecordedRequest) -> str | None:
    preamble = split(request)[0]
    marker = "to read this part by (its values belong to the part that states them):\n"
    return preamble.split(marker)[1] if marker in preamble else None


def test_later_chunks_carry_the_title_block_and_the_table_header(server: TestServer, tmp_path: Path) -> None:
    server.handler = lambda request: Reply.json({"seller": None, "part_note": None})
    path = EXAMPLES / "bluegum-analytics-BGA-00981.pdf"
    make(server, tmp_path, max_chars=1_500).extract(Seller, path)
    carried = [_carried(r) for r in server.chat_requests]
    assert len(carried) >= 2
    assert carried[0] is None  # the first chunk holds the title block itself
    for block in carried[1:]:
        assert block is not None
        assert block.startswith("Bluegum Analytics Pty Ltd\nLevel 3, 88 Wattle Street, Ultimo NSW 2007\n")
        assert block.endswith("\nTable columns: Item Qty Rate Amount\n]")
        assert len(block) <= 600 + 2
    server.reset()
    server.handler = lambda request: Reply.json({"seller": None, "part_note": None})
    make(server, tmp_path, max_chars=1_500, carry_context=False).extract(Seller, path)
    assert all(_carried(r) is None for r in server.chat_requests)


def test_chunks_read_for_a_list_carry_the_table_header_but_no_title_block(server: TestServer, tmp_path: Path) -> None:
    # lines repeated into every part could be read as items by each: a list's parts get the header row only
    server.handler = lambda request: Reply.json({"pages": [], "part_note": None})
    make(server, tmp_path, max_chars=1_500).extract(Scan, EXAMPLES / "bluegum-analytics-BGA-00981.pdf")
    carried = [_carried(r) for r in server.chat_requests]
    assert len(carried) >= 2 and carried[0] is None
    assert carried[1:] == ["Table columns: Item Qty Rate Amount\n]"] * (len(carried) - 1)


def _printed(value: Any) -> list[str]:
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int | float):
        return [f"{value:,.2f}", f"{value:,}"] if isinstance(value, float) else [f"{value:,.2f}", str(value)]
    return [str(value)]


def _stated(expected: Any, text: str) -> Any:
    """The part of `expected` that `text` states: scalars printed in it, list items whose first field is."""
    if isinstance(expected, dict):
        return {key: _stated(value, text) for key, value in expected.items()}
    if isinstance(expected, list):
        return [item for item in expected if str(next(iter(item.values()))) in text]
    return expected if any(form in text for form in _printed(expected)) else None


def test_the_two_page_example_invoice_merges_to_its_expected_values(server: TestServer, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (EXAMPLES / "expected.jsonl").read_text().splitlines()]
    expected = next(r["data"] for r in rows if r["file"] == "bluegum-analytics-BGA-00981.pdf")
    assert len(expected["line_items"]) == 38

    def handler(request: RecordedRequest) -> Reply:  # each chunk answered with that chunk's true values
        return Reply.json({**_stated(expected, split(request)[1]), "part_note": None})

    server.handler = handler
    schema = bundled_schema("invoice")
    path = EXAMPLES / "bluegum-analytics-BGA-00981.pdf"
    result = make(server, tmp_path, max_chars=1_000).extract_result(schema, path)
    assert len(result.chunks) >= 3 and len(server.chat_requests) == len(result.chunks)
    assert result.value == expected
    assert result.conflicts == {}


# --- the command line ------------------------------------------------------------------------------


cli = run  # `extractor run ARGS` in a real subprocess, without API keys, with its own cache


def test_the_cli_writes_conflicts_to_meta_and_can_refuse_such_records(server: TestServer, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    two_pages(folder / "a.pdf", f"Invoice INV-7\n{FILLER}", f"Invoice INV-8\n{FILLER}\nTotal due: 99.50 EUR")
    schema = tmp_path / "invoice.json"
    schema.write_text(json.dumps(Invoice.model_json_schema()))
    numbers = {"Invoice INV-7": "INV-7", "Invoice INV-8": "INV-8"}
    server.handler = lambda request: invoice_answer(split(request)[1], numbers)
    common = ["--schema", str(schema), "--base-url", server.base_url, "--mode", "json_schema", "--max-chars", "2000"]
    done = cli([str(folder), *common, "-o", str(tmp_path / "out.jsonl")], tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "out.jsonl").read_text())
    assert record["data"] == {"number": "INV-7", "total": 99.5, "seller": None}
    assert record["meta"]["conflicts"] == {"$.number": [{"chunk": 1, "value": "INV-7"}, {"chunk": 2, "value": "INV-8"}]}
    refused = cli([str(folder), *common, "-o", str(tmp_path / "strict.jsonl"), "--on-conflict", "fail"], tmp_path)
    assert refused.returncode == 1
    assert not (tmp_path / "strict.jsonl").exists()  # no record: no file
    error = json.loads((tmp_path / "strict.errors.jsonl").read_text())
    assert error["error"]["type"] == "ConflictError"
    assert error["meta"]["conflicts"]["$.number"][1] == {"chunk": 2, "value": "INV-8"}


def test_the_dry_run_plans_the_chunks_the_run_sends(server: TestServer, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    long_text = "\n\n".join(f"Paragraph {i}: order ORD-{i:04d} shipped." for i in range(600))
    (folder / "long.txt").write_text(long_text)
    (folder / "short.txt").write_text("Order ORD-0001 shipped.")
    two_pages(folder / "two.pdf", f"Invoice INV-7\n{FILLER}", f"{FILLER}\nTotal due: 99.50 EUR")
    schema = tmp_path / "scan.json"
    schema.write_text(json.dumps(Scan.model_json_schema()))
    common = ["--schema", str(schema), "--max-chars", "3000"]
    dry = cli([str(folder), *common, "--dry-run"], tmp_path)
    assert dry.returncode == 0, dry.stderr
    planned = {Path(m[0]).name: int(m[1]) for m in re.findall(r"^(\S+)\t.*?(\d+) chunk\(s\)", dry.stdout, re.M)}
    server.handler = lambda request: Reply.json({"pages": [], "part_note": None})
    run = cli([str(folder), *common, "-o", str(tmp_path / "out.jsonl"), "--base-url", server.base_url], tmp_path)
    assert run.returncode == 0, run.stderr
    sent = {}
    for line in (tmp_path / "out.jsonl").read_text().splitlines():
        record = json.loads(line)
        sent[Path(record["source"]).name] = record["meta"].get("chunks", 1)
    assert planned == {name: sent[name] for name in planned}
    assert planned["long.txt"] > 3 and planned["short.txt"] == 1 and planned["two.pdf"] == 2
    assert len(server.chat_requests) == sum(planned.values())
