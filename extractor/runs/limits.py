"""Pacing a batch: requests in flight (adapting to 429s), requests and tokens per minute (the budget: `budget`)."""

from __future__ import annotations

import asyncio
import time

__all__ = ["AdaptiveLimit", "TokenBucket"]


class AdaptiveLimit:
    """At most `limit` at a time. A rate limit (429) halves `limit` (at most once per `cooldown`
    seconds); each run of `limit` successes adds one back, up to `maximum` (additive increase,
    multiplicative decrease), so a run that starts too fast settles instead of failing."""

    def __init__(self, maximum: int, *, cooldown: float = 1.0) -> None:
        if maximum < 1:
            raise ValueError("concurrency must be at least 1")
        self.maximum = maximum
        self.limit = maximum
        self.in_flight = 0
        self.cuts = 0
        self.cooldown = cooldown
        self._successes = 0
        self._last_cut = float("-inf")
        self._changed: asyncio.Event | None = None

    def _event(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    async def acquire(self) -> None:
        """Wait for a free place, then take it."""
        while self.in_flight >= self.limit:
            event = self._event()
            event.clear()
            await event.wait()
        self.in_flight += 1

    def release(self, *, succeeded: bool) -> None:
        """Give a place back; a success counts towards raising the limit again."""
        self.in_flight -= 1
        if succeeded and self.limit < self.maximum:
            self._successes += 1
            if self._successes >= self.limit:
                self.limit += 1
                self._successes = 0
        self._event().set()

    def rate_limited(self) -> None:
        """A request was answered 429: halve the limit (once per cooldown)."""
        now = time.monotonic()
        if now - self._last_cut < self.cooldown:
            return
        self._last_cut = now
        self.limit = max(1, self.limit // 2)
        self._successes = 0
        self.cuts += 1


class TokenBucket:
    """`per_minute` units a minute, in bursts of at most `burst` (default: one second's worth)."""

    def __init__(self, per_minute: float, *, burst: float | None = None) -> None:
        if per_minute <= 0:
            raise ValueError("a rate limit must be positive")
        self.rate = per_minute / 60.0
        self.capacity = burst if burst is not None else max(1.0, self.rate)
        self.tokens = self.capacity
        self._updated = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def take(self, amount: float = 1.0) -> None:
        """Wait until `amount` units (at most a full bucket) are available, then spend them."""
        amount = min(amount, self.capacity)
        while True:
            self._refill()
            if self.tokens >= amount:
                self.tokens -= amount
                return
            await asyncio.sleep((amount - self.tokens) / self.rate)

    def adjust(self, extra: float) -> None:
        """Spend `extra` more units after the fact (negative gives some back); the bucket may go into debt."""
        self._refill()
        self.tokens = min(self.capacity, self.tokens - extra)
