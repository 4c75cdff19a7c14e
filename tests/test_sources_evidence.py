"""Evidence: exact, normalized, formatted, partial and fuzzy matches of extracted values; spans, pages, parts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF

from extractor.errors import ConfigurationError, UnsupportedSourceError
from extractor.results import ExtractResult, Usage
from extractor.sources import (
    Document,
    Evidence,
    Image,
    Page,
    SourceText,
    evidence_texts,
    find_evidence,
    find_evidence_in,
    number_forms,
    pdf_file_part,
)

TEXT = "Invoice INV-2024-001\nSeller: ACME GmbH\nIBAN: DE89 3704 0044 0532 0130 00\nTotal 1.234,50 EUR\nINV-2024-001"


def test_exact_matches_list_every_occurrence() -> None:
    [evidence] = find_evidence({"number": "INV-2024-001"}, TEXT)
    assert evidence == Evidence(
        path="$.number",
        value="INV-2024-001",
        found=True,
        method="exact",
        spans=[(8, 20), (len(TEXT) - 12, len(TEXT))],
        page=None,
        score=1.0,
    )


def test_normalized_matches_ignore_case_and_whitespace_and_point_into_the_original() -> None:
    value = {"seller": "acme  gmbh", "iban": "DE89370400440532013000", "padded": "  Total 1.234,50 EUR "}
    seller, iban, padded = find_evidence(value, TEXT)
    assert (seller.method, TEXT[slice(*seller.spans[0])]) == ("normalized", "ACME GmbH")
    assert (iban.method, TEXT[slice(*iban.spans[0])]) == ("normalized", "DE89 3704 0044 0532 0130 00")
    assert (padded.method, padded.value) == ("exact", "  Total 1.234,50 EUR ")
    assert TEXT[slice(*padded.spans[0])] == "Total 1.234,50 EUR"
    assert seller.score == iban.score == 1.0


def test_fuzzy_match_above_the_threshold() -> None:
    text = "Delivery address: Hauptstrasse 123, 10115 Berlin, Germany"
    [evidence] = find_evidence({"street": "Hauptstraße 123, 10115 Berlin"}, text)
    assert evidence.found and evidence.method == "fuzzy"
    assert 0.9 <= evidence.score < 1
    assert text[slice(*evidence.spans[0])].startswith("Hauptstr")
    assert text[slice(*evidence.spans[0])].endswith("Berlin")
    [strict] = find_evidence({"street": "Hauptstraße 123, 10115 Berlin"}, text, threshold=0.99)
    assert (strict.found, strict.method, strict.spans) == (False, None, [])
    assert strict.score == evidence.score  # the best score seen is still reported


def test_not_found_short_and_blank_values() -> None:
    value = {"name": "Globex Corporation", "code": "ZZ9", "blank": "   ", "n": 42, "flag": True, "none": None}
    name, code, blank = find_evidence(value, TEXT)
    assert (name.path, name.found, name.method, name.page) == ("$.name", False, None, None)
    assert name.score < 0.9
    assert (code.found, code.score) == (False, 0.0)  # too short to look for fuzzily
    assert (blank.found, blank.spans) == (False, [])


def test_nested_values_and_pages_from_a_document() -> None:
    doc = Document(
        name="d",
        kind="pdf",
        pages=[Page(1, "Invoice A-17\nACME GmbH"), Page(2, "Widget x 2\nGadget x 1"), Page(3, "Total 99.00")],
    )
    value = {"number": "A-17", "lines": [{"name": "widget"}, {"name": "Gadget"}], "total": "99.00"}
    evidence = find_evidence(value, doc)
    assert [(e.path, e.method, e.page) for e in evidence] == [
        ("$.number", "exact", 1),
        ("$.lines[0].name", "normalized", 2),
        ("$.lines[1].name", "exact", 2),
        ("$.total", "exact", 3),
    ]
    # plain offsets of pages 1, 2, 3 work too
    offsets = [offset for _, offset in doc.page_offsets]
    assert [e.page for e in find_evidence(value, doc.text, page_offsets=offsets)] == [1, 2, 2, 3]


def test_spans_are_capped() -> None:
    [evidence] = find_evidence(["ab"], "ab " * 100, max_spans=5)
    assert evidence.spans == [(0, 2), (3, 5), (6, 8), (9, 11), (12, 14)]


def test_a_hundred_page_document() -> None:
    pages = [
        Page(
            n, f"Page {n}\n" + "\n".join(f"Line item {n}-{i}: widget {n * i} pcs at {n}.{i:02d} EUR" for i in range(40))
        )
        for n in range(1, 101)
    ]
    doc = Document(name="long", kind="pdf", pages=pages)
    value = {
        "items": [f"Line item {n}-7: widget {n * 7} pcs" for n in range(1, 101, 9)],
        "typo": "Lime item 55-3: widgt 165 pcs at 55.03 EUR",
        "absent": "Quarterly dividend statement",
    }
    evidence = find_evidence(value, doc)
    assert [e.page for e in evidence[:-2]] == list(range(1, 101, 9))
    assert all(e.method == "exact" for e in evidence[:-2])
    assert (evidence[-2].method, evidence[-2].page) == ("fuzzy", 55)
    assert evidence[-1].found is False


def test_number_forms() -> None:
    assert number_forms(1234.5) == [
        "1234.50", "1,234.50", "1234,50", "1.234,50", "1 234,50", "1 234.50", "1'234.50",
        "1234.5", "1,234.5", "1234,5", "1.234,5", "1 234,5", "1 234.5", "1'234.5",
    ]  # fmt: skip
    assert number_forms(1939) == [
        "1939.00", "1,939.00", "1939,00", "1.939,00", "1 939,00", "1 939.00", "1'939.00",
        "1939", "1,939", "1.939", "1 939", "1'939",
    ]  # fmt: skip
    assert number_forms(Decimal("-9.32")) == ["-9.32", "-9,32"]
    assert number_forms(0.125) == ["0.125", "0,125"]  # three decimals are never rounded to two
    assert number_forms(7, decimals=0) == ["7"]
    with pytest.raises(ConfigurationError):
        number_forms("12")  # type: ignore[arg-type]


def test_numbers_as_printed_need_whole_words() -> None:
    # as substrings, "1.234,5" is found inside "1.234,50"; as whole words only the printed form is
    assert [e.value for e in find_evidence(number_forms(1234.5), TEXT) if e.found] == ["1.234,50", "1.234,5"]
    assert [e.value for e in find_evidence(number_forms(1234.5), TEXT, whole_words=True) if e.found] == ["1.234,50"]
    assert not any(e.found for e in find_evidence(number_forms(4.11), "Total $14.11", whole_words=True))
    assert any(e.found for e in find_evidence(number_forms(4.11), "Total $4.11", whole_words=True))
    assert [e.spans for e in find_evidence(["acme gmbh"], TEXT, whole_words=True)] == [[(29, 38)]]


def test_bad_threshold() -> None:
    with pytest.raises(ConfigurationError):
        find_evidence("x", "x", threshold=0)
    with pytest.raises(ConfigurationError):
        find_evidence("x", "x", threshold=95)


# --- every text of any source: find_evidence_in ------------------------------------------------

SCAN = "https://example.com/scan.png"
INVOICE = Document(
    name="inv.pdf",
    kind="pdf",
    pages=[Page(1, "Invoice INV-7\nSeller: ACME GmbH"), Page(2, "Total 1.234,50 EUR\nDue 17.01.2024")],
)


def _found(evidence: list[Evidence], texts: list[SourceText]) -> list[str]:
    """The text each found value's first span covers."""
    return [texts[e.part].text[slice(*e.spans[0])] for e in evidence if e.found and e.part is not None]


