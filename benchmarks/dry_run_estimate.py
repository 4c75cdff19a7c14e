"""How close `extractor run --dry-run`'s token estimate is to what the endpoint then counts.

Runs the dry run and the real run on the examples (invoice PDFs, texts, JSONL notes) against the
project's test server, and prints the estimate beside the prompt tokens the server counted, per input
and in all. The test server counts a request's body at 4 bytes a token.

    python benchmarks/dry_run_estimate.py
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from extractor.testing import TestServer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
INPUTS = [str(EXAMPLES / "invoices"), str(EXAMPLES / "texts"), str(EXAMPLES / "texts" / "notes.jsonl")]


def main() -> None:
    with TestServer() as server, tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        env["EXTRACTOR_CACHE_DIR"] = tmp
        command = [sys.executable, "-m", "extractor", "run", *INPUTS, "--schema", "invoice"]
        dry = subprocess.run([*command, "--dry-run"], capture_output=True, text=True, env=env, check=True)
        estimates = {m[0]: int(m[1]) for m in re.findall(r"^(\S+)\t.*, ~(\d+) tokens$", dry.stdout, re.MULTILINE)}
        out = Path(tmp) / "out.jsonl"
        subprocess.run([*command, "-o", str(out), "--base-url", server.base_url, "--mode", "json_schema"],
                       capture_output=True, text=True, env=env, check=True)  # fmt: skip
        counted = {}
        for line in out.read_text().splitlines():
            record = json.loads(line)
            counted[record["id"]] = record["meta"]["usage"]["prompt_tokens"]
    width = max(len(Path(k).name) for k in estimates)
    print(f"{'input':<{width}}  estimate  counted  ratio")
    for ident, estimate in estimates.items():
        print(f"{Path(ident).name:<{width}}  {estimate:8d}  {counted[ident]:7d}  {estimate / counted[ident]:.2f}")
    total_estimate, total_counted = sum(estimates.values()), sum(counted.values())
    print(f"{'all':<{width}}  {total_estimate:8d}  {total_counted:7d}  {total_estimate / total_counted:.2f}")


if __name__ == "__main__":
    main()
