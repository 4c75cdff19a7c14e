"""A configuration that cannot work is one clear line, found before anything is sent.

- `extractor run --schema SPEC` with a SPEC that cannot be used (unreadable file, failing import,
  not a schema, refused by its meta-schema, a `$ref` loop): exit 2, one `error:` line naming the
  spec and the problem, no traceback, no output files (the real command, in subprocesses);
- `compile_schema` refuses the same broken JSON Schemas, and still compiles recursive ones;
- an endpoint that cannot be reached (refused, unknown host) is `EndpointUnreachableError`,
  one that accepts and closes without answering is another `APIConnectionError`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from extractor import (
    APIConnectionError,
    ConfigurationError,
    EndpointUnreachableError,
    Extractor,
    RetryPolicy,
    SchemaCompileError,
    UnknownHostError,
    compile_schema,
)
from extractor.cli.schemas import resolve_schema

UNREACHABLE = "http://127.0.0.1:9/v1"
BASE_URL = ("--base-url", UNREACHABLE)
KEY = "sk-test-0123456789abcdefghijklmnop"

LOOP = {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}
TREE = {
    "$defs": {
        "node": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            },
            "required": ["name", "children"],
        }
    },
    "$ref": "#/$defs/node",
}
LOOP_MESSAGE = "$ref loop that never reaches a property or an item"


# --- the real command in subprocesses ----------------------------------------------------------


def _env(tmp_path: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "EXTRACTOR_BASE_URL"}
    out["EXTRACTOR_CACHE_DIR"] = str(tmp_path / "cache")
    return out


def _case_dir(tmp_path: Path, name: str) -> Path:
    """A folder for one command: an input folder of two small text files."""
    folder = tmp_path / name
    (folder / "in").mkdir(parents=True)
    for i in range(2):
        (folder / "in" / f"note{i}.txt").write_text(f"Invoice INV-{i}, total {i}.50 EUR", encoding="utf-8")
    return folder


def _run_all(
    cases: dict[str, tuple[Path, str]], tmp_path: Path, prefix: tuple[str, ...] = ()
) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    """Each case's `extractor run in --schema SPEC -o out.jsonl` in its folder, all started together
    (each process spends most of its time importing)."""
    procs = {
        name: (
            folder,
            subprocess.Popen(
                [
                    *prefix,
                    sys.executable,
                    "-m",
                    "extractor",
                    "run",
                    "in",
                    "--schema",
                    spec,
                    "-o",
                    "out.jsonl",
                    *BASE_URL,
                ],
                cwd=folder,
                env=_env(tmp_path),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for name, (folder, spec) in cases.items()
    }
    done = {}
    for name, (folder, proc) in procs.items():
        out, err = proc.communicate(timeout=180)
        done[name] = (folder, subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def _assert_one_error_line(name: str, folder: Path, proc: subprocess.CompletedProcess[str], expected: str) -> None:
    """Exit 2, stderr exactly one `error: ` line matching `expected` (a regex), nothing written."""
    assert proc.returncode == 2, (name, proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, (name, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and proc.stderr.endswith("\n"), (name, proc.stderr)
    assert lines[0].startswith("error: "), (name, proc.stderr)
    assert re.fullmatch(expected, lines[0]), (name, lines[0], expected)
    assert not (folder / "out.jsonl").exists(), name
    assert not (folder / "out.errors.jsonl").exists(), name


def test_unusable_schema_files_are_one_error_line(tmp_path: Path) -> None:
    bad_type = {"type": "object", "properties": {"a": {"type": "strnig"}}}
    bad_required = {"type": "object", "properties": {"a": {"type": "string"}}, "required": "a"}
    # name: (SPEC, what the file SPEC holds (None: a directory), the expected line as a regex)
    specs: dict[str, tuple[str, bytes | None, str]] = {
        "directory": (
            "schemas.json",
            None,
            r"error: schema file schemas\.json is a directory, not a JSON Schema file",
        ),
        "not-utf8": (
            "bad.json",
            b'{"title": "caf\xff"}',
            r"error: schema file bad\.json: not readable JSON \(not UTF-8: byte 0xff at offset 14\)",
        ),
        "not-json": (
            "bad.json",
            b'{"type": "object",\n  }',
            r"error: schema file bad\.json: not readable JSON \(Expecting .+ at line 2 column 3\)",
        ),
        "an-array": (
            "list.json",
            b"[1, 2]",
            r"error: schema file list\.json: a JSON Schema is an object, this file holds an array",
        ),
        "bad-type": (
            "bad.json",
            json.dumps(bad_type).encode(),
            r"error: schema bad\.json is not a valid JSON Schema: at \$\.properties\.a\.type: "
            r"'strnig' is not valid under any of the given schemas",
        ),
        "required-string": (
            "schemas/req.json",
            json.dumps(bad_required).encode(),
            r"error: schema schemas/req\.json is not a valid JSON Schema: at \$\.required: 'a' is not of type 'array'",
        ),
        "ref-loop": (
            "loop.json",
            json.dumps(LOOP).encode(),
            rf"error: schema loop\.json: {re.escape(LOOP_MESSAGE)}: #/\$defs/a -> #/\$defs/b -> #/\$defs/a "
            r"\(a recursive schema must recurse through properties or items\)",
        ),
        "root-self-ref": (
            "self.json",
            b'{"$ref": "#"}',
            rf"error: schema self\.json: {re.escape(LOOP_MESSAGE)}: # -> # \(.+\)",
        ),
    }
    cases: dict[str, tuple[Path, str]] = {}
    for name, (spec, content, _) in specs.items():
        folder = _case_dir(tmp_path, name)
        target = folder / spec
        if content is None:
            target.mkdir()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        cases[name] = (folder, spec)
    for name, (folder, proc) in _run_all(cases, tmp_path).items():
        _assert_one_error_line(name, folder, proc, specs[name][2])


MODULES = {
    "broken_syntax": "from pydantic import BaseModel\n\nclass Model(BaseModel)\n    a: str\n",
    "boom": "from pydantic import BaseModel\n\nraise RuntimeError('settings.toml is missing\\nsecond line')\n",
    "needs_dep": "import no_such_dependency_xyz\n",
    "bad_name": "from os import no_such_name\n",
    "exits": "import sys\n\nsys.exit(3)\n",
    "things": (
        "from pydantic import BaseModel\n\n"
        "def make():\n    return None\n\n"
        "NUMBER = 5\n\n"
        "class Plain:\n    pass\n\n"
        "class Good(BaseModel):\n    a: str\n\n"
        "LOOPING = {'$defs': {'a': {'$ref': '#/$defs/b'}, 'b': {'$ref': '#/$defs/a'}}, '$ref': '#/$defs/a'}\n"
    ),
}


def test_import_paths_that_fail_are_one_error_line(tmp_path: Path) -> None:
    specs = {
        "syntax-error": (
            "broken_syntax:Model",
            r"error: schema broken_syntax:Model: importing broken_syntax failed: SyntaxError: .*\(broken_syntax\.py, "
            r"line 3\)",
        ),
        "raises-at-import": (
            "boom:Model",
            r"error: schema boom:Model: importing boom failed: RuntimeError: settings\.toml is missing "
            r"\(at boom\.py:3\)",
        ),
        "import-error-inside": (
            "needs_dep:Model",
            r"error: schema needs_dep:Model: importing needs_dep failed: ModuleNotFoundError: "
            r"No module named 'no_such_dependency_xyz' \(at needs_dep\.py:1\)",
        ),
        "bad-name-inside": (
            "bad_name:Model",
            r"error: schema bad_name:Model: importing bad_name failed: ImportError: cannot import name "
            r"'no_such_name' from 'os' .*\(at bad_name\.py:1\)",
        ),
        "exits-at-import": ("exits:Model", r"error: schema exits:Model: importing exits failed: SystemExit: 3 .*"),
        "no-such-module": (
            "no_such_module_xyz:Model",
            r"error: schema no_such_module_xyz:Model: cannot import no_such_module_xyz "
            r"\(no module named 'no_such_module_xyz'\)",
        ),
        "no-such-attribute": ("things:Missing", r"error: schema things:Missing: things has no attribute Missing"),
        "a-function": (
            "things:make",
            r"error: schema things:make is not a schema: function make \(expected a pydantic model or type, "
            r"or a JSON Schema dict\)",
        ),
        "an-int": ("things:NUMBER", r"error: schema things:NUMBER is not a schema: int 5 \(expected .+\)"),
        "a-plain-class": (
            "things:Plain",
            r"error: schema things:Plain: cannot build a JSON Schema from <class 'things\.Plain'>: .+",
        ),
        "a-looping-dict": ("things:LOOPING", rf"error: schema things:LOOPING: {re.escape(LOOP_MESSAGE)}: .+"),
    }
    cases: dict[str, tuple[Path, str]] = {}
    for name, (spec, _) in specs.items():
        folder = _case_dir(tmp_path, name)
        for module, source in MODULES.items():
            (folder / f"{module}.py").write_text(source, encoding="utf-8")
        cases[name] = (folder, spec)
    for name, (folder, proc) in _run_all(cases, tmp_path).items():
        _assert_one_error_line(name, folder, proc, specs[name][1])


# root reads files whatever their mode: without these two capabilities, chmod 000 counts for it too
_NO_DAC = "-dac_override,-dac_read_search"
_AS_USER: tuple[str, ...] = (
    (str(shutil.which("setpriv")), f"--inh-caps={_NO_DAC}", f"--bounding-set={_NO_DAC}") if os.geteuid() == 0 else ()
)


@pytest.mark.skipif(
    os.geteuid() == 0 and shutil.which("setpriv") is None,
    reason="as root without setpriv, file permissions are not checked: chmod 000 reads fine",
)
def test_a_schema_file_without_read_permission(tmp_path: Path) -> None:
    folder = _case_dir(tmp_path, "no-permission")
    schema = folder / "locked.json"
    schema.write_text(json.dumps(TREE), encoding="utf-8")
    schema.chmod(0)
    try:
        done = _run_all({"no-permission": (folder, "locked.json")}, tmp_path, _AS_USER)
    finally:
        schema.chmod(0o600)
    _, proc = done["no-permission"]
    _assert_one_error_line(
        "no-permission", folder, proc, r"error: schema file locked\.json: cannot read it \(Permission denied\)"
    )


def test_an_unreadable_schema_file_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same message without relying on permissions (which root does not have checked)."""
    schema = tmp_path / "locked.json"
    schema.write_text("{}", encoding="utf-8")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(ConfigurationError) as info:
        resolve_schema(str(schema))
    assert str(info.value) == f"schema file {schema}: cannot read it (Permission denied)"


