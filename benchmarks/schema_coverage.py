"""Schema compiler coverage on real-world schemas (JSONSchemaBench and SchemaStore pairs).

Prints, for `../shared/corpora/jsonschemabench/` (and `schemastore-pairs/`):
- how many schemas compile with strict=True, how many with strict=False (and why), and exceptions;
- round trip: an instance generated from the compiled schema (all properties present; once preferring
  nulls, once not), decoded with `CompiledSchema.decode`, meets the original's structural rules
  (types, required, enum/const, additionalProperties);
- agreement: each corpus instance, encoded into the compiled shape and validated, is accepted or
  rejected exactly as `jsonschema` (format checking on) judges it against the original.

    python benchmarks/schema_coverage.py                 # every schema
    python benchmarks/schema_coverage.py --sample 100    # an even sample
    python benchmarks/schema_coverage.py --json          # figures as one JSON object
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema

from extractor import OutputInvalidError, SchemaCompileError, compile_schema
from extractor.bundled import bundled_schema, bundled_schema_names
from extractor.schema.sample import sample_instance

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"

#: what "structural rules" keep of the original schema; every other validation keyword is dropped
_STRUCTURAL_DROP = {
    "minLength", "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "minItems", "maxItems", "uniqueItems", "contains", "minContains",
    "maxContains", "minProperties", "maxProperties", "propertyNames", "dependencies", "dependentRequired",
    "dependentSchemas", "not", "if", "then", "else", "unevaluatedProperties", "unevaluatedItems",
    "patternProperties",
}  # fmt: skip


def structural(schema: Any, parent_key: str | None = None) -> Any:
    """The original schema with only its structural rules: oneOf read as anyOf, constraints dropped."""
    if isinstance(schema, list):
        return [structural(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if parent_key in ("properties", "$defs", "definitions"):
            out[key] = structural(value)  # property / definition names, not keywords
            continue
        if key in _STRUCTURAL_DROP or key in ("enum", "const", "default", "examples"):
            if key in ("enum", "const"):
                out[key] = value
            continue
        if key == "$ref" and isinstance(value, str) and not value.startswith("#"):
            continue  # another document: cannot be fetched offline
        out["anyOf" if key == "oneOf" else key] = structural(value, key)
    if "patternProperties" in schema and schema.get("additionalProperties") is False:
        out.pop("additionalProperties", None)  # keys are generated without their patterns
    return out


def corpus_cases(sample: int | None) -> list[tuple[str, Any, list[tuple[Any, bool]]]]:
    """(name, schema, [(instance, label)]) for every jsonschemabench file and schemastore pair."""
    files = sorted((CORPORA / "jsonschemabench").rglob("*.json"))
    pairs = sorted(p for p in (CORPORA / "schemastore-pairs").iterdir() if (p / "schema.json").is_file())
    if sample:
        files = _even(files, sample)
        pairs = _even(pairs, max(1, sample // 20))
    cases = []
    for path in files:
        doc = json.loads(path.read_text())
        tests = [(t["data"], bool(t["valid"])) for t in doc.get("tests", [])]
        cases.append((path.name, doc["schema"], tests))
    for folder in pairs:
        tests = [
            (json.loads(f.read_text()), kind == "valid")
            for kind in ("valid", "invalid")
            for f in sorted((folder / kind).glob("*.json"))
        ]
        cases.append((f"schemastore:{folder.name}", json.loads((folder / "schema.json").read_text()), tests))
    return cases


def _even(items: list[Path], count: int) -> list[Path]:
    if count >= len(items):
        return items
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def _judge(schema: Any) -> Any:
    """`jsonschema` on the original schema, with the draft's format checker (the corpus labels assume it)."""
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def run(cases: list[tuple[str, Any, list[tuple[Any, bool]]]], verbose: bool = False) -> dict[str, Any]:
    strict = nonstrict = crashed = unjudged = refused = 0
    reasons: Counter[str] = Counter()
    rt_ok = rt_fail = 0
    agree = disagree = 0
    disagreements: list[str] = []
    subset_violations: list[str] = []
    rt_failures: list[str] = []
    started = time.perf_counter()
    for name, schema, tests in cases:
        try:
            cs = compile_schema(schema)
        except SchemaCompileError as exc:  # refused with the library's own error (invalid document, $ref loop)
            refused += 1
            if verbose:
                print(f"REFUSED {name}: {exc}", file=sys.stderr)
            continue
        except Exception:
            crashed += 1
            if verbose:
                print(f"CRASH {name}\n{traceback.format_exc()}", file=sys.stderr)
            continue
        if cs.strict:
            strict += 1
            broken = cs.dialect.violations(cs.json_schema)
            if broken:
                subset_violations.append(f"{name}: {broken[0]}")
        else:
            nonstrict += 1
            for r in cs.reasons:
                reasons[r.split(": ", 1)[-1][:70]] += 1
        full = _judge(schema)
        checker = type(full)(structural(schema))
        for nulls in (False, True):
            try:
                instance = cs.decode(sample_instance(cs.json_schema, nulls=nulls))
                errors: list[Any] = list(checker.iter_errors(instance))
            except Exception as exc:  # a crash in decode (or in jsonschema) fails the round trip
                errors = [exc]
            if errors:
                rt_fail += 1
                rt_failures.append(f"{name} nulls={nulls}: {str(errors[0])[:200]}")
            else:
                rt_ok += 1
        for data, _label in tests:
            try:
                expected = not any(True for _ in full.iter_errors(data))
            except Exception:  # jsonschema cannot run the original offline (remote $ref, ECMA regex)
                unjudged += 1
                continue
            try:
                cs.validate(cs.encode(data))
                ours = True
            except OutputInvalidError:
                ours = False
            except Exception as exc:
                ours = None
                if verbose:
                    print(f"VALIDATE CRASH {name}: {exc!r}", file=sys.stderr)
            if ours == expected:
                agree += 1
            else:
                disagree += 1
                disagreements.append(f"{name}: jsonschema={expected} ours={ours}")
    total = len(cases)
    return {
        "schemas": total,
        "strict": strict,
        "non_strict": nonstrict,
        "refused": refused,
        "exceptions": crashed,
        "strict_share": strict / total if total else 0.0,
        "non_strict_reasons": dict(reasons.most_common(12)),
        "strict_but_outside_subset": subset_violations[:20],
        "round_trip_ok": rt_ok,
        "round_trip_failed": rt_fail,
        "round_trip_failures": rt_failures[:20],
        "instances_agree": agree,
        "instances_disagree": disagree,
        "instances_unjudged": unjudged,
        "disagreements": disagreements[:20],
        "seconds": round(time.perf_counter() - started, 2),
    }


