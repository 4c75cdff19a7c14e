"""`extractor.testing`: the test server's OpenAI Files and Batches endpoints, exercised with a real httpx client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from extractor.testing import DEFAULT_MODEL, RecordedRequest, Reply, TestServer

SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer"}, "word": {"type": "string"}},
    "required": ["n", "word"],
    "additionalProperties": False,
}
CHAT = "/v1/chat/completions"
EXPIRED = {
    "code": "batch_expired",
    "message": "This request could not be executed before the completion window expired.",
}
CANCELLED = {"code": "batch_cancelled", "message": "This request was not executed because the batch was cancelled."}
TIMES = (
    "in_progress_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


def json_schema_body(text: str) -> dict[str, Any]:
    response_format = {"type": "json_schema", "json_schema": {"name": "item", "strict": True, "schema": SCHEMA}}
    messages = [{"role": "user", "content": text}]
    return {"model": DEFAULT_MODEL, "messages": messages, "response_format": response_format}


def tools_body(text: str) -> dict[str, Any]:
    tool = {"type": "function", "function": {"name": "record_item", "parameters": SCHEMA}}
    messages = [{"role": "user", "content": text}]
    return {"model": DEFAULT_MODEL, "messages": messages, "tools": [tool]}


def line(custom_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": body}


def jsonl(*items: Any) -> bytes:
    return "".join(json.dumps(item) + "\n" for item in items).encode()


def simple(count: int) -> bytes:
    return jsonl(*(line(f"r{i}", json_schema_body(f"text {i}")) for i in range(count)))


def compact(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.fixture
def client(server: TestServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        yield http


def upload(client: httpx.Client, data: bytes, purpose: str = "batch", filename: str = "in.jsonl") -> httpx.Response:
    return client.post("/files", data={"purpose": purpose}, files={"file": (filename, data, "application/jsonl")})


def uploaded(client: httpx.Client, data: bytes) -> str:
    response = upload(client, data)
    assert response.status_code == 200, response.text
    file_id: str = response.json()["id"]
    return file_id


def create(client: httpx.Client, file_id: str, **extra: Any) -> httpx.Response:
    payload = {"input_file_id": file_id, "endpoint": CHAT, "completion_window": "24h", **extra}
    return client.post("/batches", json=payload)


def created(client: httpx.Client, data: bytes, **extra: Any) -> str:
    response = create(client, uploaded(client, data), **extra)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "validating"
    batch_id: str = response.json()["id"]
    return batch_id


def look(client: httpx.Client, batch_id: str) -> dict[str, Any]:
    response = client.get(f"/batches/{batch_id}")
    assert response.status_code == 200, response.text
    batch: dict[str, Any] = response.json()
    return batch


def finish(client: httpx.Client, batch_id: str) -> tuple[list[str], dict[str, Any]]:
    """Look at the batch until it is final: the statuses seen, and the final batch object."""
    statuses: list[str] = []
    while True:
        batch = look(client, batch_id)
        statuses.append(batch["status"])
        if batch["status"] in ("completed", "failed", "expired", "cancelled"):
            return statuses, batch
        assert len(statuses) < 20


def content(client: httpx.Client, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    response = client.get(f"/files/{file_id}/content")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.text.endswith("\n")
    return [json.loads(text) for text in response.text.splitlines()]


def without_ids(body: dict[str, Any]) -> dict[str, Any]:
    """The completion without its generation id, creation time and tool-call ids (which count per server)."""
    copy = json.loads(json.dumps(body))
    for choice in copy["choices"]:
        for call in choice["message"].get("tool_calls", []):
            call["id"] = "call"
    return {key: value for key, value in copy.items() if key not in ("id", "created")}


def per_content(request: RecordedRequest) -> Reply | None:
    """Answers by the user's text: "three" is 3, "fail" a 429, "bad" a 500; anything else the default."""
    text = request.json["messages"][-1]["content"]
    if text == "three":
        three = {"n": 3, "word": "three"}
        return Reply.tool(three) if request.mode == "tools" else Reply.json(three)
    if text == "fail":
        return Reply.status_error(429, "slow down")
    if text == "bad":
        return Reply(status=500)
    return None


