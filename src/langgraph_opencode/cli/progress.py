"""Live progress: a table of tasks on a terminal, plain lines elsewhere.

The display is fed the run's events (``{time, kind, message, task?}``). On a
terminal, a ``rich`` table of tasks (status, round, session, tokens, cost,
elapsed) is redrawn as they come, and notable events are printed above it. On
anything else (CI, a pipe) every event is one plain line.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from langgraph_opencode.core.state import TERMINAL_STATUSES
from langgraph_opencode.report import RunReport

__all__ = ["Progress", "task_table"]

_STATUS_OF = {
    "dispatched": "working",
    "resumed": "working",
    "moved": "working",
    "rework": "working",
    "conflict": "working",
    "checked": "reviewing",
    "approved": "approved",
    "merged": "merged",
    "failed": "failed",
    "blocked": "blocked",
}
"""Which task status an event of each kind means."""

_QUIET_ON_TERMINAL = frozenset({"dispatched", "checked", "approved", "review", "server"})
"""Kinds the table shows well enough: not printed above it."""

_STYLE = {
    "merged": "green",
    "approved": "green",
    "failed": "red",
    "blocked": "red",
    "aborted": "red",
    "server_lost": "red",
    "moved": "yellow",
    "reattached": "yellow",
    "conflict": "yellow",
    "rework": "yellow",
    "permission": "magenta",
    "waiting": "magenta",
    "warning": "yellow",
    "finished": "bold",
}


@dataclass
class _Row:
    id: str
    title: str = ""
    status: str = "pending"
    round: int = 0
    session: str = ""
    tokens: int | None = None
    cost: float | None = None
    started: float | None = None
    ended: float | None = None
    elapsed: float | None = None


def _status_cell(status: str) -> str:
    style = _STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def task_table(rows: Iterable[dict[str, Any]], *, title: str | None = None) -> Table:
    """A table of tasks.

    Each row is a dict with ``id``, ``status``, ``round``, ``session``,
    ``tokens``, ``cost`` and ``elapsed`` (seconds); missing ones are shown empty.
    """
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("task", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("round", justify="right")
    table.add_column("session", no_wrap=True)
    table.add_column("tokens", justify="right")
    table.add_column("cost", justify="right")
    table.add_column("elapsed", justify="right")
    for row in rows:
        tokens, cost, elapsed = row.get("tokens"), row.get("cost"), row.get("elapsed")
        table.add_row(
            escape(str(row["id"])),
            _status_cell(str(row.get("status", ""))),
            str(row.get("round") or 0),
            escape(str(row.get("session") or "")),
            f"{tokens:,}" if tokens is not None else "",
            f"${cost:.4f}" if cost is not None else "",
            f"{elapsed:.0f}s" if elapsed is not None else "",
        )
    return table


class Progress:
    """Shows a run's progress on ``console``: a live table if ``live``, else plain lines."""

    def __init__(self, console: Console, *, live: bool | None = None) -> None:
        self.console = console
        self.live = console.is_terminal if live is None else live
        self.began = time.monotonic()
        self.events_seen = 0
        self._rows: dict[str, _Row] = {}
        self._live: Live | None = None

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> Progress:
        if self.live:
            self._live = Live(
                get_renderable=self._renderable,
                console=self.console,
                refresh_per_second=4,
                transient=False,
            )
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Stop redrawing (while a person is asked something at the terminal)."""
        live = self._live
        if live is not None:
            live.stop()
        try:
            yield
        finally:
            if live is not None:
                live.start()

    # -- feeding -----------------------------------------------------------------------

    def seed(self, tasks: Iterable[dict[str, Any]]) -> None:
        """Show a plan's tasks as pending before they start."""
        for task in tasks:
            row = self._rows.setdefault(str(task["id"]), _Row(id=str(task["id"])))
            row.title = str(task.get("title", ""))

    def on_event(self, event: dict[str, Any]) -> None:
        """Take one event of the run."""
        self.events_seen += 1
        kind, message = str(event.get("kind", "")), str(event.get("message", ""))
        task = event.get("task")
        if task:
            self._update(str(task), kind, float(event.get("time") or time.time()))
        if self.live and kind in _QUIET_ON_TERMINAL:
            return
        style = _STYLE.get(kind, "bold")
        self.console.print(
            f"[dim]{time.monotonic() - self.began:6.1f}s[/dim] "
            f"[{style}]{escape(kind):>10}[/{style}]  {escape(message)}",
            highlight=False,
            soft_wrap=not self.live,
        )

    def note(self, message: str) -> None:
        """Print a line of the command's own (not an event of the run)."""
        self.console.print(message, highlight=False)

    def finish(self, report: RunReport) -> None:
        """Fill the table with the final numbers of the report."""
        for task in report.tasks:
            row = self._rows.setdefault(task.id, _Row(id=task.id))
            row.title = task.title
            row.status = task.status
            row.round = task.rounds
            row.session = task.sessions[0] if task.sessions else row.session
            row.tokens, row.cost = task.tokens, task.cost
            row.elapsed = task.duration_s or row.elapsed

    def _update(self, task_id: str, kind: str, at: float) -> None:
        row = self._rows.setdefault(task_id, _Row(id=task_id))
        status = _STATUS_OF.get(kind)
        if kind == "dispatched" and row.started is None:
            row.started = at
        if kind == "rework":
            row.round += 1
        if status is not None:
            row.status = status
            if status in TERMINAL_STATUSES:
                row.ended = at

    # -- drawing -------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        """The table's rows."""
        now = time.time()
        rows = []
        for row in self._rows.values():
            elapsed = row.elapsed
            if elapsed is None and row.started is not None:
                elapsed = (row.ended or now) - row.started
            rows.append(
                {
                    "id": row.id,
                    "status": row.status,
                    "round": row.round,
                    "session": row.session,
                    "tokens": row.tokens,
                    "cost": row.cost,
                    "elapsed": elapsed,
                }
            )
        return rows

    def _renderable(self) -> RenderableType:
        if not self._rows:
            return Text("planning…", style="dim")
        counts: dict[str, int] = {}
        for row in self._rows.values():
            counts[row.status] = counts.get(row.status, 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        elapsed = time.monotonic() - self.began
        return task_table(self.rows(), title=f"{elapsed:.0f}s  {summary}" if summary else None)

    def print_table(self) -> None:
        """Print the table once (the final state, in plain mode)."""
        if self._rows:
            self.console.print(task_table(self.rows()))