def _size(schema: Any) -> int:
    return len(json.dumps(schema, ensure_ascii=False, separators=(",", ":")))


def bundled_sizes() -> list[tuple[str, int, int]]:
    """`(name, original, compiled)` characters (compact JSON) of each bundled schema: what a request pays."""
    return [
        (n, _size(bundled_schema(n)), _size(compile_schema(bundled_schema(n)).json_schema))
        for n in bundled_schema_names()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=None, help="an even sample of this many schemas")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if not CORPORA.is_dir():
        print(f"corpora not found at {CORPORA}", file=sys.stderr)
        return 2
    report = run(corpus_cases(args.sample), verbose=args.verbose)
    if args.json:
        print(json.dumps(report))
        return 0
    n = report["schemas"]
    print(f"schemas: {n} (jsonschemabench + schemastore-pairs) in {report['seconds']} s")
    print(f"  strict=True : {report['strict']} ({report['strict_share']:.1%})")
    print(
        f"  strict=False: {report['non_strict']}  refused as invalid: {report['refused']}  "
        f"exceptions: {report['exceptions']}"
    )
    for reason, count in report["non_strict_reasons"].items():
        print(f"    {count:4d}  {reason}")
    print(f"  strict=True schemas outside the strict subset (must be 0): {len(report['strict_but_outside_subset'])}")
    for line in report["strict_but_outside_subset"][:10]:
        print(f"    {line}")
    rt = report["round_trip_ok"] + report["round_trip_failed"]
    print(f"round trip (generated instance -> decode -> original's structure): {report['round_trip_ok']}/{rt}")
    for line in report["round_trip_failures"][:10]:
        print(f"    {line}")
    inst = report["instances_agree"] + report["instances_disagree"]
    print(f"corpus instances judged as jsonschema judges them: {report['instances_agree']}/{inst}")
    if report["instances_unjudged"]:
        print(f"  ({report['instances_unjudged']} instances jsonschema itself cannot judge offline, left out)")
    for line in report["disagreements"][:10]:
        print(f"    {line}")
    print("bundled schemas, characters of compact JSON: original -> compiled (what every request sends)")
    for name, original, compiled in bundled_sizes():
        print(f"  {name:18s} {original:6d} -> {compiled:6d} ({compiled / original:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
