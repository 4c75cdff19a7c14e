"""Size and load time of the review page for 1,000 records in a headless Chromium.

A run's output is made up: N invoices (a text file of about 37 KB each, as README's figure says: a
header, five line items, then filler lines) and their records in OUT (the bundled invoice schema:
number, dates, seller, buyer, totals, five line items; half the buyers made up, so some values are
flagged). `extractor review` writes the page (timed, in a child process); Chromium then opens it
`--runs` times (a fresh navigation each), and the time from the navigation to the end of the page's
scripts (`body[data-ready=1]`) is printed, with the page's size and the JavaScript heap it used.
Where the page can edit and export (`window.extractorReview`), every value is then accepted and the
gold file made in the page, and the page loaded once more with all that work restored from
`localStorage`; each is timed too.

    python benchmarks/review_page.py [--records 1000] [--chars 37000] [--runs 3] [--keep DIR]

To measure another checkout: `PYTHONPATH=/path/to/checkout python benchmarks/review_page.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from browser import Chromium, DevTools, running_chromium

FILLER = "Terms: payment within 30 days of the invoice date; goods remain our property until paid in full.\n"


def invoice(i: int, chars: int, chance: random.Random) -> tuple[str, dict[str, Any]]:
    """One invoice's text and its record (half of them with a made-up buyer)."""
    items = [
        {
            "description": f"{chance.choice(['Widget', 'Bracket', 'Hinge', 'Valve'])} model {chance.randint(100, 999)}",
            "quantity": chance.randint(1, 40),
            "unit_price": round(chance.uniform(1, 500), 2),
        }
        for _ in range(5)
    ]
    for item in items:
        item["amount"] = round(item["quantity"] * item["unit_price"], 2)
    net = round(sum(item["amount"] for item in items), 2)
    tax = round(net * 0.19, 2)
    data: dict[str, Any] = {
        "invoice_number": f"INV-{2024}-{i:05d}",
        "issue_date": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "due_date": None,
        "seller": {"name": f"Seller {i} GmbH", "address": f"{i} Market Street, Springfield", "tax_id": None},
        "buyer": {"name": f"Buyer {i % 97} Ltd", "address": None},
        "currency": "EUR",
        "subtotal": net,
        "tax_amount": tax,
        "total": round(net + tax, 2),
        "line_items": items,
    }
    lines = [
        f"INVOICE {data['invoice_number']}",
        f"Date: {int(data['issue_date'][8:])}.{data['issue_date'][5:7]}.2024",
        f"From: {data['seller']['name']}, {data['seller']['address']}",
        f"To: {data['buyer']['name']}",
        "",
        *(f"{it['description']}  {it['quantity']} x {it['unit_price']:.2f} = {it['amount']:,.2f} EUR" for it in items),
        "",
        f"Net {net:,.2f} EUR  VAT 19% {tax:,.2f} EUR  Total {data['total']:,.2f} EUR",
        "",
    ]
    text = "\n".join(lines)
    text += FILLER * max(0, (chars - len(text)) // len(FILLER))
    if chance.random() < 0.5:  # half the records have a made-up buyer: one value in twenty or so
        data["buyer"]["name"] = f"Made-up Buyer {chance.randint(1, 999)}"
    return text, data


def make_run(folder: Path, records: int, chars: int) -> Path:
    chance = random.Random(27)
    (folder / "docs").mkdir(parents=True)
    out = folder / "out.jsonl"
    with out.open("w", encoding="utf-8") as handle:
        for i in range(records):
            text, data = invoice(i, chars, chance)
            name = f"docs/invoice-{i:05d}.txt"
            (folder / name).write_text(text, encoding="utf-8")
            meta = {"model": "bench", "attempts": 1}
            handle.write(json.dumps({"id": name, "source": name, "data": data, "meta": meta}) + "\n")
    return out


def supports(option: str) -> bool:
    done = subprocess.run([sys.executable, "-m", "extractor", "review", "--help"], capture_output=True, text=True)
    return option in done.stdout


async def measure(chromium: Chromium, page: Path, runs: int) -> dict[str, Any]:
    tools: DevTools = await chromium.page("about:", ready=False)
    await tools.call("Performance.enable")
    loads: list[float] = []
    for _ in range(runs):
        await tools.call("Page.navigate", url="about:blank")
        await tools.until("document.readyState === 'complete'")
        started = time.perf_counter()
        await tools.call("Page.navigate", url=page.as_uri())
        await tools.until("document.body && document.body.getAttribute('data-ready') === '1'", timeout=600)
        loads.append(time.perf_counter() - started)
    metrics = {m["name"]: m["value"] for m in (await tools.call("Performance.getMetrics"))["metrics"]}
    result: dict[str, Any] = {"loads": loads, "heap_mb": metrics.get("JSHeapUsedSize", 0) / 1e6}
    if await tools.js("typeof window.extractorReview === 'object'"):
        started = time.perf_counter()
        accepted = await tools.js("window.extractorReview.acceptAll()")
        result["accept_all"] = (time.perf_counter() - started, accepted)
        started = time.perf_counter()
        lines = await tools.js("window.extractorReview.goldText().split('\\n').filter(Boolean).length")
        result["export"] = (time.perf_counter() - started, lines)
        started = time.perf_counter()
        await tools.call("Page.navigate", url=page.as_uri())
        await asyncio.sleep(0.05)
        await tools.until("document.body && document.body.getAttribute('data-ready') === '1'", timeout=600)
        result["restored"] = time.perf_counter() - started
        result["storage_kb"] = await tools.js("localStorage.getItem(Object.keys(localStorage)[0]).length") / 1000
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--chars", type=int, default=37_000, help="characters of each source text")
    parser.add_argument("--runs", type=int, default=3, help="page loads to time")
    parser.add_argument("--keep", type=Path, default=None, help="make the run in this (new) folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch) / "run"
        out = make_run(folder, args.records, args.chars)
        page = folder / "review.html"
        command = [sys.executable, "-m", "extractor", "review", str(out), "-o", str(page)]
        if supports("--schema"):
            command += ["--schema", "invoice"]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=folder)
        built = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"extractor review failed: {done.stderr}")
        size = page.stat().st_size
        with running_chromium("about:blank") as (loop, chromium):
            result = loop.run_until_complete(measure(chromium, page, args.runs))
    loads = result["loads"]
    print(f"records: {args.records:,}, {args.chars:,} characters of source text each")
    print(f"extractor review: {built:.1f} s; {done.stdout.strip()}")
    print(f"page: {size / 1e6:.1f} MB")
    print(
        f"Chromium load to ready: median {statistics.median(loads):.2f} s "
        f"(runs: {', '.join(f'{s:.2f}' for s in loads)}); JS heap {result['heap_mb']:.0f} MB"
    )
    if "export" in result:
        seconds, accepted = result["accept_all"]
        print(f"accept every value in the page: {seconds:.2f} s ({accepted:,} values)")
        seconds, lines = result["export"]
        print(f"gold.jsonl made in the page: {seconds:.2f} s ({lines:,} lines)")
        print(
            f"load with every record's work restored from localStorage ({result['storage_kb']:,.0f} KB): "
            f"{result['restored']:.2f} s"
        )


if __name__ == "__main__":
    main()
