"""The library's exceptions: one base class, one family per stage of the flow.

Every error raised for a user's input, a provider's answer or a bad configuration is an
`ExtractorError`. The names deliberately avoid pydantic's (`ValidationError`) and the
builtins (`TimeoutError`, `ConnectionError`), so that an `except` clause catches what it says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "ConfigurationError",
    "ConflictError",
    "DocumentError",
    "EncryptedDocumentError",
    "EndpointUnreachableError",
    "ErrorDetail",
    "ExtractorError",
    "InputError",
    "ModerationError",
    "NotFoundError",
    "OutputError",
    "OutputInvalidError",
    "OutputTruncatedError",
    "PaymentRequiredError",
    "RateLimitError",
    "RefusalError",
    "ResponseTooLargeError",
    "RunStoppedError",
    "SchemaCompileError",
    "ServerError",
    "StreamDivergedError",
    "TransientResponseError",
    "UnknownHostError",
    "UnsupportedSourceError",
]


def _shorten(value: Any, limit: int = 80) -> str:
    """A one-line rendering of `value`, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class ErrorDetail:
    """One readable problem with a value: where it is (a JSON path such as `$.items[2].sku`) and what is wrong.

    `loc` is the same place as keys and indexes; `kind` a short class of problem (`missing`,
    `number`, or the validator's own error type), for code that reacts to errors.
    """

    path: str
    message: str
    value: Any = None
    has_value: bool = False
    loc: tuple[str | int, ...] = field(default=(), compare=False)
    kind: str = field(default="", compare=False)

    def __str__(self) -> str:
        if self.has_value:
            return f"{self.path}: {self.message} (got {_shorten(self.value)})"
        return f"{self.path}: {self.message}"


class ExtractorError(Exception):
    """Base class of every error this library raises on purpose.

    Raised by an extraction, it also carries what the extraction cost before it failed:
    `usage` (tokens, USD) and `attempts` (one entry per request).
    """

    usage: Any = None
    attempts: Any = None


class ConfigurationError(ExtractorError):
    """The library was set up in a way that cannot work (missing API key, unknown mode, bad option)."""


class SchemaCompileError(ExtractorError):
    """What was given as a schema is not one (not a type pydantic knows, not a JSON Schema)."""


# --- output of the model -------------------------------------------------------------------


class OutputError(ExtractorError):
    """The model's answer cannot be turned into a valid value.

    `errors` lists each problem with its JSON path; `raw` is the answer text as received (when there
    was one); `repairs` the local repairs that had been applied before the problems were found.
    """

    def __init__(
        self,
        message: str,
        errors: Sequence[ErrorDetail] = (),
        *,
        raw: str | None = None,
        repairs: Sequence[Any] = (),
    ) -> None:
        self.errors: list[ErrorDetail] = list(errors)
        self.raw = raw
        self.repairs: list[Any] = list(repairs)
        self.message = message
        super().__init__(self._render())

    def _render(self) -> str:
        if not self.errors:
            return self.message
        shown = "\n".join(f"  - {e}" for e in self.errors[:20])
        more = f"\n  ... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
        return f"{self.message}:\n{shown}{more}"


class OutputInvalidError(OutputError):
    """The answer does not validate against the schema (after any re-asks, when raised by the client)."""


class OutputTruncatedError(OutputError):
    """The answer was cut off or is incomplete; only a lossy repair could make it a value.

    When the token limit cut it: `limit` is the `max_tokens` it was cut at, `at_limit` says that no
    answer of the call may be longer (the model's completion limit, or the room its context leaves), so
    asking again the same way cannot help; `answer_tokens` is how long the cut answer was and `items`
    how many whole list items it held (None when not known)."""

    def __init__(
        self,
        message: str,
        errors: Sequence[ErrorDetail] = (),
        *,
        raw: str | None = None,
        repairs: Sequence[Any] = (),
        limit: int | None = None,
        at_limit: bool = False,
        answer_tokens: int | None = None,
        items: int | None = None,
    ) -> None:
        self.limit = limit
        self.at_limit = at_limit
        self.answer_tokens = answer_tokens
        self.items = items
        super().__init__(message, errors, raw=raw, repairs=repairs)