# --- the whole flow ------------------------------------------------------------------------------------------


def test_a_batch_answers_each_line_as_chat_completions_answer_its_body(
    server: TestServer, client: httpx.Client
) -> None:
    server.handler = per_content
    bodies = {"a": json_schema_body("three"), "b": json_schema_body("é default"), "c": tools_body("three")}
    bodies["d"] = tools_body("default")
    data = jsonl(*(line(custom_id, body) for custom_id, body in bodies.items()))
    before = int(time.time())

    response = upload(client, data, filename="requests.jsonl")
    assert response.status_code == 200
    file = response.json()
    assert before <= file["created_at"] <= int(time.time())
    assert file == {
        "id": "file-1",
        "object": "file",
        "bytes": len(data),
        "created_at": file["created_at"],
        "filename": "requests.jsonl",
        "purpose": "batch",
        "status": "processed",
    }
    assert client.get("/files/file-1").json() == file
    assert client.get("/files/file-1/content").content == data

    response = create(client, "file-1", metadata={"run": "r-7"})
    assert response.status_code == 200
    batch = response.json()
    assert before <= batch["created_at"] <= int(time.time())
    assert batch == {
        "id": "batch_1",
        "object": "batch",
        "endpoint": CHAT,
        "errors": None,
        "input_file_id": "file-1",
        "completion_window": "24h",
        "status": "validating",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": batch["created_at"],
        "expires_at": batch["created_at"] + 24 * 60 * 60,
        **dict.fromkeys(TIMES),
        "request_counts": {"total": 4, "completed": 0, "failed": 0},
        "metadata": {"run": "r-7"},
    }
    assert server.batch_lines == []

    statuses, batch = finish(client, "batch_1")
    assert statuses == ["in_progress", "completed"]
    assert batch["request_counts"] == {"total": 4, "completed": 4, "failed": 0}
    assert (batch["output_file_id"], batch["error_file_id"], batch["errors"]) == ("file-2", None, None)
    for name in ("in_progress_at", "finalizing_at", "completed_at"):
        assert batch["created_at"] <= batch[name] <= int(time.time())
    assert [batch[name] for name in ("failed_at", "expired_at", "cancelling_at", "cancelled_at")] == [None] * 4
    assert client.get("/files/file-2").json() == {
        "id": "file-2",
        "object": "file",
        "bytes": len(client.get("/files/file-2/content").content),
        "created_at": batch["completed_at"],
        "filename": "batch_1_output.jsonl",
        "purpose": "batch_output",
        "status": "processed",
    }

    output = content(client, "file-2")
    assert [(item["id"], item["custom_id"], item["error"]) for item in output] == [
        ("batch_req_1", "a", None),
        ("batch_req_2", "b", None),
        ("batch_req_3", "c", None),
        ("batch_req_4", "d", None),
    ]
    assert [item["response"]["request_id"] for item in output] == ["req_1", "req_2", "req_3", "req_4"]
    assert [item["response"]["body"]["id"] for item in output] == ["gen-1", "gen-2", "gen-3", "gen-4"]
    for item in output:
        body = bodies[item["custom_id"]]
        chat = client.post("/chat/completions", content=compact(body), headers={"Content-Type": "application/json"})
        assert item["response"]["status_code"] == chat.status_code == 200
        assert without_ids(item["response"]["body"]) == without_ids(chat.json())
    answers = [item["response"]["body"]["choices"][0]["message"] for item in output]
    assert json.loads(answers[0]["content"]) == {"n": 3, "word": "three"}
    assert answers[2]["tool_calls"][0]["function"] == {"name": "record_item", "arguments": '{"n": 3, "word": "three"}'}

    lines = server.batch_lines
    assert [(r.batch_id, r.custom_id, r.method, r.path) for r in lines] == [
        ("batch_1", custom_id, "POST", CHAT) for custom_id in "abcd"
    ]
    assert [r.json for r in lines] == list(bodies.values())
    assert [r.body for r in lines] == [compact(body) for body in bodies.values()]
    assert [r.mode for r in lines] == ["json_schema", "json_schema", "tools", "tools"]
    assert len(server.chat_requests) == 4  # the four sent above to compare, not the batch's lines
    assert [(r.method, r.path) for r in server.requests[:7]] == [
        ("POST", "/v1/files"),
        ("GET", "/v1/files/file-1"),
        ("GET", "/v1/files/file-1/content"),
        ("POST", "/v1/batches"),
        ("GET", "/v1/batches/batch_1"),
        ("GET", "/v1/batches/batch_1"),
        ("GET", "/v1/files/file-2"),
    ]

    assert look(client, "batch_1") == batch  # a finished batch stays as it is
    assert len(server.batch_lines) == 4