def test_a_list_source_finds_values_in_each_text_part_and_names_the_part() -> None:
    source: list[Any] = ["Notes from the clerk: paid by Globex Corporation", INVOICE, Image.from_url(SCAN)]
    value = {"buyer": "Globex Corporation", "number": "INV-7", "total": 1234.5, "due": "2024-01-17", "paid": True}
    evidence = find_evidence_in(value, source)
    assert [(e.path, e.value, e.method, e.part, e.where, e.page) for e in evidence] == [
        ("$.buyer", "Globex Corporation", "exact", 0, "$[0]", None),
        ("$.number", "INV-7", "exact", 1, "$[1]", 1),
        ("$.total", "1234.5", "formatted", 1, "$[1]", 2),
        ("$.due", "2024-01-17", "formatted", 1, "$[1]", 2),
    ]  # booleans (and nulls) are not looked up
    texts = evidence_texts(source)
    assert texts == [SourceText("$[0]", source[0]), SourceText("$[1]", INVOICE.text, INVOICE)]
    assert _found(evidence, texts) == ["Globex Corporation", "INV-7", "1.234,50", "17.01.2024"]
    assert evidence[2].spans == [(INVOICE.text.index("1.234,50"), INVOICE.text.index("1.234,50") + 8)]
    # the texts can be read first (to fail before a request is sent) and looked up in afterwards
    assert find_evidence_in(value, texts) == evidence


def test_an_invented_value_is_unsupported_in_a_list_source() -> None:
    value = {"number": "INV-7", "seller": "Umbrella Corp", "total": 99.0}
    evidence = find_evidence_in(value, ["Notes from the clerk:", INVOICE, Image.from_url(SCAN)])
    result = ExtractResult(value, "m", "json_schema", [], [], Usage(), 0.0, evidence=evidence)
    assert [(e.path, e.found, e.method, e.part, e.spans) for e in result.unsupported] == [
        ("$.seller", False, None, None, []),
        ("$.total", False, None, None, []),
    ]


