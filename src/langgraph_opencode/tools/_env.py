"""Settings read from the environment (limits a user may raise without a flag)."""

from __future__ import annotations

import os

from langgraph_opencode.errors import ConfigurationError

__all__ = ["seconds_from_env"]


def seconds_from_env(name: str, default: float) -> float:
    """``$name`` as a number of seconds, or ``default`` when it is unset or empty.

    Raises:
        ConfigurationError: It is set but not a finite number greater than 0.
    """
    value = os.environ.get(name, "").strip()
    try:
        seconds = float(value) if value else default
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise ConfigurationError(
            f"${name} must be a number of seconds greater than 0, got {value!r}"
        )
    return seconds
