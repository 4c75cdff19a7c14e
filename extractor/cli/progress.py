"""What a run shows while it works: a live bar on a terminal, periodic log lines otherwise, a summary."""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

__all__ = ["Reporter", "RunStats"]


@dataclass
class RunStats:
    """Counts of a run, for the progress display and the final summary."""

    total: int | None = None
    resumed: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    repaired: int = 0
    reasked: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cost_known: bool = True
    repair_kinds: Counter[str] = field(default_factory=Counter)
    error_types: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> int:
        return self.ok + self.failed + self.skipped

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def summary(self) -> str:
        rate = self.done / self.elapsed if self.elapsed > 0 else 0.0
        kinds = ", ".join(f"{n} {k}" for k, n in self.repair_kinds.most_common(6))
        errors = ", ".join(f"{n} {k}" for k, n in self.error_types.most_common(6))
        cost = f"${self.cost:.4f}" + ("" if self.cost_known else " (some costs unknown)")
        lines = [
            f"done in {self.elapsed:.1f} s ({rate:.1f} inputs/s): {self.ok} ok, {self.failed} failed"
            + (f" ({errors})" if errors else "")
            + (f", {self.skipped} not started (budget)" if self.skipped else "")
            + (f", {self.resumed} already done before" if self.resumed else ""),
            f"repaired locally: {self.repaired}"
            + (f" ({kinds})" if kinds else "")
            + f"; re-asked: {self.reasked}; from cache: {self.cached}",
            f"tokens: {self.prompt_tokens} in, {self.completion_tokens} out; cost {cost}",
        ]
        return "\n".join(lines)


class Reporter:
    """A live progress bar on a terminal (stderr), else a log line every `interval` seconds."""

    def __init__(self, stats: RunStats, *, stream: TextIO | None = None, interval: float = 10.0) -> None:
        self.stats = stats
        self.stream = stream or sys.stderr
        self.interval = interval
        self._last = time.monotonic()
        self._progress: Progress | None = None
        self._task: Any = None
        self.in_flight = 0

    def __enter__(self) -> Reporter:
        if self.stream.isatty():
            self._progress = Progress(
                TextColumn("[bold]extracting"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("run", total=self.stats.total, detail="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self.update()
            self._progress.stop()

    def _detail(self) -> str:
        s = self.stats
        rate = s.done / s.elapsed if s.elapsed > 0 else 0.0
        return (
            f"ok {s.ok} · failed {s.failed} · in flight {self.in_flight} · "
            f"{s.prompt_tokens + s.completion_tokens} tokens · ${s.cost:.4f} · {rate:.1f}/s"
        )

    def update(self) -> None:
        """Show the current counts (on a terminal at once; otherwise at most every `interval` seconds)."""
        if self._progress is not None:
            self._progress.update(self._task, completed=self.stats.done, detail=self._detail())
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            total = f"/{self.stats.total}" if self.stats.total is not None else ""
            print(f"[extractor] {self.stats.done}{total} · {self._detail()}", file=self.stream, flush=True)
