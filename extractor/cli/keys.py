"""The API key of a command: from the environment only, never an argument.

A key given as an argument would be seen by every user of the machine (`ps`, `/proc/PID/cmdline`)
and kept in the shell's history, so there is no `--api-key`. The key comes, as for the library, from
`$EXTRACTOR_API_KEY` (sent to any endpoint), else the provider's own variable (`$OPENROUTER_API_KEY`,
sent only to openrouter.ai; `$OPENAI_API_KEY`, only to api.openai.com); `--api-key-env NAME` names
another variable to read it from (a key kept as `$MISTRAL_API_KEY`, say), sent to the `--base-url`
given. Without a key for a remote endpoint a command stops before connecting, saying which variable
to set.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

from ..client.extractor import Extractor
from ..client.transport import provider_key_variable
from ..errors import ConfigurationError

__all__ = ["KEY_HELP", "api_key_env_option", "key_from_env", "missing_key_message", "require_key"]

F = TypeVar("F", bound=Callable[..., Any])

#: where a command's key comes from, for `--help`
KEY_HELP = (
    "The API key comes from the environment: $OPENROUTER_API_KEY for the default endpoint (openrouter.ai; "
    "$OPENAI_API_KEY for api.openai.com), $EXTRACTOR_API_KEY for any endpoint, or the variable named by "
    "--api-key-env. Local servers need none."
)


def api_key_env_option(command: F) -> F:
    """The `--api-key-env NAME` option (its value: the variable's name, never the key)."""
    return click.option(
        "--api-key-env",
        "api_key_env",
        metavar="NAME",
        default=None,
        help="Read the API key from the environment variable NAME, sent to the endpoint used [default: "
        "$EXTRACTOR_API_KEY, else $OPENROUTER_API_KEY for openrouter.ai, $OPENAI_API_KEY for api.openai.com].",
    )(command)


def key_from_env(api_key_env: str | None) -> str | None:
    """The key in the variable `api_key_env` names (None when no name is given); a `ConfigurationError` naming
    the variable (never showing a value) when it is not set or empty."""
    if api_key_env is None:
        return None
    key = os.environ.get(api_key_env, "").strip()
    if not key:
        raise ConfigurationError(f"--api-key-env {api_key_env}: the environment variable {api_key_env} is not set")
    return key


def missing_key_message(base_url: str) -> str:
    """What to do when the endpoint at `base_url` needs a key and none was found, said the command line's way."""
    host = urlsplit(base_url).hostname or base_url
    variable = provider_key_variable(base_url)
    if variable is not None:
        return (
            f"no API key for {host}: set {variable} (or EXTRACTOR_API_KEY, sent to any endpoint), "
            "or name the variable that holds it with --api-key-env NAME"
        )
    return (
        f"no API key for {host}: set EXTRACTOR_API_KEY, or name the variable that holds it with --api-key-env NAME "
        "(OPENROUTER_API_KEY is sent only to openrouter.ai, OPENAI_API_KEY only to api.openai.com)"
    )


def require_key(extractor: Extractor) -> None:
    """Raise `ConfigurationError` (what to set, the command line's way) when the endpoint needs a key and
    `extractor` has none."""
    try:
        extractor.check_key()
    except ConfigurationError:
        raise ConfigurationError(missing_key_message(extractor.base_url)) from None
