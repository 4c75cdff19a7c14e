"""Documents, images and long texts as extraction sources, end to end against the test server."""

from __future__ import annotations

import io
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF
from PIL import Image as PILImage
from pydantic import BaseModel

from extractor import DocumentError, Extractor, OutputInvalidError, RetryPolicy
from extractor.sources import Document, Image
from extractor.testing import ModelSpec, RecordedRequest, Reply, TestServer

MODEL = "mistralai/mistral-small-2603"


class Invoice(BaseModel):
    number: str
    total: float
    seller: str | None = None


class Orders(BaseModel):
    customer: str | None = None
    orders: list[str] = []


def make(server: TestServer, tmp_path: Path, **kwargs: Any) -> Extractor:
    kwargs.setdefault("mode", "json_schema")
    return Extractor(base_url=server.base_url, cache_dir=tmp_path / "cache", retry=RetryPolicy(attempts=2), **kwargs)


def user_content(request: RecordedRequest) -> Any:
    return request.json["messages"][-1]["content"]


def user_text(request: RecordedRequest) -> str:
    content = user_content(request)
    if isinstance(content, str):
        return content
    return "\n".join(p["text"] for p in content if p.get("type") == "text")


def pdf(path: Path, pages: list[str], *, image_page: bool = False) -> Path:
    doc = FPDF()
    doc.set_font("helvetica", size=12)
    for text in pages:
        doc.add_page()
        doc.multi_cell(0, 8, text)
    if image_page:
        doc.add_page()
        png = io.BytesIO()
        PILImage.new("RGB", (120, 60), (200, 30, 30)).save(png, format="PNG")
        doc.image(png, x=20, y=20, w=60)
    doc.output(str(path))
    return path


def png_bytes() -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (32, 16), (0, 128, 255)).save(out, format="PNG")
    return out.getvalue()


def test_a_pdf_path_is_read_and_sent_as_text(server: TestServer, tmp_path: Path) -> None:
    path = pdf(tmp_path / "inv.pdf", ["Invoice INV-7 from ACME GmbH", "Total due: 99.50 EUR"])
    server.queue(Reply.json({"number": "INV-7", "total": 99.5, "seller": "ACME GmbH"}))
    value = make(server, tmp_path).extract(Invoice, path)
    assert value == Invoice(number="INV-7", total=99.5, seller="ACME GmbH")
    text = user_text(server.chat_requests[0])
    assert "Invoice INV-7 from ACME GmbH" in text and "Total due: 99.50 EUR" in text


def test_an_image_goes_after_the_text_as_a_data_url(server: TestServer, tmp_path: Path) -> None:
    image = Image.from_bytes(png_bytes(), name="receipt.jpg", detail="high")  # PNG bytes, wrong extension
    make(server, tmp_path).extract(Invoice, ["Receipt photo below.", image])
    content = user_content(server.chat_requests[0])
    assert content[0] == {"type": "text", "text": "Receipt photo below."}
    assert content[1]["type"] == "image_url"
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert content[1]["image_url"]["detail"] == "high"


def test_a_list_of_text_documents_and_images_keeps_its_order(server: TestServer, tmp_path: Path) -> None:
    doc = Document.from_text("second: the document", name="doc.txt")
    make(server, tmp_path).extract(Invoice, ["first: a note", doc, Image.from_bytes(png_bytes()), "last words"])
    content = user_content(server.chat_requests[0])
    assert [p["type"] for p in content] == ["text", "text", "image_url", "text"]
    assert content[0]["text"] == "first: a note" and content[3]["text"] == "last words"


def test_a_scanned_page_is_sent_as_an_image(server: TestServer, tmp_path: Path) -> None:
    path = pdf(tmp_path / "scan.pdf", ["Cover page text"], image_page=True)
    make(server, tmp_path).extract(Invoice, path)
    content = user_content(server.chat_requests[0])
    assert content[0]["type"] == "text" and "Cover page text" in content[0]["text"]
    assert content[-1]["type"] == "image_url"


def test_a_corrupt_pdf_fails_clearly_before_any_request(server: TestServer, tmp_path: Path) -> None:
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nendobj\n")
    with pytest.raises(DocumentError, match=r"broken\.pdf"):
        make(server, tmp_path).extract(Invoice, bad)
    assert server.chat_requests == []


def test_a_pdf_can_be_sent_as_a_file_with_the_parser_plugin(server: TestServer, tmp_path: Path) -> None:
    path = pdf(tmp_path / "inv.pdf", ["Invoice INV-8"])
    make(server, tmp_path, pdf_engine="cloudflare-ai").extract(Invoice, Document.from_path(path))
    body = server.chat_requests[0].json
    part = body["messages"][-1]["content"][0]
    assert part["type"] == "file"
    assert part["file"]["filename"] == "inv.pdf"
    assert part["file"]["file_data"].startswith("data:application/pdf;base64,")
    assert body["plugins"] == [{"id": "file-parser", "pdf": {"engine": "cloudflare-ai"}}]


