"""One budget for every way a run spends: the local runner, the Ray actor and provider batches.

**The estimator** (`input_cost`): an input is the requests its plan sends (`extractor.documents.plan`: one for
a short text, one per part of a long document, each split of a long list), each with its prompt (the
document's share, schema, instructions, framing) and its answer: the answer the plan predicts for a
list, else the longest answer seen so far in the run (`ANSWER_TOKENS` before any). At most, every
request may take every attempt (the first, each re-ask, one retry after a cut); at least, each is asked
once with a short answer — what an input alone is let start with near the end of a budget. Prices
are the model's list prices, times a discount (`Prices.factor`: a provider batch's half price).

**The ledger** (`Budget`): what was spent and what is reserved for the work in flight. A start is
allowed only while spent + reserved + its own estimate stay within `max_cost`. It learns from what
the provider bills: each settled input's billed cost is compared with what its tokens cost at the
list price (`Usage.list_cost`), and reservations grow by the ratio seen (never shrink below 1), so
that a provider billing five times its list price is held to the budget too. Until the first bill is
seen, no more than `WARMUP_SHARE` of the budget is reserved at once (one input alone may always
start): the first answers tell what the rest will cost before most of the budget is committed.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Final

from ..documents.plan import RequestEstimate

__all__ = ["ANSWER_TOKENS", "SHORT_ANSWER_TOKENS", "WARMUP_SHARE", "Budget", "Prices", "input_cost"]

#: the answer length assumed for a record before any answer is in
ANSWER_TOKENS: Final = 1_000
#: the answer length an input let start alone near the end of a budget is reserved for
SHORT_ANSWER_TOKENS: Final = 200
#: the share of a budget that may be reserved at once before any bill has been seen
WARMUP_SHARE: Final = 1 / 8


@dataclass(frozen=True)
class Prices:
    """USD per prompt token and per completion token, times `factor` (a provider batch's discount)."""

    prompt: float
    completion: float
    factor: float = 1.0


def input_cost(
    requests: Sequence[RequestEstimate],
    prices: Prices,
    *,
    attempts: int = 1,
    longest_answer: int | None = None,
    least: bool = False,
) -> float:
    """What an input sending `requests` may cost at most at list price (each request `attempts` times, with
    its predicted answer or the `longest_answer` seen), or with `least` at the least (each once, with a
    short answer)."""
    total = 0.0
    for request in requests:
        answer = request.answer_tokens if request.answer_tokens is not None else longest_answer or ANSWER_TOKENS
        if least:
            answer = min(answer, SHORT_ANSWER_TOKENS)
        total += request.prompt_tokens * prices.prompt + answer * prices.completion
    return total * (1 if least else max(1, attempts)) * prices.factor


class Budget:
    """Spending within `max_cost` USD (see the module's docstring): reservations are made at list price and
    count at the billing ratio learned so far. Work committed elsewhere (a provider batch still running) is
    `hold`: it counts against the budget, but is not work in flight that will settle soon."""

    def __init__(self, max_cost: float, *, spent: float = 0.0, billed: float = 0.0, listed: float = 0.0) -> None:
        if max_cost < 0:
            raise ValueError("max_cost must not be negative")
        self.max_cost = max_cost
        self.spent = spent
        #: what the settled inputs were billed, and what their tokens cost at list price
        self.billed = billed
        self.listed = listed
        self._reserved: dict[Hashable, float] = {}
        self._held: dict[Hashable, float] = {}
        self._reserved_total = 0.0  # running sums of the two, kept so that a start costs no walk over all
        self._held_total = 0.0

    @property
    def ratio(self) -> float:
        """What the provider bills against the list price of the same tokens (at least 1)."""
        return max(1.0, self.billed / self.listed) if self.listed > 0 else 1.0

    @property
    def learned(self) -> bool:
        """Whether a bill has been seen to compare with the list price."""
        return self.listed > 0

    @property
    def in_flight(self) -> float:
        """What the work in flight may cost, at the billing ratio learned (held work left out)."""
        return self._reserved_total * self.ratio if self._reserved else 0.0

    @property
    def committed(self) -> float:
        """What the work in flight and the held work may cost, at the billing ratio learned."""
        return (self._reserved_total + self._held_total) * self.ratio

    @property
    def left(self) -> float:
        """What is left of the budget for new work."""
        return max(self.max_cost - self.spent - self.committed, 0.0)

    def reserve(self, key: Hashable, estimate: float) -> bool:
        """Reserve `estimate` (USD at list price) for the work `key`, if the budget allows it."""
        mine = self._reserved.get(key)
        others = self._reserved_total - (mine or 0.0)
        if self.spent + (others + self._held_total + estimate) * self.ratio > self.max_cost:
            return False
        if (
            not self.learned
            and len(self._reserved) > (mine is not None)
            and others + estimate > self.max_cost * WARMUP_SHARE
        ):
            return False  # no bill seen yet: the rest waits for what the first answers cost
        self._reserved[key] = estimate
        self._reserved_total = others + estimate
        return True

    def hold(self, key: Hashable, estimate: float) -> None:
        """Count `estimate` against the budget for `key`, whatever it says: work already committed."""
        self._held_total += estimate - self._held.get(key, 0.0)
        self._held[key] = estimate

    def reserved(self, key: Hashable) -> float:
        """What the work `key` may cost, as reserved, at the billing ratio learned (0 when nothing is)."""
        return self._reserved.get(key, self._held.get(key, 0.0)) * self.ratio

    def release(self, key: Hashable) -> None:
        """The reservation of `key` is no longer needed (its cost is settled elsewhere)."""
        self._reserved_total -= self._reserved.pop(key, 0.0)
        self._held_total -= self._held.pop(key, 0.0)
        if not self._reserved:
            self._reserved_total = 0.0  # no rounding left over: nothing reserved is nothing
        if not self._held:
            self._held_total = 0.0

    def settle(self, key: Hashable, cost: float, list_cost: float = 0.0) -> None:
        """The work `key` is over and was billed `cost`; its tokens cost `list_cost` at list price (0: not
        known), which teaches the ledger what the provider bills."""
        self.release(key)
        self.spent += cost
        if list_cost > 0 and cost > 0:
            self.billed += cost
            self.listed += list_cost
