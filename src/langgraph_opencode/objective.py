"""What a run is asked to achieve: the one check of an objective.

The API (``orchestrate``), the CLI (``run``, also ``--objective-file``) and the
graph's ``start`` node all take an objective through :func:`check_objective`,
so each refuses the same objectives with the same words.
"""

from __future__ import annotations

from langgraph_opencode.errors import ConfigurationError

__all__ = ["MAX_OBJECTIVE_CHARS", "check_objective"]

MAX_OBJECTIVE_CHARS = 100_000
"""Objectives longer than this are refused: they would not fit a prompt."""


def check_objective(objective: object, *, source: str = "the objective") -> str:
    """Return the objective if a run can take it.

    Args:
        objective: What the run should achieve.
        source: Where it came from, as the error names it (``the objective
            file notes.md``).

    Raises:
        ConfigurationError: It is not a string, is empty, or is too long.
    """
    if not isinstance(objective, str):
        raise ConfigurationError(
            f"{source} must be a string (what the run should achieve), "
            f"got {type(objective).__name__}"
        )
    if not objective.strip():
        raise ConfigurationError(f"{source} is empty: say what the run should achieve")
    if len(objective) > MAX_OBJECTIVE_CHARS:
        raise ConfigurationError(
            f"{source} is {len(objective):,} characters long; the limit is "
            f"{MAX_OBJECTIVE_CHARS:,}. Put long material in a file of the repository and "
            "refer to it."
        )
    return objective
