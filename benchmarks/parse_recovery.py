"""Local recovery of noisy answers, and refusal of truncated ones, over real schemas and instances.

No corpus of real model failures is available offline, so the answers are made here: every valid
instance of `../shared/corpora/jsonschemabench/` is encoded into its compiled shape and written
the ways models get it wrong (fences, prose, reasoning blocks, Python dict syntax, trailing commas,
keys in another case, numbers as strings, a doubly-encoded string), and cut at random points.

    python benchmarks/parse_recovery.py [--sample N] [--json]

Prints the share of noisy answers that `CompiledSchema.parse` recovers to exactly the value a clean
answer gives, and how many cut answers were accepted (the target is none).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from extractor import ExtractorError, OutputError, SchemaCompileError, compile_schema

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"


def _trailing(value: Any) -> str:
    """JSON with a trailing comma after every last item and member."""
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{" + ", ".join(f"{json.dumps(k)}: {_trailing(v)}" for k, v in value.items()) + ",}"
    if isinstance(value, list):
        return "[" + ", ".join(_trailing(v) for v in value) + ",]" if value else "[]"
    return json.dumps(value)


def _retitle(value: Any, schema: dict[str, Any]) -> Any:
    """The schema's top-level property names in Title Case, where no other key reads the same."""
    if not isinstance(value, dict):
        return value
    props = schema.get("properties", {})
    norms = Counter(re.sub(r"[^0-9a-z]", "", k.lower()) for k in value)
    return {
        (k[:1].upper() + k[1:] if k in props and norms[re.sub(r"[^0-9a-z]", "", k.lower())] == 1 else k): v
        for k, v in value.items()
    }


def _numbers_as_strings(value: Any, schema: dict[str, Any]) -> Any:
    """Top-level numbers written as strings: "4", "1,234.50"."""
    props = schema.get("properties", {})
    if not isinstance(value, dict):
        return value
    out = {}
    for k, v in value.items():
        kind = props.get(k, {}).get("type")
        if kind in ("number", "integer") and isinstance(v, int | float) and not isinstance(v, bool):
            out[k] = f"{v:,.2f}" if isinstance(v, float) and abs(v) >= 1000 else str(v)
        else:
            out[k] = v
    return out


NOISE: dict[str, Callable[[Any, dict[str, Any]], str]] = {
    "fence": lambda v, s: f"```json\n{json.dumps(v, indent=2)}\n```",
    "prose": lambda v, s: f"Here is the JSON you asked for:\n{json.dumps(v)}\nReasoning: taken from the text.",
    "reasoning": lambda v, s: f"<think>The user wants {{fields}}. Let me extract them.</think>\n{json.dumps(v)}",
    "python dict": lambda v, s: repr(v),
    "trailing commas": lambda v, s: _trailing(v),
    "key case": lambda v, s: json.dumps(_retitle(v, s)),
    "number strings": lambda v, s: json.dumps(_numbers_as_strings(v, s)),
    "double encoded": lambda v, s: json.dumps(json.dumps(v)),
    "fence + prose + trailing": lambda v, s: f"Sure!\n```\n{_trailing(v)}\n```\nHope this helps.",
}


def run(sample: int | None, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    files = sorted((CORPORA / "jsonschemabench").rglob("*.json"))
    if sample and sample < len(files):
        files = [files[int(i * len(files) / sample)] for i in range(sample)]
    tried: Counter[str] = Counter()
    recovered: Counter[str] = Counter()
    failures: list[str] = []
    cuts = cut_accepted = refused = 0
    for path in files:
        doc = json.loads(path.read_text())
        try:
            cs = compile_schema(doc["schema"])
        except SchemaCompileError:  # a schema the compiler refuses (broken $ref, invalid document): no answers to read
            refused += 1
            continue
        for test in doc.get("tests", []):
            if not test["valid"]:
                continue
            encoded = cs.encode(test["data"])
            try:
                clean_text = json.dumps(encoded)
                expected = cs.parse(clean_text)
            except (ExtractorError, TypeError, ValueError):
                continue  # an instance our validation rejects (format checks) is not a usable answer
            for name, noise in NOISE.items():
                text = noise(encoded, cs.json_schema)
                if text == clean_text:
                    continue
                tried[name] += 1
                try:
                    got = cs.parse(text)
                except OutputError as exc:
                    failures.append(f"{path.name} [{name}]: {str(exc)[:160]}")
                    continue
                if got == expected:
                    recovered[name] += 1
                else:
                    failures.append(f"{path.name} [{name}]: recovered a different value")
            for _ in range(3):
                cut = rng.randrange(1, len(clean_text))
                cuts += 1
                try:
                    cs.parse(clean_text[:cut])
                    cut_accepted += 1
                    failures.append(f"{path.name} [cut at {cut}]: truncated answer accepted")
                except OutputError:
                    pass
    total = sum(tried.values())
    return {
        "schemas_refused": refused,
        "answers": total,
        "recovered": sum(recovered.values()),
        "recovered_share": sum(recovered.values()) / total if total else 0.0,
        "by_noise": {k: f"{recovered[k]}/{tried[k]}" for k in NOISE},
        "cut_answers": cuts,
        "cut_accepted": cut_accepted,
        "failures": failures[:25],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not CORPORA.is_dir():
        print(f"corpora not found at {CORPORA}", file=sys.stderr)
        return 2
    report = run(args.sample)
    if args.json:
        print(json.dumps(report))
        return 0
    print(
        f"noisy answers recovered exactly: {report['recovered']}/{report['answers']} ({report['recovered_share']:.2%})"
    )
    for name, figure in report["by_noise"].items():
        print(f"  {name:26s} {figure}")
    print(f"schemas refused as invalid (no answers read): {report['schemas_refused']}")
    print(f"truncated answers accepted: {report['cut_accepted']} of {report['cut_answers']} cut at random points")
    for line in report["failures"][:15]:
        print(f"    {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
