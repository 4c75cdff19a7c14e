"""The live progress bar and the summary of `extractor run`."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

from extractor import Extractor
from extractor.cli.progress import Reporter, RunStats
from extractor.runs.runner import BatchRunner
from extractor.testing import Reply, TestServer

_NEW_LINE = re.compile(r"\r|\x1b\[2K")  # what starts a line over
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_fits_one_line_of_80_columns_with_what_is_in_flight() -> None:
    stats = RunStats(total=100_000, ok=41_234, failed=1_234, cost=12.3456, prompt_tokens=9_999_999)
    screen = _Terminal()
    with Reporter(stats, stream=screen, in_flight=lambda: 256, width=80) as reporter:
        reporter.update()
    shown = [line for line in _ANSI.sub("", _NEW_LINE.sub("\n", screen.getvalue())).splitlines() if line.strip()]
    last = shown[-1]
    assert all(len(line) <= 80 for line in shown), shown
    assert "42468/100000" in last and "ok 41234" in last and "failed 1234" in last
    assert "256 in flight" in last


def test_the_runner_counts_what_is_in_flight(tmp_path: Path) -> None:
    seen: list[int] = []

    async def main() -> None:
        with TestServer() as server:
            # the first input is answered at once, the others only after a long pause: when the first
            # result comes in, the other started inputs are still being answered
            server.handler = lambda request: None if "text 0" in request.body.decode() else Reply(delay=1.5)
            ex = Extractor(base_url=server.base_url, mode="json_schema", cache_dir=tmp_path)
            runner: BatchRunner[dict[str, str]] = BatchRunner(ex, {"type": "object"}, concurrency=4)
            texts = [f"text {i}" for i in range(8)]
            async for _ in runner.run(texts):
                seen.append(runner.in_flight)
            await ex.aclose()

    asyncio.run(main())
    assert len(seen) == 8
    assert seen[0] >= 3  # concurrency 4: at least three more were started and are still being answered
    assert seen[-1] == 0


def test_the_summary_accounts_for_every_input() -> None:
    stats = RunStats(given=10, ok=4, failed=2, skipped=1, resumed=2, still_failed=1)
    stats.error_types.update({"DocumentError": 2})
    first = stats.summary().splitlines()[0]
    assert first == (
        "10 inputs given: 4 ok, 2 failed (2 DocumentError), 1 not started (budget), 2 already done before, "
        "1 failed before and not retried (--retry-errors retries them)"
    )
    assert not stats.complete
    stopped = RunStats(given=50, ok=3, stopped=4)
    assert "47 not started (the run stopped)" in stopped.summary()  # in flight and never read alike
    assert RunStats(given=3, ok=2, resumed=1).complete


def test_the_progress_counts_only_the_inputs_finished() -> None:
    stopped = RunStats(total=4, stopped=4)  # a run that stopped before any input finished
    log = io.StringIO()
    with Reporter(stopped, stream=log) as reporter:
        reporter.update(force=True)
    assert log.getvalue().startswith("[extractor] 0/4 · ok 0 · failed 0 ·"), log.getvalue()
    stats = RunStats(total=10, ok=2, failed=1, skipped=3, stopped=1, resumed=1, still_failed=1)
    screen = _Terminal()
    with Reporter(stats, stream=screen, width=80) as reporter:
        reporter.update()
    last = _ANSI.sub("", _NEW_LINE.sub("\n", screen.getvalue())).strip().splitlines()[-1]
    assert "5/10" in last, last  # 2 ok, 1 failed, 1 done before, 1 failed before; not the 4 not started


def test_the_summary_of_an_interrupted_run_says_so() -> None:
    stats = RunStats(given=200, ok=56, interrupted=True)
    assert stats.summary().splitlines()[0] == "200 inputs given: 56 ok, 0 failed, 144 not started (interrupted)"
    from_stdin = RunStats(given=65, ok=56, interrupted=True, unread_unknown=True)
    assert from_stdin.summary().splitlines()[0] == (
        "65 inputs read before the run ended (from stdin: any more were not read): "
        "56 ok, 0 failed, 9 not started (interrupted)"
    )
