"""Every invoice PDF of `examples/invoices/` to one JSONL file, extracted concurrently.

`Extractor.extract_many(schema, sources, concurrency=8)` yields one result per PDF as it finishes:
`.id` (the path), `.value` (the record, None on failure), `.error` (None on success) and `.result`
(the `ExtractResult`: usage, cost, repairs). Successes go to OUT (default `invoices.jsonl`) as
`{"id", "data", "cost", "repairs"}` lines, failures to OUT's `.errors.jsonl`; the records are then
compared field by field with `examples/invoices/expected.jsonl`.

    python examples/invoices_to_jsonl.py --offline            # no key: a local test server answers
    OPENROUTER_API_KEY=... python examples/invoices_to_jsonl.py -o invoices.jsonl
    extractor validate invoice invoices.jsonl --field data    # the next ETL step (validate_output.sh)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from extractor import DEFAULT_MODEL, Extractor
from extractor.bundled import bundled_schema
from extractor.errors import ConfigurationError
from extractor.testing import TestServer

INVOICES = Path(__file__).resolve().parent / "invoices"


def expected_values() -> dict[str, dict[str, Any]]:
    lines = (INVOICES / "expected.jsonl").read_text(encoding="utf-8").splitlines()
    return {record["file"]: record["data"] for record in map(json.loads, lines)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-o", "--out", type=Path, default=Path("invoices.jsonl"), help="output JSONL file")
    parser.add_argument("--offline", action="store_true", help="answer from a local test server (no key needed)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model id (default: %(default)s)")
    args = parser.parse_args(argv)
    schema = bundled_schema("invoice")
    expected = expected_values()
    sources = sorted(INVOICES.glob("*.pdf"))
    errors_path = args.out.with_name(args.out.stem + ".errors.jsonl")

    with contextlib.ExitStack() as stack:
        base_url = None
        if args.offline:
            base_url = stack.enter_context(TestServer()).base_url
        extractor = stack.enter_context(Extractor(args.model, base_url=base_url))
        out = stack.enter_context(args.out.open("w", encoding="utf-8"))
        errors = stack.enter_context(errors_path.open("w", encoding="utf-8"))
        done = failed = 0
        cost = 0.0
        for item in extractor.extract_many(schema, sources, concurrency=8):
            name = Path(item.id).name
            if item.error is not None:
                if isinstance(item.error, ConfigurationError):  # e.g. no API key: nothing will work
                    print(f"error: {item.error}\n(set OPENROUTER_API_KEY, or run with --offline)", file=sys.stderr)
                    return 2
                failed += 1
                record = {"id": item.id, "error": {"type": type(item.error).__name__, "message": str(item.error)}}
                errors.write(json.dumps(record, ensure_ascii=False) + "\n")
                print(f"{name}: FAILED {type(item.error).__name__}: {item.error}")
                continue
            done += 1
            value, result = item.value, item.result
            assert value is not None and result is not None  # both set whenever there is no error
            cost += result.cost
            line = {"id": item.id, "data": value, "cost": result.cost, "repairs": [str(r) for r in result.repairs]}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            want = expected.get(name, {})
            right = sum(1 for k in want if value.get(k) == want[k])
            print(f"{name}: {value['invoice_number']} total {value['total']}; {right}/{len(want)} fields as expected")
    print(f"{done} written to {args.out}, {failed} failed (in {errors_path}); cost ${cost:.6f}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