def test_a_recursive_schema_file_still_runs(tmp_path: Path) -> None:
    folder = _case_dir(tmp_path, "tree")
    (folder / "tree.json").write_text(json.dumps(TREE), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "extractor", "run", "in", "--schema", "tree.json", "--dry-run"],
        cwd=folder,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 inputs" in proc.stdout


# --- the library: compile_schema ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            {"type": "object", "properties": {"a": {"type": "strnig"}}},
            "not a valid JSON Schema: at $.properties.a.type: 'strnig' is not valid under any of the given schemas",
        ),
        ({"type": "object", "required": "a"}, "not a valid JSON Schema: at $.required: 'a' is not of type 'array'"),
        (
            {"type": "string", "minLength": -1},
            "not a valid JSON Schema: at $.minLength: -1 is less than the minimum of 0",
        ),
        (
            {"$schema": ["draft-07"], "type": "string"},
            "not a valid JSON Schema: at $['$schema']: ['draft-07'] is not a string",
        ),
        (LOOP, f"{LOOP_MESSAGE}: #/$defs/a -> #/$defs/b -> #/$defs/a"),
        ({"$ref": "#"}, f"{LOOP_MESSAGE}: # -> #"),
        ({"type": "object", "$ref": "#"}, f"{LOOP_MESSAGE}: # -> #"),
        (
            {"$defs": {"a": {"allOf": [{"$ref": "#/$defs/a"}, {"type": "object"}]}}, "$ref": "#/$defs/a"},
            f"{LOOP_MESSAGE}: #/$defs/a -> #/$defs/a",
        ),
        (
            {
                "$defs": {"a": {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/a"}]}},
                "type": "array",
                "items": {"$ref": "#/$defs/a"},
            },
            f"{LOOP_MESSAGE}: #/$defs/a -> #/$defs/a",
        ),
        (
            {
                "definitions": {"a": {"not": {"$ref": "#/definitions/a"}}},
                "properties": {"x": {"$ref": "#/definitions/a"}},
            },
            f"{LOOP_MESSAGE}: #/definitions/a -> #/definitions/a",
        ),
    ],
    ids=[
        "unknown-type",
        "required-string",
        "negative-length",
        "schema-not-a-string",
        "a-b-loop",
        "root-self",
        "root-self-with-type",
        "allof-self",
        "anyof-self-below-items",
        "not-self-below-properties",
    ],
)
def test_compile_schema_refuses_broken_json_schemas(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(SchemaCompileError) as info:
        compile_schema(schema)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "schema",
    [
        TREE,
        {"type": "object", "properties": {"name": {"type": "string"}, "parent": {"$ref": "#"}}, "required": ["name"]},
        {
            "$defs": {
                "list": {
                    "anyOf": [{"type": "null"}, {"type": "object", "properties": {"next": {"$ref": "#/$defs/list"}}}]
                }
            },
            "$ref": "#/$defs/list",
        },
        {"$defs": {"a": {"allOf": [{"$ref": "#/$defs/b"}]}, "b": {"type": "string"}}, "$ref": "#/$defs/a"},
        {"type": "object", "properties": {"id": {"type": "string", "pattern": "^(?<name>[a-z]+)$"}}},  # ECMA syntax
        {"type": "object", "properties": {"x": {"$ref": "other.json#/x"}}},  # another document: not followed
    ],
    ids=["tree", "parent-link", "linked-list", "ref-chain", "ecma-named-group", "external-ref"],
)
def test_recursive_and_unusual_but_valid_schemas_still_compile(schema: dict[str, Any]) -> None:
    compiled = compile_schema(schema)
    assert compiled.json_schema["type"] == "object"


