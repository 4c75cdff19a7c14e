"""The options are documented once, where `help()`, the API reference and the guides read them: every
parameter of `Extractor` in its docstring's Args, each option only a call takes in `CallOptions`, each batch
option in `ManyOptions`. (The code blocks of README.md and docs/ run as tests of their own: conftest.py.)"""

from __future__ import annotations

import inspect
import pydoc
import re

import pytest

from extractor import CallOptions, Extractor
from extractor.client.settings import BATCH_OPTIONS, ManyOptions


def documented(obj: object, section: str) -> list[str]:
    """The names a Google-style section (`Args:`, `Attributes:`) of `obj`'s docstring documents, in order."""
    doc = inspect.cleandoc(obj.__doc__ or "")
    match = re.search(rf"^{section}:\n((?:(?: {{4}}.*)?\n?)+)", doc, re.MULTILINE)
    assert match, f"{obj!r} has no {section} section"
    return re.findall(r"^ {4}(\w+): \S", match.group(1), re.MULTILINE)


def test_every_parameter_of_the_extractor_is_documented_once_in_order() -> None:
    parameters = [p for p in inspect.signature(Extractor.__init__).parameters if p != "self"]
    assert documented(Extractor, "Args") == parameters


def test_every_option_of_a_call_is_documented_once() -> None:
    parameters = set(inspect.signature(Extractor.__init__).parameters)
    call_only = [k for k in CallOptions.__annotations__ if k not in parameters]
    assert documented(CallOptions, "Attributes") == call_only == ["merge", "context", "examples"]
    many = documented(ManyOptions, "Attributes")
    assert set(many) == BATCH_OPTIONS and len(many) == len(BATCH_OPTIONS)


def test_help_shows_every_option_of_the_extractor() -> None:
    text = pydoc.render_doc(Extractor, renderer=pydoc.plaintext)  # what help(Extractor) prints
    shown = re.findall(r"^ \| {6}(\w+): \S", text, re.MULTILINE)  # the Args lines, in the class's text
    assert shown[: len(documented(Extractor, "Args"))] == documented(Extractor, "Args")


PUBLIC = ["extractor", "extractor.sources", "extractor.documents", "extractor.testing", "extractor.ray"]


def test_every_public_name_has_a_docstring_the_reference_shows() -> None:
    griffe = pytest.importorskip("griffe", reason="griffe comes with the docs tools (pip install -e '.[docs]')")
    package = griffe.load("extractor", resolve_aliases=True, resolve_external=False)
    missing = []
    for name in PUBLIC:
        module = package if name == "extractor" else package[name.removeprefix("extractor.")]
        assert module.exports, name
        for export in module.exports:
            found = module[export]
            if not (found.final_target if found.is_alias else found).docstring:
                missing.append(f"{name}.{export}")
    assert missing == []
