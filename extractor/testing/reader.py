"""`RowReader`: a test model that reads the rows its request holds and stops at a completion limit like a
real provider, so that long lists can be tested offline.

    server.handler = RowReader(r"^(?P<date>\\S+) (?P<text>.+?) (?P<amount>-?\\d+\\.\\d\\d)$", convert={"amount": float},
                               max_completion_tokens=8_192)

Each match of `pattern` (multi-line) in the request's document text is one item, its named groups the
item's fields. The document text is the last user message's text without a part's preamble (what a
model that keeps to the preamble reads as the part's own), so carried context is never read again.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..documents.plan import split_preamble
from .recorded import RecordedRequest, requested_schema
from .replies import Reply

__all__ = ["RowReader", "document_text"]


def document_text(request: RecordedRequest) -> str:
    """The text of the request's last user message (its text parts joined by blank lines), without the
    preamble of a part of a long document."""
    payload = request.json if isinstance(request.json, Mapping) else {}
    messages = [m for m in payload.get("messages") or [] if isinstance(m, Mapping) and m.get("role") == "user"]
    if not messages:
        return ""
    content = messages[-1].get("content")
    if isinstance(content, list):
        texts = [str(p.get("text", "")) for p in content if isinstance(p, Mapping) and p.get("type") == "text"]
        content = "\n\n".join(texts)
    return split_preamble(str(content or ""))[1]


def _list_field(schema: Any) -> str | None:
    """The first property of the schema's root that holds a list."""
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(properties, Mapping):
        return None
    for name, node in properties.items():
        kinds = [node, *node.get("anyOf", ())] if isinstance(node, Mapping) else []
        if any(isinstance(k, Mapping) and k.get("type") == "array" for k in kinds):
            return str(name)
    return None


@dataclass
class RowReader:
    """A chat-completions handler (`TestServer.handler`) answering with the rows of the request's text.

    - `pattern`: one item per match (`re.MULTILINE`); its named groups are the item's fields, converted by
      `convert` (field name -> function of the matched text);
    - `into`: the list property the items go to (default: the first list property of the request's schema);
    - `fields`: the record's other fields, each the first group of a pattern's first match (else null); every
      other property of the request's schema is null (a part's note among them);
    - `max_completion_tokens`: where answers stop, besides the request's `max_tokens`: an answer longer than
      the limit (counted as the server counts, 4 characters a token) is cut there, with finish_reason
      "length", as a real provider cuts it.

    `requests` counts the answers given, `cut` those cut off.
    """

    pattern: str | re.Pattern[str]
    into: str | None = None
    convert: Mapping[str, Callable[[str], Any]] = field(default_factory=dict)
    fields: Mapping[str, str | re.Pattern[str]] = field(default_factory=dict)
    max_completion_tokens: int | None = None
    requests: int = 0
    cut: int = 0

    def __post_init__(self) -> None:
        self._rows = re.compile(self.pattern, re.MULTILINE) if isinstance(self.pattern, str) else self.pattern
        self._fields = {k: re.compile(v, re.MULTILINE) if isinstance(v, str) else v for k, v in self.fields.items()}

    def items(self, text: str) -> list[dict[str, Any]]:
        """The items `text` holds, in order."""
        out = []
        for match in self._rows.finditer(text):
            item = {k: v for k, v in match.groupdict().items()}
            for name, convert in self.convert.items():
                if item.get(name) is not None:
                    item[name] = convert(item[name])
            out.append(item)
        return out

    def __call__(self, request: RecordedRequest) -> Reply:
        payload = request.json if isinstance(request.json, Mapping) else {}
        mode, schema = requested_schema(payload)
        text = document_text(request)
        properties = schema.get("properties") if isinstance(schema, Mapping) else None
        answer: dict[str, Any] = dict.fromkeys(properties, None) if isinstance(properties, Mapping) else {}
        for name, found in self._fields.items():
            match = found.search(text)
            answer[name] = match.group(1) if match else None
        answer[self.into or _list_field(schema) or "items"] = self.items(text)
        body = json.dumps(answer)
        limits = [n for n in (payload.get("max_tokens"), self.max_completion_tokens) if isinstance(n, int) and n > 0]
        limit = min(limits) if limits else None
        self.requests += 1
        finish = None
        if limit is not None and math.ceil(len(body) / 4) > limit:
            body, finish = body[: 4 * limit], "length"
            self.cut += 1
        if mode == "tools":
            return Reply(tool_arguments=body, finish_reason=finish)
        return Reply(content=body, finish_reason=finish)
