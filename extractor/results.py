"""What an extraction returns besides the value: usage, cost, attempts, repairs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .output.repairs import Repair
from .sources import Evidence

__all__ = ["Attempt", "ChunkInfo", "ExtractResult", "Usage"]

T = TypeVar("T")


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


@dataclass
class Usage:
    """Tokens and cost (USD) of one or more requests. `cost_known` is False when a request's cost
    could be neither read from the answer nor computed from the model's prices. `list_cost` is what
    the same tokens cost at the model's list prices (0 when they are not known): beside `cost`, what
    the provider billed, it tells budgets whether the provider bills more than its list says."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    cost: float = 0.0
    cost_known: bool = True
    list_cost: float = 0.0
    #: the tokens are an estimate (erring high): the endpoint sent no usage (a stream without a usage chunk)
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cached_tokens + other.cached_tokens,
            self.cost + other.cost,
            self.cost_known and other.cost_known,
            self.list_cost + other.list_cost,
            self.estimated or other.estimated,
        )

    @classmethod
    def from_response(
        cls, usage: Mapping[str, Any] | None, prompt_price: float | None, completion_price: float | None
    ) -> Usage:
        """Usage read from a response's `usage` object; cost from `usage.cost`, else from the prices
        (USD per token)."""
        if not isinstance(usage, Mapping):
            return cls(cost_known=False)
        details = usage.get("completion_tokens_details") or {}
        prompt_details = usage.get("prompt_tokens_details") or {}
        out = cls(
            prompt_tokens=_int(usage.get("prompt_tokens")),
            completion_tokens=_int(usage.get("completion_tokens")),
            reasoning_tokens=_int(details.get("reasoning_tokens")) if isinstance(details, Mapping) else 0,
            cached_tokens=_int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, Mapping) else 0,
            estimated=usage.get("estimated") is True,
        )
        if prompt_price is not None and completion_price is not None:
            out.list_cost = out.prompt_tokens * prompt_price + out.completion_tokens * completion_price
        cost = usage.get("cost")
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            out.cost = float(cost)
        elif prompt_price is not None and completion_price is not None:
            out.cost = out.list_cost
        else:
            out.cost_known = False
        return out


@dataclass
class Attempt:
    """One request of an extraction: how it went and what it cost."""

    number: int
    mode: str
    usage: Usage
    latency: float
    finish_reason: str | None = None
    generation_id: str | None = None
    #: why this attempt did not give the value (None for the one that did)
    problem: str | None = None
    #: the answer came from the response cache: no request was sent, nothing was spent
    cached: bool = False


@dataclass(frozen=True)
class ChunkInfo:
    """One piece of a long document that was extracted on its own: its characters and pages, and the
    note the model gave for it (e.g. that it holds none of the fields asked for)."""

    index: int
    start: int
    end: int
    pages: tuple[int, ...] = ()
    note: str | None = None


@dataclass
class ExtractResult(Generic[T]):
    """The value of an extraction and everything about how it was obtained."""

    value: T
    model: str
    mode: str
    attempts: list[Attempt]
    repairs: list[Repair]
    usage: Usage
    latency: float
    finish_reason: str | None = None
    generation_id: str | None = None
    #: modes abandoned because the endpoint rejected them, with the reason ("json_schema -> tools: ...")
    fallbacks: list[str] = field(default_factory=list)
    #: for a document split to fit the context: the pieces, in order (empty when sent whole)
    chunks: list[ChunkInfo] = field(default_factory=list)
    #: JSON path of each value in the merged record -> index of the chunk it came from
    provenance: dict[str, int] = field(default_factory=dict)
    #: JSON path of a field the chunks disagreed on -> every (chunk index, value) offered
    conflicts: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    #: with `evidence=True`: where each extracted string occurs in the source text (or that it does not)
    evidence: list[Evidence] | None = None

    @property
    def unsupported(self) -> list[Evidence]:
        """The extracted strings not found in the source text (with `evidence=True`)."""
        return [e for e in self.evidence or [] if not e.found]

    @property
    def cost(self) -> float:
        """USD spent over all attempts."""
        return self.usage.cost

    @property
    def reasks(self) -> int:
        """How many times the model was asked again because its answer was invalid."""
        return sum(1 for a in self.attempts if a.problem is not None)
