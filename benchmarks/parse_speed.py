"""Reading time of valid answers and of streamed ones, against pydantic's own JSON parsing.

    python benchmarks/parse_speed.py

Prints, timeit best of 5:

- valid JSON in the compiled shape: `compile_schema(M).parse(text)` against `M.model_validate_json(text)`
  for a 10-field model and for the bundled invoice schema written as a pydantic model (and one with
  `Decimal` amounts); for the bundled invoice JSON Schema, against `json.loads` plus `jsonschema`;
- a 100 KB list answer: the `stream` partial value (`parse_partial` of the answer cut inside its last
  record) and the `stream_items` reader (`ItemScanner`, the whole answer in one piece and in
  16-character pieces), against `pydantic_core.from_json(text, allow_partial=True)`;
- answers that need repairs (fenced and wrapped in prose; Python literals and a trailing comma).
"""

from __future__ import annotations

import json
import timeit
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import jsonschema
import pydantic_core
from pydantic import BaseModel

from extractor import compile_schema
from extractor.bundled import bundled_schema
from extractor.output.incremental import ItemScanner


class TenFields(BaseModel):
    name: str
    count: int
    price: float
    active: bool
    note: str | None = None
    tags: list[str]
    issued: str
    quantity: int
    rate: float
    status: str


class Party(BaseModel):
    name: str | None = None
    address: str | None = None
    tax_id: str | None = None
    email: str | None = None
    phone: str | None = None


class LineItem(BaseModel):
    description: str
    quantity: float | None = None
    unit_price: float | None = None
    amount: float | None = None


class BundledInvoice(BaseModel):
    """`schemas/invoice.json`, the bundled invoice schema, as a pydantic model."""

    invoice_number: str
    issue_date: date | None = None
    due_date: date | None = None
    seller: Party | None = None
    buyer: Party | None = None
    currency: str | None = None
    line_items: list[LineItem] = []
    subtotal: float | None = None
    tax: float | None = None
    total: float
    purchase_order: str | None = None
    payment_terms: str | None = None
    iban: str | None = None


class DecimalLine(BaseModel):
    sku: str
    description: str
    quantity: int
    unit_price: Decimal
    total: Decimal


class DecimalInvoice(BaseModel):
    invoice_number: str
    issue_date: date
    due_date: date | None = None
    seller: str
    buyer: str
    currency: str
    lines: list[DecimalLine]
    subtotal: Decimal
    tax: Decimal | None = None
    total: Decimal
    paid: bool = False


class Transaction(BaseModel):
    date: str
    description: str
    amount: float


TEN = {
    "name": "Widget",
    "count": 3,
    "price": 9.5,
    "active": True,
    "note": None,
    "tags": ["a", "b"],
    "issued": "2024-03-01",
    "quantity": 10,
    "rate": 0.19,
    "status": "paid",
}
INVOICE = {
    "invoice_number": "INV-2024-0042",
    "issue_date": "2024-03-01",
    "due_date": "2024-03-31",
    "seller": {
        "name": "ACME GmbH",
        "address": "Hauptstrasse 1, 10115 Berlin",
        "tax_id": "DE123456789",
        "email": "billing@acme.example",
        "phone": "+49 30 1234567",
    },
    "buyer": {"name": "Example Ltd", "address": "1 High Street, London", "tax_id": None, "email": None, "phone": None},
    "currency": "EUR",
    "line_items": [
        {"description": f"Widget {i}", "quantity": i, "unit_price": 9.5, "amount": 9.5 * i} for i in range(1, 6)
    ],
    "subtotal": 142.5,
    "tax": 27.08,
    "total": 169.58,
    "purchase_order": "PO-77",
    "payment_terms": "30 days net",
    "iban": "DE89370400440532013000",
}
DECIMAL_INVOICE = {
    "invoice_number": "INV-2024-0042",
    "issue_date": "2024-03-01",
    "due_date": "2024-03-31",
    "seller": "ACME GmbH",
    "buyer": "Example Ltd",
    "currency": "EUR",
    "lines": [
        {"sku": f"SKU-{i}", "description": f"Widget {i}", "quantity": i, "unit_price": 9.5, "total": 9.5 * i}
        for i in range(1, 6)
    ],
    "subtotal": 142.5,
    "tax": 27.08,
    "total": 169.58,
    "paid": False,
}


