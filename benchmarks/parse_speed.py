"""Parse time per record: `CompiledSchema.parse` against plain `Model.model_validate_json`.

    python benchmarks/parse_speed.py

Prints microseconds per record for: valid JSON (our fast path vs pydantic alone), a typical
fenced and prose-wrapped answer, and an answer with Python literals and trailing commas.
"""

from __future__ import annotations

import json
import timeit
from datetime import date
from decimal import Decimal

from pydantic import BaseModel

from extractor import compile_schema


class Line(BaseModel):
    sku: str
    description: str
    quantity: int
    unit_price: Decimal
    total: Decimal


class Invoice(BaseModel):
    invoice_number: str
    issue_date: date
    due_date: date | None = None
    seller: str
    buyer: str
    currency: str
    lines: list[Line]
    subtotal: Decimal
    tax: Decimal | None = None
    total: Decimal
    paid: bool = False


def _record() -> dict[str, object]:
    lines = [
        {"sku": f"SKU-{i}", "description": f"Widget {i}", "quantity": i, "unit_price": 9.5, "total": 9.5 * i}
        for i in range(1, 6)
    ]
    return {
        "invoice_number": "INV-2024-0042",
        "issue_date": "2024-03-01",
        "due_date": "2024-03-31",
        "seller": "ACME GmbH",
        "buyer": "Example Ltd",
        "currency": "EUR",
        "lines": lines,
        "subtotal": 142.5,
        "tax": 27.08,
        "total": 169.58,
        "paid": False,
    }


def _per_record(fn: object, number: int) -> float:
    timer = timeit.Timer(fn)  # type: ignore[arg-type]
    return min(timer.repeat(repeat=5, number=number)) / number * 1e6


def main() -> None:
    cs = compile_schema(Invoice)
    valid = json.dumps(_record())
    fenced = f"Sure! Here is the extracted invoice:\n\n```json\n{json.dumps(_record(), indent=2)}\n```\n\nLet me know."
    python_style = valid.replace("false", "False").replace('"paid": False}', '"paid": False,}')
    assert cs.parse(valid) == Invoice.model_validate_json(valid)
    assert cs.parse(fenced) == Invoice.model_validate_json(valid)
    assert cs.parse(python_style) == Invoice.model_validate_json(valid)
    n = 2000
    base = _per_record(lambda: Invoice.model_validate_json(valid), n)
    ours = _per_record(lambda: cs.parse(valid), n)
    wrapped = _per_record(lambda: cs.parse(fenced), n // 4)
    repaired = _per_record(lambda: cs.parse(python_style), n // 4)
    print(f"record: invoice with 5 lines, {len(valid)} bytes of JSON")
    print(f"  Invoice.model_validate_json (valid JSON)   {base:8.1f} us/record")
    print(f"  CompiledSchema.parse        (valid JSON)   {ours:8.1f} us/record  (+{ours - base:.1f} us)")
    print(f"  CompiledSchema.parse   (fenced + prose)    {wrapped:8.1f} us/record")
    print(f"  CompiledSchema.parse (Python literals, trailing comma) {repaired:8.1f} us/record")


if __name__ == "__main__":
    main()