def test_queued_replies_answer_batch_lines_in_input_order(server: TestServer, client: httpx.Client) -> None:
    server.queue(Reply.json({"n": 1, "word": "one"}), Reply.provider_error("upstream down"))
    batch_id = created(client, simple(3))
    _, batch = finish(client, batch_id)
    assert batch["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    output = content(client, batch["output_file_id"])
    first, second, third = (item["response"]["body"] for item in output)
    assert json.loads(first["choices"][0]["message"]["content"]) == {"n": 1, "word": "one"}
    assert second["error"] == {"code": 502, "message": "upstream down"}
    assert second["choices"][0]["finish_reason"] == "error"
    assert json.loads(third["choices"][0]["message"]["content"]) == {"n": 1, "word": "text"}
    assert server.pending == 0


@pytest.mark.parametrize(("polls", "statuses"), [(0, ["completed"]), (1, ["in_progress", "completed"]), (3, None)])
def test_batch_polls_is_the_number_of_in_progress_looks(
    server: TestServer, client: httpx.Client, polls: int, statuses: list[str] | None
) -> None:
    server.batch_polls = polls
    calls: list[str | None] = []
    server.handler = lambda request: calls.append(request.custom_id) and None
    batch_id = created(client, simple(2))
    seen, batch = finish(client, batch_id)
    assert seen == (statuses or ["in_progress", "in_progress", "in_progress", "completed"])
    assert batch["request_counts"] == {"total": 2, "completed": 2, "failed": 0}
    assert calls == ["r0", "r1"]  # answered once, when the batch completes
    assert batch["in_progress_at"] is not None


# --- failures, expiry, cancelling ------------------------------------------------------------------------


def test_failed_lines_go_to_the_error_file(server: TestServer, client: httpx.Client) -> None:
    server.handler = per_content
    data = jsonl(
        line("ok", json_schema_body("three")),
        line("limited", json_schema_body("fail")),
        line("broken", json_schema_body("bad")),
        line("also-ok", json_schema_body("x")),
    )
    _, batch = finish(client, created(client, data))
    assert batch["status"] == "completed"
    assert batch["request_counts"] == {"total": 4, "completed": 2, "failed": 2}
    assert [item["custom_id"] for item in content(client, batch["output_file_id"])] == ["ok", "also-ok"]
    assert content(client, batch["error_file_id"]) == [
        {
            "id": "batch_req_2",
            "custom_id": "limited",
            "response": {
                "status_code": 429,
                "request_id": "req_2",
                "body": {"error": {"code": 429, "message": "slow down"}},
            },
            "error": None,
        },
        {
            "id": "batch_req_3",
            "custom_id": "broken",
            "response": {
                "status_code": 500,
                "request_id": "req_3",
                "body": {"error": {"code": 500, "message": "Internal Server Error"}},
            },
            "error": None,
        },
    ]


def test_dropped_raising_and_non_json_replies_are_500_lines(server: TestServer, client: httpx.Client) -> None:
    def handler(request: RecordedRequest) -> Reply | None:
        if request.custom_id == "r1":
            raise ValueError("no script for r1")
        return None

    server.handler = handler
    server.queue(Reply.dropped(), Reply.malformed("{nope"), Reply.malformed('{"raw": true}', status=503))
    _, batch = finish(client, created(client, simple(4)))
    assert batch["request_counts"] == {"total": 4, "completed": 0, "failed": 4}
    assert batch["output_file_id"] is None
    errors = content(client, batch["error_file_id"])
    assert [item["custom_id"] for item in errors] == ["r0", "r1", "r2", "r3"]
    assert [(item["response"]["status_code"], item["response"]["body"]) for item in errors] == [
        (500, {"error": {"code": 500, "message": "the test server dropped the request (Reply.drop)"}}),
        (500, {"error": {"code": 500, "message": "the test server's handler raised ValueError: no script for r1"}}),
        (500, {"error": {"code": 500, "message": "the test server's scripted body is not JSON (Reply.body)"}}),
        (503, {"raw": True}),
    ]


def test_an_expired_batch_answers_no_line(server: TestServer, client: httpx.Client) -> None:
    server.expire_batches = True
    statuses, batch = finish(client, created(client, simple(3)))
    assert statuses == ["in_progress", "expired"]
    assert batch["request_counts"] == {"total": 3, "completed": 0, "failed": 0}
    assert batch["output_file_id"] is None and batch["completed_at"] is None
    assert batch["expired_at"] is not None and batch["finalizing_at"] is not None
    assert content(client, batch["error_file_id"]) == [
        {"id": f"batch_req_{i + 1}", "custom_id": f"r{i}", "response": None, "error": EXPIRED} for i in range(3)
    ]
    assert server.batch_lines == []


def test_a_partly_expired_batch_answers_its_first_lines(server: TestServer, client: httpx.Client) -> None:
    server.expire_batches = 2
    server.queue(Reply.status_error(400, "bad line"))
    statuses, batch = finish(client, created(client, simple(4)))
    assert statuses == ["in_progress", "expired"]
    assert batch["request_counts"] == {"total": 4, "completed": 1, "failed": 1}
    assert [item["custom_id"] for item in content(client, batch["output_file_id"])] == ["r1"]
    errors = content(client, batch["error_file_id"])
    assert [(item["custom_id"], item["error"]) for item in errors] == [("r0", None), ("r2", EXPIRED), ("r3", EXPIRED)]
    assert errors[0]["response"]["status_code"] == 400
    assert [r.custom_id for r in server.batch_lines] == ["r0", "r1"]


def test_a_cancelled_batch_keeps_the_lines_answered_before(server: TestServer, client: httpx.Client) -> None:
    server.batch_polls = 5
    server.answered_before_cancel = 2
    batch_id = created(client, simple(4))
    assert look(client, batch_id)["status"] == "in_progress"

    response = client.post(f"/batches/{batch_id}/cancel")
    assert response.status_code == 200
    cancelling = response.json()
    assert cancelling["status"] == "cancelling"
    assert cancelling["cancelling_at"] is not None and cancelling["cancelled_at"] is None
    assert cancelling["request_counts"] == {"total": 4, "completed": 2, "failed": 0}
    assert [r.custom_id for r in server.batch_lines] == ["r0", "r1"]
    assert client.post(f"/batches/{batch_id}/cancel").json()["status"] == "cancelling"  # no second answering
    assert len(server.batch_lines) == 2

    statuses, batch = finish(client, batch_id)
    assert statuses == ["cancelled"]
    assert batch["cancelled_at"] is not None and batch["completed_at"] is None
    assert batch["request_counts"] == {"total": 4, "completed": 2, "failed": 0}
    assert [item["custom_id"] for item in content(client, batch["output_file_id"])] == ["r0", "r1"]
    assert content(client, batch["error_file_id"]) == [
        {"id": "batch_req_3", "custom_id": "r2", "response": None, "error": CANCELLED},
        {"id": "batch_req_4", "custom_id": "r3", "response": None, "error": CANCELLED},
    ]

    refused = client.post(f"/batches/{batch_id}/cancel")
    assert refused.status_code == 400
    assert refused.json() == {
        "error": {
            "message": "Cannot cancel a batch with status 'cancelled'.",
            "type": "invalid_request_error",
            "param": "batch_id",
            "code": None,
        }
    }


def test_a_batch_cancelled_before_any_look_answers_nothing(server: TestServer, client: httpx.Client) -> None:
    batch_id = created(client, simple(2))
    assert client.post(f"/batches/{batch_id}/cancel").json()["status"] == "cancelling"
    _, batch = finish(client, batch_id)
    assert batch["status"] == "cancelled" and batch["in_progress_at"] is None
    assert batch["output_file_id"] is None
    assert [item["error"] for item in content(client, batch["error_file_id"])] == [CANCELLED, CANCELLED]
    assert server.batch_lines == []
    completed = created(client, simple(1))
    finish(client, completed)
    assert client.post(f"/batches/{completed}/cancel").status_code == 400
    assert client.post("/batches/batch_99/cancel").status_code == 404


def test_fail_batches_fails_validation_with_no_files(server: TestServer, client: httpx.Client) -> None:
    server.fail_batches = True
    server.batch_polls = 3
    statuses, batch = finish(client, created(client, simple(2)))
    assert statuses == ["failed"]
    assert batch["errors"] == {
        "object": "list",
        "data": [
            {
                "code": "invalid_request",
                "message": "The batch failed validation (the test server's fail_batches).",
                "param": None,
                "line": None,
            }
        ],
    }
    assert (batch["output_file_id"], batch["error_file_id"], batch["in_progress_at"]) == (None, None, None)
    assert batch["failed_at"] is not None
    assert batch["request_counts"] == {"total": 2, "completed": 0, "failed": 0}
    assert server.batch_lines == []


# --- limits, refusals ------------------------------------------------------------------------------------


def test_files_over_max_file_bytes_are_refused(server: TestServer, client: httpx.Client) -> None:
    data = simple(2)
    server.max_file_bytes = len(data)
    assert upload(client, data).status_code == 200
    server.max_file_bytes = len(data) - 1
    refused = upload(client, data)
    assert refused.status_code == 400
    message = f"The file is {len(data)} bytes, over the limit of {len(data) - 1} bytes (max_file_bytes)."
    assert refused.json() == {
        "error": {"message": message, "type": "invalid_request_error", "param": "file", "code": "file_too_large"}
    }


def test_files_and_batches_over_max_batch_lines_are_refused(server: TestServer, client: httpx.Client) -> None:
    server.max_batch_lines = 3
    assert upload(client, simple(3)).status_code == 200
    refused = upload(client, simple(4))
    assert refused.status_code == 400
    assert refused.json() == {
        "error": {
            "message": "The batch has 4 requests, over the limit of 3 requests (max_batch_lines).",
            "type": "invalid_request_error",
            "param": "file",
            "code": "too_many_requests_in_batch",
        }
    }
    server.max_batch_lines = 2  # lowered after the upload: the batch is refused
    response = create(client, "file-1")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "The batch has 3 requests, over the limit of 2 requests (max_batch_lines)."
    )
    assert client.get("/batches").json()["data"] == []


