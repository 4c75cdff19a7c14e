"""Evidence: exact, normalized and fuzzy matches of extracted strings, with spans and pages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from extractor.errors import ConfigurationError
from extractor.sources import Document, Evidence, Page, find_evidence, number_forms

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
