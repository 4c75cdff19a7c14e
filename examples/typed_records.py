"""Typed records from plain texts: every person named with contact details, as pydantic objects.

Reads each `.txt` / `.md` file of `examples/texts/` and each line of `examples/texts/notes.jsonl`,
extracts a `Contacts` record from it with `Extractor.extract_result`, and prints the record, the
local repairs the answer needed and what the call cost.

    python examples/typed_records.py --offline   # no key: a local test server answers
    OPENROUTER_API_KEY=... python examples/typed_records.py
    python examples/typed_records.py --model openai/gpt-4o-mini

With `--offline`, `extractor.testing.TestServer` stands in for the provider: its answers are
schema-valid but made up ("text"), which is enough to see the flow, not the quality.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from extractor import DEFAULT_MODEL, Extractor
from extractor.errors import ConfigurationError, ExtractorError
from extractor.sources import Document
from extractor.testing import TestServer

TEXTS = Path(__file__).resolve().parent / "texts"


class Contact(BaseModel):
    name: str = Field(description="Full name of the person")
    email: str | None = None
    phone: str | None = Field(default=None, description="Phone number as printed")
    organization: str | None = Field(default=None, description="Company or institution they belong to")
    role: str | None = Field(default=None, description="Job title or role, e.g. Operations Director")


class Contacts(BaseModel):
    """Everyone named in the text, with whatever contact details it gives."""

    contacts: list[Contact] = Field(default_factory=list)


def sources() -> Iterator[tuple[str, Document | str]]:
    """(name, source) for each text file and each line of notes.jsonl."""
    for path in sorted(TEXTS.glob("*")):
        if path.suffix in (".txt", ".md"):
            yield path.name, Document.from_path(path)
    with (TEXTS / "notes.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            note = json.loads(line)
            yield f"notes.jsonl#{note['id']}", note["text"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--offline", action="store_true", help="answer from a local test server (no key needed)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model id (default: %(default)s)")
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        base_url = None
        if args.offline:
            base_url = stack.enter_context(TestServer()).base_url
        extractor = stack.enter_context(Extractor(args.model, base_url=base_url))
        total_cost, failed = 0.0, 0
        for name, source in sources():
            try:
                result = extractor.extract_result(Contacts, source)
            except ConfigurationError as exc:  # e.g. no API key: nothing will work
                print(f"error: {exc}\n(set OPENROUTER_API_KEY, or run with --offline)", file=sys.stderr)
                return 2
            except ExtractorError as exc:
                failed += 1
                print(f"{name}: FAILED {type(exc).__name__}: {exc}")
                continue
            total_cost += result.cost
            tokens = result.usage.total_tokens
            print(f"{name}: {len(result.value.contacts)} contact(s), ${result.cost:.6f}, {tokens} tokens")
            for contact in result.value.contacts:
                print(f"  {contact.model_dump(exclude_none=True)}")
            for repair in result.repairs:
                print(f"  repaired: {repair}")
        print(f"total cost: ${total_cost:.6f}; {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
