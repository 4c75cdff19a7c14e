"""Reading an output of `extractor run` back: OUT's records, the errors file's failures, and any line
that could not be read (named, never fatal)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ConfigurationError

__all__ = ["Loaded", "load_output", "read_lines"]


@dataclass
class Loaded:
    """What OUT and the errors file hold: records (`{"id", "source", "data", "meta"}`), failures
    (`{"id", "source", "error", "meta"}`), and one note per line that could not be read."""

    records: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_lines(path: Path, problems: list[str]) -> list[dict[str, Any]]:
    """The JSON objects with an `id` in a JSONL file, in order; every other non-blank line is named in
    `problems`. A file that cannot be opened raises `ConfigurationError`."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read: {exc.strerror or exc}") from None
    out: list[dict[str, Any]] = []
    with handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip(b" \t\r\n\x00"):
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                problems.append(f"{where}: not valid UTF-8")
                continue
            except ValueError as exc:
                problems.append(f"{where}: not JSON ({exc})")
                continue
            except RecursionError:
                problems.append(f"{where}: not JSON this reader accepts (nested too deeply)")
                continue
            if not isinstance(record, dict) or not isinstance(record.get("id"), str | int | float):
                problems.append(f'{where}: not a record (a JSON object with an "id")')
                continue
            record["id"] = str(record["id"])
            out.append(record)
    return out


def load_output(out: Path, errors: Path | None) -> Loaded:
    """OUT's records and the failures of `errors` (skipped when None). A failure whose id OUT also holds
    (a run killed before it tidied up) is left out, with a note: the record is what counts."""
    loaded = Loaded()
    loaded.records = read_lines(out, loaded.problems)
    if errors is None:
        return loaded
    done = {record["id"] for record in loaded.records}
    for failure in read_lines(errors, loaded.problems):
        if failure["id"] in done:
            loaded.problems.append(f"{errors}: {failure['id']} failed once but is in OUT too: its record is shown")
        else:
            loaded.failures.append(failure)
    return loaded