def _us(fn: Callable[[], Any], number: int) -> float:
    """Microseconds per call, best of 5."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def _line(label: str, ours: float, base: float, unit: str = "us") -> None:
    scale = 1e-3 if unit == "ms" else 1.0
    print(f"  {label:44s} {ours * scale:9.2f} {unit}   {ours / base:5.2f}x")


def valid_answers() -> None:
    print("valid JSON in the compiled shape (timeit, best of 5):")
    for name, model, record in (
        ("10-field model", TenFields, TEN),
        ("bundled invoice schema as a pydantic model", BundledInvoice, INVOICE),
        ("invoice with Decimal amounts", DecimalInvoice, DECIMAL_INVOICE),
    ):
        cs = compile_schema(model)
        text = json.dumps(record)
        assert cs.parse(text) == model.model_validate_json(text)
        base = _us(lambda m=model, t=text: m.model_validate_json(t), 5000)  # type: ignore[misc]
        ours = _us(lambda c=cs, t=text: c.parse(t), 5000)  # type: ignore[misc]
        print(f"  {name} ({len(text)} bytes)")
        print(f"    {'model_validate_json':42s} {base:9.2f} us")
        _line("  compile_schema(M).parse", ours, base)
    schema = bundled_schema("invoice")
    cs = compile_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    text = json.dumps(cs.encode(INVOICE))

    def plain() -> None:
        validator.validate(json.loads(text))

    assert cs.parse(text) == json.loads(text)
    base = _us(plain, 500)
    ours = _us(lambda: cs.parse(text), 500)
    print(f"  bundled invoice JSON Schema ({len(text)} bytes)")
    print(f"    {'json.loads + jsonschema':42s} {base:9.2f} us")
    _line("  compile_schema(schema).parse", ours, base)


def streamed_list() -> None:
    records = [
        {"date": f"2024-03-{1 + i % 28:02d}", "description": f"Card payment {i} at Shop {i % 17}", "amount": -i / 4}
        for i in range(1150)  # 100 KB
    ]
    text = json.dumps({"value": records})
    cut = text[: text.rindex('"description"') + 26]  # inside the last record's description: "Card payme"
    cs = compile_schema(list[Transaction])
    last = {"date": records[-1]["date"], "description": "Card "}  # the word still being written left out
    assert cs.parse_partial(cut) == [*records[:-1], last]
    base = _us(lambda: pydantic_core.from_json(cut, allow_partial=True), 20)
    print(f"\na list answer of {len(records)} records, {len(text) / 1000:.0f} KB (timeit, best of 5):")
    print(f"  {'pydantic_core.from_json(allow_partial=True)':44s} {base / 1000:9.2f} ms")
    _line("stream: the partial value (parse_partial)", _us(lambda: cs.parse_partial(cut), 20), base, "ms")

    def scan(size: int) -> int:
        scanner = ItemScanner()
        return sum(len(scanner.feed(text[i : i + size])) for i in range(0, len(text), size))

    assert scan(len(text)) == scan(16) == len(records)
    _line("stream_items reader, the answer in one piece", _us(lambda: scan(len(text)), 20), base, "ms")
    _line("stream_items reader, in 16-character pieces", _us(lambda: scan(16), 10), base, "ms")
    item = compile_schema(Transaction)

    def read_and_validate() -> int:
        return len([item.parse(t) for t in ItemScanner().feed(text)])

    _line("stream_items reader and each record validated", _us(read_and_validate, 10), base, "ms")


def repaired_answers() -> None:
    cs = compile_schema(DecimalInvoice)
    valid = json.dumps(DECIMAL_INVOICE)
    fenced = f"Sure! Here is the extracted invoice:\n\n```json\n{json.dumps(DECIMAL_INVOICE, indent=2)}\n```\n\nDone."
    python_style = valid.replace("false", "False").replace('"paid": False}', '"paid": False,}')
    expected = DecimalInvoice.model_validate_json(valid)
    assert cs.parse(fenced) == expected and cs.parse(python_style) == expected
    print("\nanswers that need repairs (invoice with Decimal amounts):")
    print(f"  {'fenced and wrapped in prose':44s} {_us(lambda: cs.parse(fenced), 500):9.1f} us")
    print(f"  {'Python literals, a trailing comma':44s} {_us(lambda: cs.parse(python_style), 500):9.1f} us")


def main() -> None:
    valid_answers()
    streamed_list()
    repaired_answers()


if __name__ == "__main__":
    main()
