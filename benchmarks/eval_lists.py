"""Time and peak memory of `extractor eval` pairing long lists of objects: 750, 1,500 and 3,000 invoice lines.

GOLD is one invoice whose `line_items` has N lines (unique descriptions); OUT the same lines shuffled,
without their unit prices (a column the model missed: no line is identical to its GOLD line), with
5% of the amounts wrong, 5% of the descriptions misspelt, 2% of the lines missing and 2% extra.
Each size is compared in a fresh process (GOLD and OUT read from files, as the command does); the
wall time of reading and comparing, the peak resident memory, the accuracy of `line_items[].amount`
and whether the pairing said it used an approximation are printed.

    python benchmarks/eval_lists.py [--sizes 750,1500,3000] [--timeout 600]

To measure another checkout on the same lists: `PYTHONPATH=/path/to/checkout python benchmarks/eval_lists.py`.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# Runs in the child: reads both files, compares them with the bundled invoice schema, prints one JSON line.
CHILD = r"""
import json, resource, sys, time
from extractor.quality.evaluate import EvalOptions, Evaluator, read_records
started = time.perf_counter()
gold, out = read_records(sys.argv[1], "GOLD"), read_records(sys.argv[2], "OUT")
report = Evaluator(json.load(open(sys.argv[3])), EvalOptions()).evaluate(gold, out)
seconds = time.perf_counter() - started
amount = report.fields["line_items[].amount"]
print(json.dumps({
    "seconds": seconds,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "accuracy": amount.accuracy,
    "approximate": getattr(report, "approximations", None),
}))
"""


def lists(size: int, seed: int = 7) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """GOLD's lines and OUT's (shuffled, with the errors the module's docstring lists)."""
    chance = random.Random(seed)
    gold = [
        {
            "description": f"Item {i:05d} {chance.choice(['widget', 'bracket', 'hinge', 'valve'])}",
            "quantity": chance.randint(1, 20),
            "unit_price": round(chance.uniform(1, 500), 2),
            "amount": round(chance.uniform(1, 5000), 2),
        }
        for i in range(size)
    ]
    out = []
    for line in gold:
        roll = chance.random()
        if roll < 0.02:
            continue  # missing from OUT
        copy = {**line, "unit_price": None}
        if roll < 0.07:
            copy["amount"] = round(copy["amount"] + 1.5, 2)
        elif roll < 0.12:
            copy["description"] = copy["description"].replace("Item", "Itme")
        out.append(copy)
    out += [{"description": f"Extra {i}", "quantity": 1, "unit_price": 1.0, "amount": 1.0} for i in range(size // 50)]
    chance.shuffle(out)
    return gold, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="750,1500,3000")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    schema = ROOT / "schemas" / "invoice.json"
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for size in (int(s) for s in args.sizes.split(",")):
            gold, out = lists(size)
            (folder / "gold.jsonl").write_text(json.dumps({"id": "inv", "data": {"line_items": gold}}) + "\n")
            (folder / "out.jsonl").write_text(json.dumps({"id": "inv", "data": {"line_items": out}}) + "\n")
            command = [sys.executable, "-c", CHILD, str(folder / "gold.jsonl"), str(folder / "out.jsonl"), str(schema)]
            try:
                done = subprocess.run(  # run from the temporary folder: `PYTHONPATH` (or the installed package) decides
                    command, cwd=folder, capture_output=True, text=True, timeout=args.timeout, check=False
                )
            except subprocess.TimeoutExpired:
                print(f"{size:>5} items: did not finish within {args.timeout:g} s", flush=True)
                continue
            if done.returncode != 0:
                print(f"{size:>5} items: failed: {done.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            result = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"{size:>5} items: {result['seconds']:.2f} s, peak {result['peak_mb']:.0f} MB, "
                f"line_items[].amount accuracy {result['accuracy']:.3f}, approximations: {result['approximate']}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