def test_a_one_text_source_is_part_zero_with_the_spans_and_pages_of_find_evidence(tmp_path: Path) -> None:
    value = {"number": "INV-7", "seller": "acme gmbh"}
    for source in (INVOICE, INVOICE.text):
        evidence = find_evidence_in(value, source)
        assert [(e.part, e.where) for e in evidence] == [(0, "$"), (0, "$")]
        plain = find_evidence(value, source)
        assert [(e.method, e.spans, e.page) for e in evidence] == [(e.method, e.spans, e.page) for e in plain]
    path = tmp_path / "note.txt"
    path.write_text("Delivery note\nTotal 99.00 EUR, paid 2024-01-17", encoding="utf-8")
    evidence = find_evidence_in({"total": 99, "paid": "2024-01-17"}, path)
    assert [(e.method, e.part, e.where, e.page, e.spans) for e in evidence] == [
        ("formatted", 0, "$", 1, [(20, 25)]),
        ("exact", 0, "$", 1, [(36, 46)]),
    ]


def test_a_message_list_is_looked_up_in_user_and_tool_content_not_in_instructions_or_answers() -> None:
    messages = [
        {"role": "system", "content": "Extract the invoice. For example: seller Initech Ltd"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Invoice INV-7 from ACME GmbH"},
                {"type": "image_url", "image_url": {"url": SCAN}},
                {"type": "text", "text": "Total 99.00"},
            ],
        },
        {"role": "assistant", "content": '{"seller": "Umbrella Corp"}'},
        {"role": "user", "content": "Due 2024-01-17"},
        {"role": "tool", "tool_call_id": "1", "content": "Customer KDS-2024-0117: Globex Corporation"},
    ]
    value = {"seller": "ACME GmbH", "total": 99, "due": "2024-01-17", "buyer": "Globex Corporation"}
    value |= {"example": "Initech Ltd", "answer": "Umbrella Corp"}
    evidence = find_evidence_in(value, messages)
    assert [(e.path, e.method, e.part, e.where) for e in evidence] == [
        ("$.seller", "exact", 0, "$[1].content[0]"),
        ("$.total", "formatted", 1, "$[1].content[2]"),
        ("$.due", "exact", 2, "$[3].content"),
        ("$.buyer", "exact", 3, "$[4].content"),
        ("$.example", None, None, None),  # the instructions are not the source
        ("$.answer", None, None, None),  # nor is the model's own answer
    ]
    assert _found(evidence, evidence_texts(messages)) == ["ACME GmbH", "99.00", "2024-01-17", "Globex Corporation"]


