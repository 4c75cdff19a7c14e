"""Does carrying the document's header into later chunks help? Measured on the examples' two-page invoice
(38 line items over two pages), split into chunks by a small `max_chars`, against a real model.

Runs the extraction with `carry_context=True` and `False` against an OpenAI-compatible endpoint (by
default a local llama.cpp `llama-server` on 127.0.0.1:8080), and prints, for each, the top-level and
party fields right, the line items found (by description) and every value right, against
`examples/invoices/expected.jsonl`, with the requests and prompt tokens it took.

    llama-server -m gemma-3-270m-q4_k_m.gguf --host 127.0.0.1 --port 8080 -c 16384
    python benchmarks/chunk_context.py [--base-url URL] [--model M] [--max-chars N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from _accuracy import field_accuracy

from extractor import Extractor, ExtractorError
from extractor.bundled import bundled_schema

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "invoices"
FILE = "bluegum-analytics-BGA-00981.pdf"


def score(got: dict[str, Any], want: dict[str, Any]) -> dict[str, Any]:
    """Fields right (line items aside), line items found by description, and every leaf right."""
    head = {k: v for k, v in want.items() if k != "line_items"}
    right, total = field_accuracy({k: got.get(k) for k in head}, head)
    mine = {re.sub(r"\s+", " ", i.get("description") or "").casefold() for i in got.get("line_items") or []}
    found = sum(re.sub(r"\s+", " ", i["description"]).casefold() in mine for i in want["line_items"])
    all_right, leaves = field_accuracy(got, want)
    return {
        "fields": f"{right}/{total}",
        "items_found": f"{found}/{len(want['line_items'])}",
        "leaves": f"{all_right}/{leaves}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default="http://127.0.0.1:8080/v1")
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--max-chars", type=int, default=1_200)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=1_500, help="max_tokens of each request")
    parser.add_argument("--retries", type=int, default=1, help="re-asks per chunk")
    args = parser.parse_args()
    rows = [json.loads(line) for line in (EXAMPLES / "expected.jsonl").read_text().splitlines()]
    want = next(r["data"] for r in rows if r["file"] == FILE)
    schema = bundled_schema("invoice")
    for carry in (False, True):
        for run in range(args.runs):
            with Extractor(
                model=args.model,
                base_url=args.base_url,
                mode="json_schema",
                temperature=0,
                seed=run,
                max_tokens=args.max_tokens,
                max_retries=args.retries,
                max_chars=args.max_chars,
                carry_context=carry,
                cache=False,
                timeout=600,
            ) as ex:
                try:
                    result = ex.extract_result(schema, EXAMPLES / FILE)
                except ExtractorError as exc:
                    attempts = exc.attempts or []
                    print(f"carry_context={carry} run {run}: failed after {len(attempts)} requests: {str(exc)[:300]}")
                    continue
            figures = score(result.value, want)
            print(
                f"carry_context={carry} run {run}: {len(result.chunks)} chunks, {len(result.attempts)} requests, "
                f"{result.usage.prompt_tokens} prompt tokens; fields right {figures['fields']}, "
                f"items found {figures['items_found']}, all leaves right {figures['leaves']}, "
                f"conflicts {len(result.conflicts)}"
            )


if __name__ == "__main__":
    main()
