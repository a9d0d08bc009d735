"""``--events FILE``: a run's progress events as JSON lines, for scripts.

One JSON object per line, each an event exactly as the API's ``on_event``
gets it (``{"time", "kind", "message", "task"?, ...}``), written and flushed
as it happens, so ``tail -f FILE`` follows the run. ``-`` writes to stderr.
A file is overwritten: it holds one command's events.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from langgraph_opencode.errors import ConfigurationError

__all__ = ["STDERR", "EventSink", "event_sink"]

STDERR = "-"
"""The ``--events`` value that means stderr."""

EventSink = Callable[[dict[str, Any]], None]


@contextlib.contextmanager
def event_sink(target: str | None) -> Iterator[EventSink | None]:
    """A writer of events to ``target`` (a path, or ``-`` for stderr), or ``None`` without one.

    Raises:
        ConfigurationError: The file cannot be opened for writing.
    """
    if target is None:
        yield None
        return
    if target == STDERR:
        yield _writer(sys.stderr)
        return
    try:
        stream = Path(target).open("w", encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise ConfigurationError(
            f"--events {target}: cannot write there ({exc.strerror or exc})"
        ) from exc
    with stream:
        yield _writer(stream)


def _writer(stream: TextIO) -> EventSink:
    def write(event: dict[str, Any]) -> None:
        stream.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
        stream.flush()

    return write