def test_a_pdf_file_part_in_a_message_is_read(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Invoice INV-7")
    pdf.add_page()
    pdf.multi_cell(0, 8, "Total 1,234.50 USD")
    part = pdf_file_part(bytes(pdf.output()), filename="inv.pdf")
    messages = [{"role": "user", "content": [{"type": "text", "text": "The invoice:"}, part]}]
    evidence = find_evidence_in({"number": "INV-7", "total": 1234.5}, messages)
    assert [(e.method, e.part, e.where, e.page) for e in evidence] == [
        ("exact", 1, "$[0].content[1]", 1),
        ("formatted", 1, "$[0].content[1]", 2),
    ]


def test_an_image_only_source_raises() -> None:
    needs = "evidence=True needs text to look values up in: "
    system = {"role": "system", "content": "Extract. Total 12"}
    image_message = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": SCAN}}]}
    scan = Document(name="scan.png", kind="image", pages=[Page(1, "", [Image.from_url(SCAN)])])
    cases: list[tuple[Any, str]] = [
        (Image.from_url(SCAN), "this source is only images (1 image)"),
        ([Image.from_url(SCAN), Image.from_url(SCAN), "  "], "this source is only images (2 images)"),
        (scan, "this source is only images (1 image)"),
        ([system, image_message], "this source is only images (1 image; values are not looked up in system messages)"),
        ([system], "this source has no text (values are not looked up in system messages)"),
    ]
    for source, message in cases:
        with pytest.raises(ConfigurationError) as info:
            find_evidence_in({"total": 12}, source)
        assert str(info.value) == needs + message
    with pytest.raises(UnsupportedSourceError, match=r"\$\[1\]: cannot look values up in a int"):
        find_evidence_in("x", ["text", 3])


def test_a_value_inside_a_longer_token_is_a_partial_match() -> None:
    text = "Order ref KDS-2024-0117, shipped"
    [evidence] = find_evidence({"ref": "2024-0117"}, text)
    assert (evidence.found, evidence.method, evidence.partial, evidence.spans) == (True, "partial", True, [(14, 23)])
    assert find_evidence({"ref": "2024-0117"}, text, whole_words=True)[0].method == "partial"  # glued by "-"
    # standing apart anywhere, it is exact, and only the occurrences standing apart are listed
    [evidence] = find_evidence({"ref": "2024-0117"}, text + "; our ref 2024-0117.")
    assert (evidence.method, evidence.spans) == ("exact", [(len(text) + 10, len(text) + 19)])
    # tokens continue over letters, digits, "-", "_" and "/"; not over other punctuation or spaces
    for glued in ("X2024-0117", "2024-0117_a", "2024-0117/3", "2024-01170", "a-2024-0117"):
        assert find_evidence({"ref": "2024-0117"}, glued)[0].method == "partial", glued
    for apart in ("(2024-0117)", "#2024-0117:", "ref.2024-0117, ok", "2024-0117"):
        assert find_evidence({"ref": "2024-0117"}, apart)[0].method == "exact", apart
    # a number is never inside a longer number, but can be glued to a longer token
    assert [e.method for e in find_evidence_in([0.117, 2024, 117], "KDS-2024-0117")] == [None, "partial", None]


def test_numbers_are_found_as_printed() -> None:
    for printed in ("1,234.50", "1.234,50", "1 234,50", "1234.50", "1.234,5", "1\u00a0234,50", "1'234.50"):
        [evidence] = find_evidence_in({"total": 1234.5}, f"Total: {printed} EUR")
        assert (evidence.method, evidence.spans) == ("formatted", [(7, 7 + len(printed))]), printed
    assert find_evidence_in({"total": 1234.5}, "Total 1234.5")[0].method == "exact"
    for elsewhere in ("Total 11,234.50", "Total 1,234.55", "1.234,500 kg", "1234"):
        assert not find_evidence_in({"total": 1234.5}, elsewhere)[0].found, elsewhere
    negative = [(e.method, e.spans) for e in find_evidence_in([-9.32, -9.32], ["Credit (9.32)", "Discount 9.32"])]
    assert negative == [("formatted", [(7, 13)]), ("formatted", [(7, 13)])]
    assert find_evidence_in([-9.32], "Discount 9.32")[0].method == "partial"  # the sign is not printed
    assert find_evidence_in([0.19, 19], "VAT 19 %")[0].spans == [(4, 8)]
    # without numbers=True, find_evidence looks up strings only; with it, numeric strings too
    assert find_evidence({"total": 1234.5, "s": "1234.50"}, "1.234,50")[0].method is None
    assert [e.method for e in find_evidence({"total": 1234.5, "s": "1234.50"}, "1.234,50", numbers=True)] == [
        "formatted",
        "formatted",
    ]


def test_dates_are_found_as_printed() -> None:
    printed = [
        "17.01.2024", "17/01/2024", "01/17/2024", "Jan 17, 2024", "17 January 2024", "2024-01-17", "17.01.24",
        "17-Jan-24", "17. Januar 2024", "le 17 janvier 2024", "January 17th, 2024", "January 17 , 2024", "2024/01/17",
        "17.1.2024",
    ]  # fmt: skip
    for text in printed:
        [evidence] = find_evidence({"date": "2024-01-17"}, f"Date: {text}.")
        found = f"Date: {text}."[slice(*evidence.spans[0])] if evidence.found else None
        assert (evidence.method, found) == ("exact" if text == "2024-01-17" else "formatted", text.replace("le ", ""))
    for other in (
        "117.01.2024",
        "17.01.20245",
        "27.01.2024",
        "17.02.2024",
        "01.17.2024",
        "17/01/2023",
        "Xjan 17, 2024",
    ):
        assert not find_evidence({"date": "2024-01-17"}, other)[0].found, other
    # letters after a date or number are a unit or a word a PDF's text layer runs on; before it, a code
    for glued, method in (("at 2024-01-17T10:00", "formatted"), ("Date: 17.01.2024Invoice", "formatted")):
        assert find_evidence({"date": "2024-01-17"}, glued)[0].method == method, glued
    assert find_evidence({"date": "2024-01-17"}, "KDS17.01.2024")[0].method == "partial"
    assert [e.method for e in find_evidence_in([120, 12, 2024], "Total 120.00EUR in 12h; KDS2024")] == [
        "formatted",
        "exact",
        "partial",
    ]


def test_lookups_run_in_threads() -> None:
    source = [f"Line {i}: order ORD-{i:05d} of {i * 3},50 EUR on {1 + i % 28:02d}.01.2024" for i in range(2_000)]
    value = {"orders": [f"ORD-{i:05d}" for i in range(0, 2_000, 97)], "amount": 300.5, "date": "2024-01-17"}
    expected = find_evidence_in(value, source)
    assert all(e.found for e in expected)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: find_evidence_in(value, source), range(16)))
    assert all(result == expected for result in results)
