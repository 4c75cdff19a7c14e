"""Modes: how a request asks for structured output and how its answer is read back.

Each module here defines one `Mode` subclass; it registers itself, so adding a mode is one file.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Collection

from ...errors import ConfigurationError
from .base import Message, Mode, ModeAnswer, registered_modes

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Message", "Mode", "ModeAnswer", "choose_mode", "get_mode", "mode_names", "next_mode"]


def mode_names() -> list[str]:
    """The modes there are, in order of preference."""
    return list(registered_modes())


def get_mode(name: str) -> Mode:
    """The mode called `name`."""
    modes = registered_modes()
    if name not in modes:
        raise ConfigurationError(f"unknown mode {name!r}; choose one of: auto, {', '.join(modes)}")
    return modes[name]()


def choose_mode(supported_parameters: Collection[str] | None) -> Mode:
    """The preferred mode a model supports; with nothing known about the model, the first."""
    modes = list(registered_modes().values())
    if supported_parameters is None:
        return modes[0]()
    for cls in modes:
        if cls.needs is None or cls.needs in supported_parameters:
            return cls()
    return modes[-1]()


def next_mode(mode: Mode) -> Mode | None:
    """The mode to fall back to after `mode` was rejected, if any."""
    later = [cls for cls in registered_modes().values() if cls.rank > mode.rank]
    return later[0]() if later else None
