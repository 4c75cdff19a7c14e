"""`extractor schema`: the compiled request schema on stdout, name and strictness on stderr (real subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from extractor import compile_schema
from extractor.bundled import bundled_schema, bundled_schema_names


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "extractor", "schema", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_bundled_schema_prints_the_compiled_request_schema() -> None:
    proc = run("invoice")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == compile_schema(bundled_schema("invoice")).json_schema
    assert proc.stdout.startswith('{\n  "type": "object"')  # indented
    assert proc.stderr == "Invoice (bundled:invoice, openai): strict: yes\n"


def test_gemini_dialect_and_original() -> None:
    gemini = run("receipt", "--dialect", "gemini")
    assert gemini.returncode == 0, gemini.stderr
    compiled = compile_schema(bundled_schema("receipt"), dialect="gemini")
    assert json.loads(gemini.stdout) == compiled.json_schema
    assert "propertyOrdering" in gemini.stdout
    assert json.loads(gemini.stdout) != compile_schema(bundled_schema("receipt")).json_schema
    assert gemini.stderr.splitlines()[0] == "Receipt (bundled:receipt, gemini): strict: yes"

    original = run("receipt", "--original")
    assert original.returncode == 0, original.stderr
    assert json.loads(original.stdout) == bundled_schema("receipt")


def test_a_schema_file_that_is_not_strict_says_why_and_lists_its_notes(tmp_path: Path) -> None:
    enum = [f"v{i}" for i in range(1200)]  # the OpenAI subset allows at most 1000 enum values in all
    schema = {
        "title": "Big",
        "type": "object",
        "properties": {"kind": {"enum": enum}, "code": {"type": "string", "minLength": 3}},
        "required": ["kind"],
    }
    path = tmp_path / "big.schema.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    proc = run(str(path))
    assert proc.returncode == 0, proc.stderr
    compiled = compile_schema(schema)
    assert not compiled.strict
    assert json.loads(proc.stdout) == compiled.json_schema
    lines = proc.stderr.splitlines()
    assert lines[0] == f"Big ({path}, openai): strict: no ({compiled.reason})"
    assert "1200 enum values" in lines[0]
    assert lines[1:] == [f"note: {note}" for note in dict.fromkeys(compiled.notes)]


def test_a_pydantic_model_by_import_path(tmp_path: Path) -> None:
    (tmp_path / "mymodels.py").write_text(
        "from pydantic import BaseModel\n\n\nclass Contact(BaseModel):\n    name: str\n    email: str | None = None\n",
        encoding="utf-8",
    )
    proc = run("mymodels:Contact", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    assert schema["required"] == ["name", "email"]
    assert schema["additionalProperties"] is False
    assert proc.stderr == "Contact (mymodels:Contact, openai): strict: yes\n"
    original = json.loads(run("mymodels:Contact", "--original", cwd=tmp_path).stdout)
    assert original["required"] == ["name"]  # pydantic's own schema: email has a default


def test_list_names_every_bundled_schema() -> None:
    proc = run("--list")
    assert proc.returncode == 0, proc.stderr
    listed = dict(line.split(None, 1) for line in proc.stdout.splitlines())
    assert list(listed) == bundled_schema_names()
    assert len(listed) == 7
    assert listed["invoice"] == "A commercial invoice or bill."


def test_bad_usage_exits_2_with_a_message(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    cases = [
        (("no_such_schema",), "error: unknown schema 'no_such_schema': give a JSON Schema file"),
        (("missing/file.json",), "error: schema file missing/file.json not found"),
        ((), "error: give a SCHEMA"),
        (("invoice", "--dialect", "claude"), "Invalid value for '--dialect'"),
        ((str(broken),), f"error: schema file {broken}: not readable JSON"),
    ]
    # started together: each process spends most of its time importing
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "extractor", "schema", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args, _ in cases
    ]
    for proc, (args, message) in zip(procs, cases, strict=True):
        out, err = proc.communicate(timeout=120)
        assert (args, proc.returncode, out) == (args, 2, "")
        assert message in err, (args, err)
