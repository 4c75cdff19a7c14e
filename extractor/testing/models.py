"""The models a test server lists on `GET /models`, and what they cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = ["DEFAULT_MODEL", "DEFAULT_SUPPORTED_PARAMETERS", "ModelSpec", "model_object"]

DEFAULT_MODEL = "mistralai/mistral-small-2603"
"""The model the server lists when given none: the client's default model, so that `Extractor()` finds it."""

DEFAULT_SUPPORTED_PARAMETERS: tuple[str, ...] = (
    "structured_outputs",
    "response_format",
    "tools",
    "tool_choice",
    "reasoning",
    "include_reasoning",
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "frequency_penalty",
    "presence_penalty",
    "seed",
)


@dataclass(frozen=True)
class ModelSpec:
    """One model as OpenRouter's catalogue describes it; prices are USD per token. A price or
    `supported_parameters` of None is left out of the entry (an endpoint that does not say)."""

    id: str
    context_length: int = 262144
    max_completion_tokens: int | None = None
    prompt_price_per_token: float | None = 0.15e-6
    completion_price_per_token: float | None = 0.60e-6
    supported_parameters: list[str] | None = field(default_factory=lambda: list(DEFAULT_SUPPORTED_PARAMETERS))
    input_modalities: list[str] = field(default_factory=lambda: ["text", "image"])
    name: str | None = None
    #: what answers' `usage.cost` says against the listed prices (5.0: the provider bills five times its list)
    billed_factor: float = 1.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """What a call with these token counts is billed, in USD (`billed_factor` times the list price; None
        when a price is not given)."""
        prompt, completion = self.prompt_price_per_token, self.completion_price_per_token
        if prompt is None or completion is None:
            return None
        return round((prompt_tokens * prompt + completion_tokens * completion) * self.billed_factor, 12)


def _price(value: float) -> str:
    """A price as OpenRouter spells it: a plain decimal string, never an exponent (`"0.00000015"`)."""
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def model_object(spec: ModelSpec) -> dict[str, Any]:
    """The entry for `spec` in the `data` list of `GET /models`, in OpenRouter's shape."""
    entry: dict[str, Any] = {
        "id": spec.id,
        "name": spec.name or spec.id,
        "context_length": spec.context_length,
        "top_provider": {
            "context_length": spec.context_length,
            "max_completion_tokens": spec.max_completion_tokens,
            "is_moderated": False,
        },
        "architecture": {
            "input_modalities": list(spec.input_modalities),
            "output_modalities": ["text"],
        },
    }
    prices = {"prompt": spec.prompt_price_per_token, "completion": spec.completion_price_per_token}
    if any(price is not None for price in prices.values()):
        entry["pricing"] = {name: _price(price) for name, price in prices.items() if price is not None}
    if spec.supported_parameters is not None:
        entry["supported_parameters"] = list(spec.supported_parameters)
    return entry