def test_a_tree_compiles_strict_and_validates_deep_values() -> None:
    compiled = compile_schema(TREE)
    assert compiled.strict, compiled.reason
    value = {"name": "a", "children": [{"name": "b", "children": [{"name": "c", "children": []}]}]}
    assert compiled.validate(compiled.encode(value)) == value


# --- endpoints that cannot be reached -----------------------------------------------------------


class Invoice(BaseModel):
    number: str


def _closed_port() -> int:
    """A loopback port that was bound and then closed: nothing listens there."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def closing_server() -> Iterator[int]:
    """A loopback server that accepts each connection and closes it without reading or answering."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


def _extractor(base_url: str, tmp_path: Path, backend: str, attempts: int = 1) -> Extractor:
    return Extractor(
        base_url=base_url,
        mode="json_schema",
        max_tokens=500,
        api_key=KEY,
        retry=RetryPolicy(attempts=attempts, base_delay=0.01, max_delay=0.02),
        cache_dir=tmp_path / "cache",
        http_backend=backend,
    )


BACKENDS = ["aiohttp", "httpx"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_refused_connection_is_endpoint_unreachable(tmp_path: Path, backend: str) -> None:
    port = _closed_port()
    with pytest.raises(EndpointUnreachableError) as info:
        _extractor(f"http://127.0.0.1:{port}/v1", tmp_path, backend).extract(Invoice, "text")
    assert str(info.value) == f"cannot reach http://127.0.0.1:{port}/v1: connection refused"
    assert isinstance(info.value, APIConnectionError) and info.value.status is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_unknown_host_is_endpoint_unreachable(tmp_path: Path, backend: str) -> None:
    with pytest.raises(EndpointUnreachableError) as info:
        _extractor("http://no-such-host.invalid/v1", tmp_path, backend).extract(Invoice, "text")
    # `does not resolve` when the resolver says the name does not exist; without a resolver at
    # all (no network), getaddrinfo says why it could not ask
    assert re.fullmatch(
        r"cannot reach http://no-such-host\.invalid/v1: unknown host "
        r"\(no-such-host\.invalid (does not resolve|could not be resolved: .+)\)",
        str(info.value),
    ), str(info.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_server_that_closes_without_answering_is_not_unreachable(
    tmp_path: Path, backend: str, closing_server: int
) -> None:
    with pytest.raises(APIConnectionError) as info:
        _extractor(f"http://127.0.0.1:{closing_server}/v1", tmp_path, backend).extract(Invoice, "text")
    assert not isinstance(info.value, EndpointUnreachableError), str(info.value)
    if backend == "aiohttp":
        assert str(info.value) == f"127.0.0.1:{closing_server} closed the connection without an answer"


def test_an_unreachable_endpoint_is_retried(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    port = _closed_port()
    caplog.set_level(logging.WARNING, logger="extractor")
    with pytest.raises(EndpointUnreachableError):
        _extractor(f"http://127.0.0.1:{port}/v1", tmp_path, "aiohttp", attempts=3).extract(Invoice, "text")
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("transient failure")]
    assert len(retries) == 2, retries
    assert f"cannot reach http://127.0.0.1:{port}/v1: connection refused" in retries[0]


UNKNOWN_HOST = "http://nonexistent.invalid:1/v1"  # `.invalid` is reserved: it never resolves (RFC 6761)


@pytest.fixture
def no_such_name() -> None:
    """Skips when this machine's resolver cannot say that a name does not exist (no resolver reachable: it
    says it could not ask, which is retried as any failure to connect)."""
    try:
        socket.getaddrinfo("nonexistent.invalid", 1)
    except socket.gaierror as exc:
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            return
        pytest.skip(f"the resolver here cannot answer for nonexistent.invalid: {exc}")
    pytest.skip("nonexistent.invalid resolves here")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_host_that_does_not_resolve_is_not_retried(
    tmp_path: Path, backend: str, caplog: pytest.LogCaptureFixture, no_such_name: None
) -> None:
    caplog.set_level(logging.WARNING, logger="extractor")
    with pytest.raises(UnknownHostError) as info:
        _extractor(UNKNOWN_HOST, tmp_path, backend, attempts=5).extract(Invoice, "text")
    assert str(info.value) == f"cannot reach {UNKNOWN_HOST}: unknown host (nonexistent.invalid does not resolve)"
    assert isinstance(info.value, EndpointUnreachableError)  # a run-level fault, as any unreachable endpoint
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("transient failure")] == []


def test_a_run_against_a_host_that_does_not_resolve_stops_at_once_and_leaves_no_file(
    tmp_path: Path, no_such_name: None
) -> None:
    folder = _case_dir(tmp_path, "unknown-host")
    for i in range(2, 4):
        (folder / "in" / f"note{i}.txt").write_text(f"Invoice INV-{i}, total {i}.50 EUR", encoding="utf-8")
    command = [sys.executable, "-m", "extractor", "run", "in", "--schema", "invoice", "-o", "out.jsonl"]
    done = subprocess.run(
        [*command, "--base-url", UNKNOWN_HOST, "-v"],
        cwd=folder,
        env={**_env(tmp_path), "EXTRACTOR_API_KEY": KEY},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 2, done.stderr
    assert "transient failure" not in done.stderr
    assert "4 inputs given: 0 ok, 0 failed, 4 not started (the run stopped)" in done.stderr
    message = f"error: cannot reach {UNKNOWN_HOST}: unknown host (nonexistent.invalid does not resolve)"
    assert message in done.stderr.splitlines()
    assert sorted(p.name for p in folder.iterdir()) == ["in"]  # no OUT, no errors file
