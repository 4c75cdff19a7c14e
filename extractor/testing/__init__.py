"""A real OpenAI-compatible (OpenRouter-shaped) HTTP server on loopback, to test extraction pipelines offline.

    with TestServer() as server:
        server.queue(Reply.json({"total": 12.5}), Reply.status_error(429, retry_after=1))
        ...  # point the client at server.base_url
        assert server.chat_requests[0].mode == "json_schema"

Unscripted requests get a schema-valid instance of the request's schema, in the request's mode.
OpenAI's Files and Batches endpoints are served too, their lines answered as chat completions.
`RowReader` answers with the rows a request holds and stops at a completion limit like a real provider
(long lists, offline). Pytest users get a `llm_server` fixture with `pytest_plugins = ["extractor.testing.fixtures"]`;
`python -m extractor.testing` runs the server standalone.
"""

from .models import DEFAULT_MODEL, ModelSpec
from .reader import RowReader, document_text
from .recorded import Mode, RecordedRequest
from .replies import Reply
from .server import Handler, TestServer

__all__ = [
    "DEFAULT_MODEL",
    "Handler",
    "Mode",
    "ModelSpec",
    "RecordedRequest",
    "Reply",
    "RowReader",
    "TestServer",
    "document_text",
]
