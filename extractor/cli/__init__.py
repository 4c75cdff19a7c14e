"""The `extractor` command line: `run` (a batch to JSONL), `schema`, `validate`, `eval`, `review` (an HTML page),
`batch`, `cache`."""

from __future__ import annotations

import sys

import click

from ..errors import ExtractorError
from . import batch_api, cache_cmd, eval_cmd, review_cmd, run, schema_cmd, validate  # noqa: F401 - each registers its command on `cli`
from ._app import EXIT_USAGE, cli

__all__ = ["cli", "console", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; the exit status is returned (0 ok, 1 some inputs failed, 2 bad usage)."""
    try:
        result = cli.main(args=argv, prog_name="extractor", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except ExtractorError as exc:  # configuration found wrong before anything was processed
        click.echo(f"error: {exc}", err=True)
        return EXIT_USAGE
    return int(result) if isinstance(result, int) else 0


def console() -> None:
    """The `extractor` executable."""
    sys.exit(main())


if __name__ == "__main__":
    console()
