"""Reading a `multipart/form-data` body: its fields, each with its bytes exactly as sent."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message

__all__ = ["FormField", "parse_form"]


@dataclass(frozen=True)
class FormField:
    """One part of a form: its `name`, its `filename` (None for a plain field) and its bytes."""

    name: str
    filename: str | None
    data: bytes


def _header_params(value: str, header: str) -> Message:
    message = Message()
    message[header] = value
    return message


def _part(raw: bytes) -> FormField | None:
    head, separator, data = raw.partition(b"\r\n\r\n")
    if not separator:
        return None
    disposition = ""
    for line in head.decode("utf-8", "replace").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-disposition":
            disposition = value.strip()
    params = _header_params(disposition, "content-disposition")
    field_name = params.get_param("name", header="content-disposition")
    filename = params.get_filename()
    if not isinstance(field_name, str):
        return None
    return FormField(field_name, filename, data)


def parse_form(content_type: str, body: bytes) -> list[FormField] | None:
    """The fields of a `multipart/form-data` body, in order; None when it is not one (or has no boundary)."""
    params = _header_params(content_type, "content-type")
    boundary = params.get_param("boundary")
    if params.get_content_type() != "multipart/form-data" or not isinstance(boundary, str) or not boundary:
        return None
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    fields: list[FormField] = []
    for chunk in (b"\r\n" + body).split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        _, newline, raw = chunk.partition(b"\r\n")  # the rest of the delimiter line (transport padding)
        field = _part(raw) if newline else None
        if field is not None:
            fields.append(field)
    return fields
