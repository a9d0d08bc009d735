"""A run's log of notable events: ``<run dir>/events.jsonl``, kept out of the checkpoints.

Each node may return ``"events": [...]`` in its update (records made by
``nodes._common.event``: ``{"time", "kind", "message", "task"?, ...}``, also
streamed live as LangGraph ``custom`` events). The graph's node wrapper
(``graph/_steps.py``) takes them out of the update and appends them here, one
JSON object a line, so the checkpointed state does not carry a growing list.

The file is in the run's directory (``GitRun.run_dir``:
``<git common dir>/langgraph-opencode/runs/<run_id>/``), mode 0600. A record is
written when its node returns, before LangGraph saves the step: a step that is
run again (after a crash, or a resume that re-enters an interrupted node)
appends its events again, so the log is complete but may repeat a step's events.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from langgraph_opencode.tools.git import Repo

__all__ = ["EVENTS_FILE", "RunLog", "read_events", "run_log"]

EVENTS_FILE = "events.jsonl"
"""The log's name in the run's directory."""


class RunLog:
    """The event log of the run whose directory is ``run_dir``."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / EVENTS_FILE

    def __repr__(self) -> str:
        return f"RunLog({str(self.path)!r})"

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Append ``records`` (one write, so lines of concurrent appends do not mix)."""
        text = "".join(_line(record) for record in records)
        if not text:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                text = "\n" + text  # after a line a crash cut off: keep the new ones whole
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)

    async def aappend(self, records: Iterable[dict[str, Any]]) -> None:
        """:meth:`append` in a thread (it writes a file)."""
        await asyncio.to_thread(self.append, list(records))

    def read(self, *, last: int | None = None) -> list[dict[str, Any]]:
        """The events logged so far, oldest first (the ``last`` ones only, if given).

        A line that is not a JSON object (a write cut off by a crash) is skipped.
        A run with no log yet has no events.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        events = list(_records(text.splitlines()))
        return events[-last:] if last is not None else events


def read_events(run_dir: Path, *, last: int | None = None) -> list[dict[str, Any]]:
    """The events of the run whose directory is ``run_dir`` (see :meth:`RunLog.read`)."""
    return RunLog(run_dir).read(last=last)


_RUN_DIRS: dict[tuple[str, str], Path] = {}


async def run_log(repo: str, run_id: str) -> RunLog:
    """The log of run ``run_id`` of the repository at ``repo`` (its directory is looked up once)."""
    key = (repo, run_id)
    run_dir = _RUN_DIRS.get(key)
    if run_dir is None:
        run_dir = (await Repo.open(repo)).run(run_id).run_dir
        _RUN_DIRS[key] = run_dir
    return RunLog(run_dir)


def _line(record: dict[str, Any]) -> str:
    # As the checkpointer kept them: any value that is not JSON is written as its str().
    # json.dumps escapes control characters, so a line is one line.
    return json.dumps(record, ensure_ascii=False, default=str) + "\n"


def _records(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record
