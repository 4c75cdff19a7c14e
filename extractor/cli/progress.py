"""What a run shows while it works: a live bar on a terminal, periodic log lines otherwise, a summary."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Column

__all__ = ["Reporter", "RunStats"]


@dataclass
class RunStats:
    """Counts of a run, for the progress display and the final summary.

    Every input given is counted once: ok + failed + not started (budget, a stop or Ctrl-C) + already
    done before + failed before and not retried == given. The progress shows the inputs `finished`.
    """

    total: int | None = None
    given: int | None = None
    resumed: int = 0
    still_failed: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    stopped: int = 0
    repeats: int = 0
    repaired: int = 0
    reasked: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cost_known: bool = True
    #: inputs waiting in a provider batch still running: `(batch id, inputs, when it was created)`
    waiting: list[tuple[str, int, float | None]] = field(default_factory=list)
    repair_kinds: Counter[str] = field(default_factory=Counter)
    error_types: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    #: the run was stopped by Ctrl-C (the inputs not started are counted as such)
    interrupted: bool = False
    #: `given` counts only the inputs read before the run ended early: stdin may have held more
    unread_unknown: bool = False

    @property
    def finished(self) -> int:
        """Inputs with their line: finished in this run (ok or failed), or before it."""
        return self.ok + self.failed + self.resumed + self.still_failed

    @property
    def done(self) -> int:
        """Inputs of this run accounted for so far (finished, not started, waiting in a batch, or done before)."""
        waiting = sum(n for _, n, _ in self.waiting)
        return self.ok + self.failed + self.skipped + self.stopped + self.resumed + self.still_failed + waiting

    @property
    def not_started(self) -> int:
        """Inputs not started: left for the budget, or by a stop (including those never read)."""
        unread = max((self.given or 0) - self.done, 0)
        return self.skipped + self.stopped + unread

    @property
    def complete(self) -> bool:
        """Whether every input given has its record in OUT."""
        return self.failed == 0 and self.not_started == 0 and self.still_failed == 0 and not self.waiting

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def summary(self) -> str:
        worked = self.ok + self.failed
        rate = worked / self.elapsed if self.elapsed > 0 else 0.0
        kinds = ", ".join(f"{n} {k}" for k, n in self.repair_kinds.most_common(6))
        errors = ", ".join(f"{n} {k}" for k, n in self.error_types.most_common(6))
        cost = f"${self.cost:.4f}" + ("" if self.cost_known else " (some costs unknown)")
        given = self.given if self.given is not None else self.done
        parts = [f"{self.ok} ok", f"{self.failed} failed" + (f" ({errors})" if errors else "")]
        if self.skipped:
            parts.append(f"{self.skipped} not started (budget)")
        stopped = self.not_started - self.skipped
        if stopped:
            parts.append(f"{stopped} not started ({'interrupted' if self.interrupted else 'the run stopped'})")
        for batch, count, created in self.waiting:
            when = time.strftime(" (submitted at %Y-%m-%d %H:%M)", time.localtime(created)) if created else ""
            parts.append(f"{count} waiting in batch {batch}{when}")
        if self.resumed:
            parts.append(f"{self.resumed} already done before")
        if self.still_failed:
            parts.append(f"{self.still_failed} failed before and not retried (--retry-errors retries them)")
        noun = f"input{'s' if given != 1 else ''} " + (
            "read before the run ended (from stdin: any more were not read)" if self.unread_unknown else "given"
        )
        lines = [
            f"{given} {noun}: " + ", ".join(parts),
            f"done in {self.elapsed:.1f} s ({rate:.1f} inputs/s)"
            + (f"; {self.repeats} given again with the same id and content, done once" if self.repeats else ""),
            f"repaired locally: {self.repaired}"
            + (f" ({kinds})" if kinds else "")
            + f"; re-asked: {self.reasked}; from cache: {self.cached}",
            f"tokens: {self.prompt_tokens} in, {self.completion_tokens} out; cost {cost}",
        ]
        return "\n".join(lines)


class Reporter:
    """A live progress bar on a terminal (stderr), else a log line every `interval` seconds.

    The bar fits one line of 80 columns: done/total, ok, failed, in flight, cost, time left.
    """

    def __init__(
        self,
        stats: RunStats,
        *,
        stream: TextIO | None = None,
        interval: float = 10.0,
        in_flight: Callable[[], int] | None = None,
        width: int | None = None,
    ) -> None:
        self.stats = stats
        self.stream = stream or sys.stderr
        self.interval = interval
        self.in_flight = in_flight or (lambda: 0)
        self.width = width
        self._last = time.monotonic()
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> Reporter:
        if self.stream.isatty():
            self._progress = Progress(
                BarColumn(bar_width=10),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}", table_column=Column(no_wrap=True, overflow="ellipsis")),
                TimeRemainingColumn(compact=True),
                console=Console(file=self.stream, width=self.width),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("run", total=self.stats.total, detail="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self.update(force=True)
            self._progress.stop()

    def _detail(self) -> str:
        s = self.stats
        cost = f"${s.cost:.4f}" if s.cost < 1 else f"${s.cost:.2f}"
        return f"ok {s.ok} · failed {s.failed} · {self.in_flight()} in flight · {cost}"

    def update(self, *, force: bool = False) -> None:
        """Show the current counts (on a terminal at once; otherwise at most every `interval` seconds)."""
        if self._progress is not None:
            self._progress.update(self._task, completed=self.stats.finished, detail=self._detail())
            return
        now = time.monotonic()
        if force or now - self._last >= self.interval:
            self._last = now
            total = f"/{self.stats.total}" if self.stats.total is not None else ""
            s = self.stats
            rate = (s.ok + s.failed) / s.elapsed if s.elapsed > 0 else 0.0
            print(
                f"[extractor] {s.finished}{total} · {self._detail()} · "
                f"{s.prompt_tokens + s.completion_tokens} tokens · {rate:.1f}/s",
                file=self.stream,
                flush=True,
            )
