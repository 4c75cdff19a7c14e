"""The coverage benchmark on an even sample of the real-world schema corpora, with the issue's targets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_schema_coverage_on_a_sample_of_real_schemas(corpora: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "schema_coverage.py"), "--sample", "200", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    report = json.loads(out.stdout)
    assert report["schemas"] == 210  # 200 jsonschemabench files + 10 schemastore pairs
    assert report["exceptions"] == 0
    assert report["strict_share"] >= 0.98, report["non_strict_reasons"]
    assert report["strict_but_outside_subset"] == []
    assert report["round_trip_failed"] == 0, report["round_trip_failures"]
    assert report["instances_agree"] > 500
    assert report["instances_disagree"] == 0, report["disagreements"]
