"""extractor: documents to typed, validated records with large language models."""

from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    ConfigurationError,
    DocumentError,
    EncryptedDocumentError,
    ErrorDetail,
    ExtractorError,
    ModerationError,
    NotFoundError,
    OutputError,
    OutputInvalidError,
    OutputTruncatedError,
    PaymentRequiredError,
    RateLimitError,
    RefusalError,
    SchemaCompileError,
    ServerError,
    TransientResponseError,
    UnsupportedSourceError,
)
from .extract import DEFAULT_INSTRUCTIONS, OPENROUTER_BASE_URL, CallOptions, Extractor, Partial
from .models_info import DEFAULT_MODEL, ModelInfo
from .output.repairs import Repair, RepairKind, summarize_repairs
from .results import Attempt, ExtractResult, Usage
from .schema import CompiledSchema, Dialect, GeminiDialect, compile_schema
from .schema.compiled import ParseResult
from .transport import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "DEFAULT_MODEL",
    "OPENROUTER_BASE_URL",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "Attempt",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "CallOptions",
    "CompiledSchema",
    "ConfigurationError",
    "Dialect",
    "DocumentError",
    "EncryptedDocumentError",
    "ErrorDetail",
    "ExtractResult",
    "Extractor",
    "ExtractorError",
    "GeminiDialect",
    "ModelInfo",
    "ModerationError",
    "NotFoundError",
    "OutputError",
    "OutputInvalidError",
    "OutputTruncatedError",
    "ParseResult",
    "Partial",
    "PaymentRequiredError",
    "RateLimitError",
    "RefusalError",
    "Repair",
    "RepairKind",
    "RetryPolicy",
    "SchemaCompileError",
    "ServerError",
    "TransientResponseError",
    "UnsupportedSourceError",
    "Usage",
    "__version__",
    "compile_schema",
    "summarize_repairs",
]