class StreamDivergedError(OutputError):
    """Records were already yielded by `stream_items` when the answer changed under them (a stream that
    started over, or a re-ask, gave other records in their place). `yielded` holds the records already
    handed out, `final` the validated list the extraction ended with; neither is mixed into the other."""

    def __init__(self, message: str, *, yielded: Sequence[Any], final: Sequence[Any]) -> None:
        self.yielded = list(yielded)
        self.final = list(final)
        super().__init__(message)


class ConflictError(OutputError):
    """The chunks of a long document disagree on a value (raised with `on_conflict="fail"`).

    `conflicts` maps each field's JSON path to every `(chunk index, value)` offered; `errors` names them.
    """

    def __init__(self, message: str, conflicts: dict[str, list[tuple[int, Any]]]) -> None:
        self.conflicts = conflicts
        details = [
            ErrorDetail(path, "the chunks disagree: " + "; ".join(f"chunk {i + 1} says {v!r}" for i, v in offered))
            for path, offered in conflicts.items()
        ]
        super().__init__(message, details)


class RefusalError(OutputError):
    """The model refused to answer; `refusal` holds its text. Refusals are never re-asked."""

    def __init__(self, refusal: str, *, raw: str | None = None) -> None:
        self.refusal = refusal
        super().__init__(f"the model refused: {_shorten(refusal, 300)}", raw=raw)


# --- the provider's HTTP API ---------------------------------------------------------------


class APIError(ExtractorError):
    """An error answered by (or on the way to) the chat-completions endpoint.

    `status` is the HTTP status (None for connection problems), `body` a short excerpt of the
    provider's error message. Neither ever contains the API key.
    """

    def __init__(
        self, message: str, *, status: int | None = None, body: str | None = None, retry_after: float | None = None
    ) -> None:
        self.status = status
        self.body = body
        self.retry_after = retry_after
        super().__init__(message)


class BadRequestError(APIError):
    """400: the endpoint rejected the request (often the schema or the mode)."""


class AuthenticationError(APIError):
    """401: the API key is missing, wrong or revoked."""


class PaymentRequiredError(APIError):
    """402: the account has no credits left for this request."""


class ModerationError(APIError):
    """403: the input was flagged by the provider's moderation."""


class NotFoundError(APIError):
    """404: unknown model or wrong base URL."""


class RateLimitError(APIError):
    """429: too many requests; retried with backoff before this is raised."""


class ServerError(APIError):
    """5xx: the provider failed; retried with backoff before this is raised."""


class APITimeoutError(APIError):
    """The request took longer than the timeout; retried before this is raised."""


class APIConnectionError(APIError):
    """The endpoint could not be reached or dropped the connection; retried before this is raised."""


class EndpointUnreachableError(APIConnectionError):
    """The endpoint could not be reached at all: connection refused, unknown host, no route; nothing was sent."""


class UnknownHostError(EndpointUnreachableError):
    """The endpoint's host name does not exist (the resolver says so): nothing was sent, and it is not
    retried, as the name will not resolve on a second try (a resolver that could not answer is retried)."""


class TransientResponseError(APIError):
    """A 200 answer that carries an error (`error` in the body, `finish_reason: "error"`, a broken stream)."""


class ResponseTooLargeError(APIError):
    """The endpoint's answer (decompressed) grew past the size limit; reading stopped there. Not retried."""


# --- sources and batches -------------------------------------------------------------------


class DocumentError(ExtractorError):
    """A source could not be read (corrupt PDF, unreadable image, empty file); the message names it."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class EncryptedDocumentError(DocumentError):
    """A PDF is encrypted and no (or a wrong) password was given."""


class UnsupportedSourceError(DocumentError):
    """A source is of a kind the library does not read (unknown binary data, unsupported image format)."""


class BudgetExceededError(ExtractorError):
    """Starting this request would take the run past its `max_cost`; the request was not sent."""


class InputError(ExtractorError):
    """An input of a batch cannot be used as given: a JSONL line that is not UTF-8 or JSON, has no
    text, or repeats an id with another text; a folder that cannot be listed. The message names it."""


class RunStoppedError(ExtractorError):
    """A batch stopped early on a fault that no input can get past (a wrong key, no credits, an endpoint
    that cannot be reached or a wrong URL). The inputs it did not really try come back not started
    (`skipped`), never as failures; `cause` is the error that showed the fault."""

    def __init__(self, message: str, *, cause: ExtractorError | None = None) -> None:
        self.cause = cause
        super().__init__(message)