def test_without_batches_every_route_is_a_404(server: TestServer, client: httpx.Client) -> None:
    server.batches = False
    not_found = {"error": {"code": 404, "message": "Not Found"}}
    responses = [
        upload(client, simple(1)),
        client.get("/files/file-1"),
        client.get("/files/file-1/content"),
        client.post("/batches", json={"input_file_id": "file-1"}),
        client.get("/batches"),
        client.get("/batches/batch_1"),
        client.post("/batches/batch_1/cancel"),
    ]
    assert [(r.status_code, r.json()) for r in responses] == [(404, not_found)] * len(responses)
    assert len(server.requests) == len(responses)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The batch input file holds no requests."),
        (b"\n  \n", "The batch input file holds no requests."),
        (jsonl(line("a", {})) + b"{oops\n", "Line 2 of the batch input file: not valid JSON."),
        (b"\n" + jsonl([1]), "Line 2 of the batch input file: not a JSON object."),
        (
            jsonl({**line("a", {}), "custom_id": ""}),
            "Line 1 of the batch input file: custom_id must be a non-empty string.",
        ),
        (
            jsonl({**line("a", {}), "custom_id": 7}),
            "Line 1 of the batch input file: custom_id must be a non-empty string.",
        ),
        (
            jsonl(line("a", {}), line("b", {}), line("a", {})),
            "Line 3 of the batch input file: custom_id 'a' is not unique (also on line 1).",
        ),
        (
            jsonl({**line("a", {}), "method": "GET"}),
            "Line 1 of the batch input file: method must be 'POST', got 'GET'.",
        ),
        (
            jsonl({**line("a", {}), "url": "/v1/embeddings"}),
            "Line 1 of the batch input file: url must be '/v1/chat/completions', got '/v1/embeddings'.",
        ),
        (jsonl({**line("a", {}), "body": [1]}), "Line 1 of the batch input file: body must be a JSON object."),
        (
            jsonl({"custom_id": "a", "method": "POST", "url": CHAT}),
            "Line 1 of the batch input file: body must be a JSON object.",
        ),
    ],
)
def test_invalid_input_files_are_refused_naming_the_line(client: httpx.Client, data: bytes, message: str) -> None:
    response = upload(client, data)
    assert response.status_code == 400
    assert response.json() == {
        "error": {"message": message, "type": "invalid_request_error", "param": "file", "code": "invalid_file"}
    }


