"""The schema a chunk of a long document is asked with, and the context carried into later chunks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel
from test_schema_accepted import Owner  # a discriminated union whose tags have defaults

from extractor import compile_schema
from extractor.bundled import bundled_schema, bundled_schema_names
from extractor.documents.carried import MAX_CARRIED_CHARS, carried_context, table_headers, title_block
from extractor.documents.part_schema import part_schema


class Line(BaseModel):
    sku: str
    qty: int


class Party(BaseModel):
    name: str
    parent: Party | None = None


class Invoice(BaseModel):
    number: str
    seller: Party
    lines: list[Line]
    total: float
    part_note: str | None = None  # the user's own field of that name


def _null_in(node: dict[str, Any]) -> bool:
    return {"type": "null"} in node.get("anyOf", [])


def test_every_field_may_be_null_but_list_items_stay_whole() -> None:
    full = compile_schema(Invoice)
    part = part_schema(full)
    schema = part.compiled.json_schema
    assert part.compiled.strict
    assert all(_null_in(node) for node in schema["properties"].values())
    assert schema["required"] == [*Invoice.model_fields, part.note]
    assert part.note == "_part_note"  # the user's field keeps its name
    defs = schema["$defs"]
    party = defs[schema["properties"]["seller"]["anyOf"][0]["$ref"].split("/")[-1]]
    assert all(_null_in(node) for node in party["properties"].values())  # loose all the way down...
    assert party["properties"]["parent"]["anyOf"][0]["$ref"] == schema["properties"]["seller"]["anyOf"][0]["$ref"]
    line = schema["properties"]["lines"]["anyOf"][0]["items"]
    assert defs[line["$ref"].split("/")[-1]]["properties"]["sku"] == {"type": "string", "title": "Sku"}  # ...not items
    value = part.compiled.parse(
        '{"number": null, "seller": {"name": "ACME", "parent": null}, "lines": [], "total": null, '
        '"part_note": null, "_part_note": "only the delivery address"}'
    )
    assert part.user_value(value) == (
        {"number": None, "seller": {"name": "ACME", "parent": None}, "lines": [], "total": None, "part_note": None},
        "only the delivery address",
    )
    with pytest.raises(Exception, match="qty"):
        part.compiled.parse(
            '{"number": null, "seller": null, "lines": [{"sku": "A", "qty": null}], "total": null, "part_note": null}'
        )


@pytest.mark.parametrize("name", bundled_schema_names())
def test_the_bundled_schemas_stay_strict_as_chunk_schemas(name: str) -> None:
    full = compile_schema(bundled_schema(name))
    part = part_schema(full)
    assert part.compiled.strict, part.compiled.reason
    assert len(json.dumps(part.compiled.json_schema)) < len(json.dumps(full.json_schema)) * 1.2


TEXT = """ACME Widgets Ltd
1 Main Street, Springfield
Invoice 42

Item Qty Price Amount
Widget 2 5.00 10.00
Gadget 1 7.50 7.50
Gizmo 3 1.00 3.00
""" + "\n".join(f"Part {i} 1 1.00 1.00" for i in range(200))


def test_the_title_block_and_the_header_of_a_continued_table_are_carried() -> None:
    assert title_block(TEXT) == "ACME Widgets Ltd\n1 Main Street, Springfield\nInvoice 42"
    headers = table_headers(TEXT)
    assert headers == [(TEXT.index("Item Qty"), "Item Qty Price Amount")]
    later = TEXT.index("Part 150")
    assert carried_context(TEXT, later) == (
        "ACME Widgets Ltd\n1 Main Street, Springfield\nInvoice 42\nTable columns: Item Qty Price Amount"
    )
    assert carried_context(TEXT, 0) == ""  # the first chunk holds them itself
    assert carried_context(TEXT, 10) == ""  # a chunk starting inside the title block holds the rest of it
    long_title = "\n".join("A heading line of the document that goes on and on" for _ in range(30))
    assert len(carried_context(long_title + "\n\nbody", 5_000)) <= MAX_CARRIED_CHARS


def test_a_union_tag_stays_a_required_constant_in_the_chunk_schema() -> None:
    part = part_schema(compile_schema(Owner))
    defs = part.compiled.json_schema["$defs"]
    tags = [node["properties"]["pet_type"] for name, node in defs.items() if "pet_type" in node["properties"]]
    assert sorted((t["type"], t["const"]) for t in tags) == [("string", "cat"), ("string", "dog")]
    assert not any("anyOf" in t for t in tags)  # never null
    value = part.compiled.parse('{"pet": {"pet_type": "dog", "bark": null}, "part_note": null}')
    assert part.user_value(value)[0] == {"pet": {"pet_type": "dog", "bark": None}}
