"""Merging per-chunk values: lists concatenated with every item kept, first non-null scalars, provenance."""

from __future__ import annotations

from typing import Any

from extractor.documents import Merged, merge_results


def test_objects_merge_recursively_with_provenance() -> None:
    first = {
        "invoice_number": "A-1",
        "date": None,
        "seller": {"name": "ACME", "vat": None},
        "lines": [{"sku": "X", "qty": 1}],
    }
    third = {
        "invoice_number": None,
        "date": "2024-03-01",
        "seller": {"vat": "DE123"},
        "lines": [{"qty": 1, "sku": "X"}, {"sku": "Y", "qty": 2}],  # X again: a second row of the document
    }
    values: list[Any] = [first, None, third, {"total": 12.5, "lines": [], "notes": ["paid", "thanks"]}]
    merged = merge_results(values)
    assert merged.value == {
        "invoice_number": "A-1",
        "date": "2024-03-01",
        "seller": {"name": "ACME", "vat": "DE123"},
        "lines": [{"sku": "X", "qty": 1}, {"qty": 1, "sku": "X"}, {"sku": "Y", "qty": 2}],
        "total": 12.5,
        "notes": ["paid", "thanks"],
    }
    assert merged.provenance == {
        "$.invoice_number": 0,
        "$.date": 2,
        "$.seller.name": 0,
        "$.seller.vat": 2,
        "$.lines[0]": 0,
        "$.lines[0].sku": 0,
        "$.lines[0].qty": 0,
        "$.lines[1]": 2,
        "$.lines[1].qty": 2,
        "$.lines[1].sku": 2,
        "$.lines[2]": 2,
        "$.lines[2].sku": 2,
        "$.lines[2].qty": 2,
        "$.total": 3,
        "$.notes[0]": 3,
        "$.notes[1]": 3,
    }
    assert merged.conflicts == {}


def test_differing_scalars_keep_the_first_and_are_reported() -> None:
    merged = merge_results([{"total": 10}, {"total": 10.0}, {"total": 11}, {"total": None}])
    assert merged.value == {"total": 10}
    assert merged.provenance == {"$.total": 0}
    assert merged.conflicts == {"$.total": [(0, 10), (1, 10.0), (2, 11)]}


def test_equal_items_are_different_rows_and_all_kept_in_order() -> None:
    # chunks of a list document never overlap: an item equal to another is another row the document prints
    coffee = {"date": "2024-03-01", "text": "Coffee", "amount": -3.5}
    merged = merge_results([{"rows": [coffee, coffee]}, {"rows": [coffee, {"date": "2024-03-02", "text": "Tea"}]}])
    assert merged.value == {"rows": [coffee, coffee, coffee, {"date": "2024-03-02", "text": "Tea"}]}
    assert [merged.provenance[f"$.rows[{i}]"] for i in range(4)] == [0, 0, 1, 1]
    assert merged.conflicts == {}


def test_scalar_roots_and_empty_inputs() -> None:
    assert merge_results([None, "a", "b"]) == Merged("a", {"$": 1}, {"$": [(1, "a"), (2, "b")]})
    assert merge_results([]) == Merged(None, {}, {})
    assert merge_results([None, None]) == Merged(None, {}, {})


def test_mixed_types_take_the_first_non_null() -> None:
    merged = merge_results([{"x": None}, {"x": [1]}, {"x": {"y": 2}}])
    assert merged.value == {"x": [1]}
    assert merged.provenance == {"$.x[0]": 1}
    assert merged.conflicts == {"$.x": [(1, [1]), (2, {"y": 2})]}


def test_keys_needing_quotes_in_paths() -> None:
    merged = merge_results([{"unit price": 3, "items": [{"a-b": 1}]}])
    assert merged.provenance == {'$["unit price"]': 0, "$.items[0]": 0, '$.items[0]["a-b"]': 0}


def test_a_user_merge_replaces_the_default() -> None:
    values = [{"total": 5, "lines": ["a"]}, {"total": 7, "lines": ["b"]}]

    def largest_total(chunk_values: list[Any]) -> Any:
        return max(chunk_values, key=lambda v: v["total"])

    merged = merge_results(values, merge=largest_total)
    assert merged.value == {"total": 7, "lines": ["b"]}
    assert merged.provenance == {"$.total": 1, "$.lines[0]": 1}
    assert merged.conflicts == {}