def test_uploads_need_purpose_batch_and_a_file(client: httpx.Client) -> None:
    wrong = upload(client, simple(1), purpose="fine-tune")
    assert wrong.status_code == 400
    assert wrong.json()["error"] == {
        "message": "purpose must be 'batch', got 'fine-tune'.",
        "type": "invalid_request_error",
        "param": "purpose",
        "code": None,
    }
    no_file = client.post("/files", data={"purpose": "batch"}, files={"other": ("x", b"1")})
    assert (no_file.status_code, no_file.json()["error"]["message"]) == (400, "The file field is required.")
    no_purpose = client.post("/files", files={"file": ("x.jsonl", simple(1))})
    assert (no_purpose.status_code, no_purpose.json()["error"]["message"]) == (400, "The purpose field is required.")
    not_a_form = client.post("/files", json={"purpose": "batch"})
    assert (not_a_form.status_code, not_a_form.json()["error"]["message"]) == (
        400,
        "The request must be multipart/form-data.",
    )
    assert client.get("/files/file-1").status_code == 404


def test_batch_creation_is_refused_with_openai_errors(server: TestServer, client: httpx.Client) -> None:
    file_id = uploaded(client, simple(1))

    def error(response: httpx.Response) -> tuple[int, str, str | None]:
        body = response.json()["error"]
        return response.status_code, body["message"], body["param"]

    assert error(create(client, "file-9")) == (404, "No such File object: file-9", "id")
    assert error(create(client, file_id, endpoint="/v1/embeddings")) == (
        400,
        "endpoint must be '/v1/chat/completions', got '/v1/embeddings'.",
        "endpoint",
    )
    assert error(create(client, file_id, completion_window="1h")) == (
        400,
        "completion_window must be '24h', got '1h'.",
        "completion_window",
    )
    assert error(create(client, file_id, metadata={"n": 1})) == (
        400,
        "metadata must be an object with string values.",
        "metadata",
    )
    too_many = {f"k{i}": "v" for i in range(17)}
    assert error(create(client, file_id, metadata=too_many)) == (400, "metadata holds at most 16 keys.", "metadata")
    assert error(client.post("/batches", json={"endpoint": CHAT})) == (
        400,
        "input_file_id must be a string.",
        "input_file_id",
    )
    _, batch = finish(client, created(client, simple(1)))
    assert error(create(client, batch["output_file_id"])) == (
        400,
        f"File {batch['output_file_id']} has purpose 'batch_output', not 'batch'.",
        "input_file_id",
    )
    assert error(client.get("/batches/batch_9")) == (404, "No batch found with id 'batch_9'.", "batch_id")
    assert error(client.delete("/batches/batch_1")) == (405, "Method DELETE is not allowed here.", None)


