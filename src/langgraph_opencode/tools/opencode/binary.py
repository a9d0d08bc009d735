"""Finding the ``opencode`` executable, and how to install it when it is missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from langgraph_opencode.errors import BinaryNotFoundError

__all__ = ["BINARY_ENV_VAR", "OPENCODE_VERSION", "find_opencode_binary"]

BINARY_ENV_VAR = "LANGGRAPH_OPENCODE_BINARY"
"""Environment variable naming the ``opencode`` executable to run."""

OPENCODE_VERSION = "1.18.33"
"""The ``opencode-ai`` npm version this package is tested with."""

_INSTALL_HINT = (
    f"Install the pinned server with `npm ci` in the langgraph-opencode checkout "
    f"(its package.json pins opencode-ai@{OPENCODE_VERSION}) or "
    f"`npm install opencode-ai@{OPENCODE_VERSION}` in your project, "
    f"or point the {BINARY_ENV_VAR} environment variable (or binary=...) "
    f"at an `opencode` executable."
)


def find_opencode_binary(binary: str | os.PathLike[str] | None = None) -> Path:
    """Find the ``opencode`` executable to run.

    The first of these wins:

    1. ``binary``, if given (a path, or a bare name looked up on ``PATH``);
    2. the ``LANGGRAPH_OPENCODE_BINARY`` environment variable, if set;
    3. ``node_modules/.bin/opencode`` in the current directory or one of its
       parents, then in the directory of this package or one of its parents
       (where ``npm ci`` in a checkout puts the pinned version);
    4. ``opencode`` on ``PATH``.

    An explicit ``binary`` or environment variable that does not name an
    executable is an error; the search does not fall through to later steps.

    Args:
        binary: The executable to use, overriding the search.

    Returns:
        The absolute path of the executable.

    Raises:
        BinaryNotFoundError: Nothing usable was found; the message says how to
            install the server.
    """
    if binary is not None:
        return _explicit_binary(os.fspath(binary), "binary=")
    from_env = os.environ.get(BINARY_ENV_VAR)
    if from_env:
        return _explicit_binary(from_env, f"{BINARY_ENV_VAR}=")
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for directory in (start, *start.parents):
            candidate = directory / "node_modules" / ".bin" / "opencode"
            if _is_executable(candidate):
                return candidate.absolute()
    on_path = shutil.which("opencode")
    if on_path:
        return Path(on_path).absolute()
    raise BinaryNotFoundError(
        "No `opencode` executable found: looked at "
        f"{BINARY_ENV_VAR} (unset), node_modules/.bin/opencode in the current directory, "
        "this package's directory and their parents, and PATH. " + _INSTALL_HINT
    )


def _explicit_binary(value: str, source: str) -> Path:
    path: Path | None
    if os.sep in value or (os.altsep and os.altsep in value):
        path = Path(value).expanduser()
    else:
        found = shutil.which(value)
        path = Path(found) if found else None
    if path is None or not _is_executable(path):
        raise BinaryNotFoundError(f"{source}{value!r} is not an executable file. " + _INSTALL_HINT)
    return path.absolute()


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
