"""Receipt photos to records with the bundled `receipt` schema, images sent as `extractor.sources.Image`.

Each image of `examples/receipts/` is read with `Image.from_path`, which recognises the format by
its bytes: `rye-and-crumb.jpg` is a PNG under a `.jpg` name and is sent as `image/png`. The values
extracted are compared with `examples/receipts/expected.jsonl`.

    python examples/receipts.py --offline   # no key: a local test server answers (made-up values)
    OPENROUTER_API_KEY=... python examples/receipts.py

The model must accept images; with `--offline` the answers are schema-valid but invented, so the
comparison with the expected values shows mismatches.
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
from extractor.errors import ConfigurationError, ExtractorError
from extractor.sources import Image
from extractor.testing import TestServer

RECEIPTS = Path(__file__).resolve().parent / "receipts"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")


def expected_values() -> dict[str, dict[str, Any]]:
    lines = (RECEIPTS / "expected.jsonl").read_text(encoding="utf-8").splitlines()
    return {record["file"]: record["data"] for record in map(json.loads, lines)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--offline", action="store_true", help="answer from a local test server (no key needed)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a model that reads images (default: %(default)s)")
    args = parser.parse_args(argv)
    schema = bundled_schema("receipt")
    expected = expected_values()

    with contextlib.ExitStack() as stack:
        base_url = None
        if args.offline:
            base_url = stack.enter_context(TestServer()).base_url
        extractor = stack.enter_context(Extractor(args.model, base_url=base_url))
        failed = 0
        for path in sorted(p for p in RECEIPTS.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            image = Image.from_path(path, detail="high")
            print(f"{path.name}: {image.mime_type}, {image.width}x{image.height}")
            if path.suffix.lower().lstrip(".").replace("jpg", "jpeg") != image.format:
                print(f"  named {path.suffix} but the bytes are {image.format}: sent as {image.mime_type}")
            try:
                result = extractor.extract_result(schema, ["The photo of a receipt:", image])
            except ConfigurationError as exc:  # e.g. no API key: nothing will work
                print(f"error: {exc}\n(set OPENROUTER_API_KEY, or run with --offline)", file=sys.stderr)
                return 2
            except ExtractorError as exc:
                failed += 1
                print(f"  FAILED {type(exc).__name__}: {exc}")
                continue
            value = result.value
            print(f"  {value['merchant']}: {value['total']} {value.get('currency') or ''} (${result.cost:.6f})")
            want = expected.get(path.name, {})
            wrong = sorted(k for k in want if value.get(k) != want[k])
            print(
                f"  {len(want) - len(wrong)}/{len(want)} fields as expected" + (f"; differ: {wrong}" if wrong else "")
            )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