def test_files_can_be_read_and_deleted(client: httpx.Client) -> None:
    file_id = uploaded(client, simple(1))
    assert client.get(f"/files/{file_id}/content").content == simple(1)
    assert client.delete(f"/files/{file_id}").json() == {"id": file_id, "object": "file", "deleted": True}
    for response in (client.get(f"/files/{file_id}"), client.get(f"/files/{file_id}/content")):
        assert response.status_code == 404
        assert response.json()["error"]["message"] == f"No such File object: {file_id}"
    assert client.delete(f"/files/{file_id}").status_code == 404


# --- listing, auth, reset ------------------------------------------------------------------------------------


def test_batches_are_listed_newest_first_with_their_metadata(server: TestServer, client: httpx.Client) -> None:
    file_id = uploaded(client, simple(1))
    for run in ("first", "second", "third"):
        assert create(client, file_id, metadata={"run": run}).status_code == 200
    look(client, "batch_2")

    everything = client.get("/batches").json()
    assert [(b["id"], b["metadata"], b["status"]) for b in everything["data"]] == [
        ("batch_3", {"run": "third"}, "validating"),
        ("batch_2", {"run": "second"}, "in_progress"),
        ("batch_1", {"run": "first"}, "validating"),
    ]
    assert (everything["object"], everything["first_id"], everything["last_id"], everything["has_more"]) == (
        "list",
        "batch_3",
        "batch_1",
        False,
    )
    page = client.get("/batches", params={"limit": 2}).json()
    assert ([b["id"] for b in page["data"]], page["first_id"], page["last_id"], page["has_more"]) == (
        ["batch_3", "batch_2"],
        "batch_3",
        "batch_2",
        True,
    )
    rest = client.get("/batches", params={"limit": 2, "after": page["last_id"]}).json()
    assert rest == {
        "object": "list",
        "data": [everything["data"][2]],
        "first_id": "batch_1",
        "last_id": "batch_1",
        "has_more": False,
    }
    assert client.get("/batches", params={"after": "batch_1"}).json() == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }
    found = [b["id"] for b in everything["data"] if b["metadata"] == {"run": "second"}]
    assert found == ["batch_2"]
    for params in ({"limit": 0}, {"limit": 101}, {"limit": "x"}):
        assert client.get("/batches", params=params).status_code == 400
    assert client.get("/batches", params={"after": "batch_9"}).json()["error"]["message"] == (
        "No batch found with id 'batch_9'."
    )
    assert look(client, "batch_1")["status"] == "in_progress"  # listing is not a look