def _orders_handler(request: RecordedRequest) -> Reply:
    text = user_text(request)
    customer = re.search(r"Customer: (\w+)", text)
    return Reply.json({"customer": customer.group(1) if customer else None, "orders": re.findall(r"ORD-\d{5}", text)})


def test_a_two_million_character_text_is_split_and_merged(server: TestServer, tmp_path: Path) -> None:
    paragraphs = [f"Line {i}: order ORD-{i:05d} was shipped on time and without damage." for i in range(30_000)]
    paragraphs.insert(15_000, "Customer: Globex")
    text = "\n\n".join(paragraphs)
    assert len(text) > 2_000_000
    server.handler = _orders_handler
    result = make(server, tmp_path, max_chars=200_000).extract_result(Orders, text)
    requests = server.chat_requests
    assert len(requests) == len(result.chunks) >= 10
    assert all(len(user_text(r)) <= 201_000 for r in requests)  # each chunk (plus its preamble, under 1,000) fits
    assert result.value.customer == "Globex"
    assert result.value.orders == [f"ORD-{i:05d}" for i in range(30_000)]  # every order once, in order
    covered = sorted((c.start, c.end) for c in result.chunks)
    assert covered[0][0] == 0 and covered[-1][1] == len(text)
    assert all(b[0] <= a[1] for a, b in itertools.pairwise(covered))  # no gap between chunks
    customer_chunk = result.provenance["$.customer"]
    assert result.chunks[customer_chunk].start <= text.index("Customer: Globex") < result.chunks[customer_chunk].end
    assert result.provenance["$.orders[0]"] == 0
    assert result.usage.prompt_tokens > 0 and len(result.attempts) == len(requests)


def test_a_document_longer_than_the_context_is_split_to_fit(tmp_path: Path) -> None:
    with TestServer(models=[ModelSpec(MODEL, context_length=30_000)]) as server:
        server.handler = _orders_handler
        text = "\n\n".join(f"Order ORD-{i:05d} noted." for i in range(20_000))
        result = make(server, tmp_path, max_tokens=2_000).extract_result(Orders, text)
        assert len(result.chunks) > 1
        assert len(result.value.orders) == 20_000
        assert all(len(user_text(r)) < 30_000 * 3 for r in server.chat_requests)


def test_one_failed_chunk_fails_the_record(server: TestServer, tmp_path: Path) -> None:
    calls = {"n": 0}

    def handler(request: RecordedRequest) -> Reply:
        calls["n"] += 1
        if "ORD-00500" in user_text(request):
            return Reply(content='{"orders": [{"x": 1}]}')
        return _orders_handler(request)

    server.handler = handler
    text = "\n\n".join(f"Order ORD-{i:05d} noted." for i in range(2_000))
    with pytest.raises(OutputInvalidError, match=r"chunk \d+ of \d+ of text") as info:
        make(server, tmp_path, max_chars=10_000, max_retries=0).extract(Orders, text)
    assert info.value.usage.prompt_tokens > 0
    assert len(info.value.attempts) == calls["n"]


def test_evidence_finds_values_in_the_source_and_flags_the_rest(server: TestServer, tmp_path: Path) -> None:
    path = pdf(tmp_path / "inv.pdf", ["Invoice number INV-2024-001", "Seller: Initech Ltd\nTotal 120.00"])
    server.queue(Reply.json({"number": "INV-2024-001", "total": 120, "seller": "Umbrella Corp"}))
    result = make(server, tmp_path, evidence=True).extract_result(Invoice, path)
    assert result.evidence is not None
    by_path = {e.path: e for e in result.evidence}
    number = by_path["$.number"]
    assert number.found and number.method == "exact" and number.page == 1
    document = Document.from_path(path)
    start, end = number.spans[0]
    assert document.text[start:end] == "INV-2024-001"
    assert not by_path["$.seller"].found  # a value the document does not contain
    assert [e.path for e in result.unsupported] == ["$.seller"]


def test_evidence_costs_no_request(server: TestServer, tmp_path: Path) -> None:
    server.queue(Reply.json({"number": "A-1", "total": 1}))
    make(server, tmp_path, evidence=True).extract(Invoice, "Invoice A-1, total 1")
    assert len(server.chat_requests) == 1


def test_json_schema_input_with_a_document(server: TestServer, tmp_path: Path) -> None:
    schema = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "invoice.json").read_text())
    value = make(server, tmp_path).extract(schema, Document.from_text("Invoice 1", name="x.txt"))
    assert isinstance(value, dict) and "invoice_number" in value
