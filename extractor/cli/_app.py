"""The `extractor` command group; each subcommand lives in a module of its own."""

from __future__ import annotations

import click

from .._version import __version__

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "cli"]

#: every input succeeded / some inputs failed (or were left out) / bad usage or configuration
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="extractor")
def cli() -> None:
    """Typed, validated records from documents with large language models."""