def test_an_api_key_is_required_on_files_and_batches() -> None:
    with TestServer(api_key="sk-test") as server, httpx.Client(base_url=server.base_url, timeout=30) as http:
        refused = upload(http, simple(1))
        assert refused.status_code == 401
        assert refused.json() == {"error": {"code": 401, "message": "No auth credentials found"}}
        assert http.get("/batches").status_code == 401
        http.headers["Authorization"] = "Bearer sk-test"
        file_id = uploaded(http, simple(1))
        assert create(http, file_id).status_code == 200
        _, batch = finish(http, "batch_1")
        assert batch["request_counts"] == {"total": 1, "completed": 1, "failed": 0}


def test_reset_forgets_files_batches_and_batch_lines(server: TestServer, client: httpx.Client) -> None:
    finish(client, created(client, simple(2)))
    assert len(server.batch_lines) == 2
    server.reset()
    assert server.batch_lines == [] and server.requests == []
    assert client.get("/files/file-1").status_code == 404
    assert client.get("/batches/batch_1").status_code == 404
    assert client.get("/batches").json()["data"] == []
    assert created(client, simple(1)) == "batch_2"  # ids are never reused


def test_unrecorded_servers_do_not_record_batch_lines() -> None:
    with TestServer(record=False) as server, httpx.Client(base_url=server.base_url, timeout=30) as http:
        _, batch = finish(http, created(http, simple(2)))
        assert batch["request_counts"] == {"total": 2, "completed": 2, "failed": 0}
        assert server.batch_lines == [] and server.requests == []
