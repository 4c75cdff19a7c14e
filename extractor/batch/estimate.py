"""What an input may cost, for a budget: one estimator for the local runner, Ray and provider batches.

An input is the requests its plan sends (`extractor.plan`: one for a short text, one per part of a
long document, each split of a long list), each with its prompt (the document's share, schema,
instructions, framing) and its answer: the answer the plan predicts for a list, else the longest
answer seen so far in the run (`ANSWER_TOKENS` before any). At most, every request may take every
attempt (the first, each re-ask, one retry after a cut); at least, each is asked once with a short
answer — what an input alone is let start with near the end of a budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ..plan import RequestEstimate

__all__ = ["ANSWER_TOKENS", "SHORT_ANSWER_TOKENS", "Prices", "input_cost"]

#: the answer length assumed for a record before any answer is in
ANSWER_TOKENS: Final = 1_000
#: the answer length an input let start alone near the end of a budget is reserved for
SHORT_ANSWER_TOKENS: Final = 200


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
    """What an input sending `requests` may cost at most (each request `attempts` times, with its predicted
    answer or the `longest_answer` seen), or with `least` at the least (each once, with a short answer)."""
    total = 0.0
    for request in requests:
        answer = request.answer_tokens if request.answer_tokens is not None else longest_answer or ANSWER_TOKENS
        if least:
            answer = min(answer, SHORT_ANSWER_TOKENS)
        total += request.prompt_tokens * prices.prompt + answer * prices.completion
    return total * (1 if least else max(1, attempts)) * prices.factor
