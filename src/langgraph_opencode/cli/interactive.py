"""Answering a run's pauses: at the terminal, unattended (``--yes``), or from ``--answer``.

A pause is an interrupt value ``{"type": "plan_approval", "plan": ..., "problems": [...]}``
or ``{"type": "permission", "requests": [...]}`` (see ``nodes/approval.py`` and
``nodes/human.py`` for the answers they accept).
"""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from langgraph_opencode.cli.progress import Progress
from langgraph_opencode.errors import ConfigurationError
from langgraph_opencode.nodes.approval import plan_decision
from langgraph_opencode.nodes.human import permission_answer

__all__ = [
    "LeftPaused",
    "TerminalAnswers",
    "check_answer",
    "describe_pause",
    "parse_answer",
    "plan_table",
    "unattended_answer",
]


class LeftPaused(Exception):
    """The person chose to leave the run paused and answer later."""


def parse_answer(text: str) -> Any:
    """``--answer``: JSON if it parses, else the word itself (``approve``, ``once``...)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text.strip()


def check_answer(value: dict[str, Any] | None, answer: Any) -> None:
    """Refuse an ``--answer`` the pause could not use, before the run is resumed.

    Raises:
        ConfigurationError: Saying what the pause takes.
    """
    kind = (value or {}).get("type")
    try:
        if kind == "plan_approval":
            plan_decision(answer)
        elif kind == "permission":
            for request in (value or {}).get("requests") or []:
                permission_answer(answer, str(request.get("id")))
    except ConfigurationError as exc:
        raise ConfigurationError(f"unusable --answer: {exc}") from None


def unattended_answer(value: dict[str, Any], unmatched: str) -> Any:
    """``--yes``: approve the plan; decide permission requests by ``unmatched``."""
    if value.get("type") == "plan_approval":
        return "approve"
    return "once" if unmatched == "allow" else "reject"


def plan_table(plan: dict[str, Any]) -> Table:
    """A plan's tasks as a table."""
    table = Table(title=escape(str(plan.get("summary") or "")) or None, title_justify="left")
    table.add_column("task", no_wrap=True)
    table.add_column("title")
    table.add_column("after")
    table.add_column("files")
    table.add_column("checks")
    for task in plan.get("tasks", []):
        table.add_row(
            escape(str(task.get("id", ""))),
            escape(str(task.get("title", ""))),
            escape(", ".join(task.get("depends_on") or [])),
            escape(", ".join(task.get("files") or [])),
            escape("\n".join(task.get("checks") or [])),
        )
    return table


def _request_line(request: dict[str, Any]) -> str:
    patterns = " ".join(request.get("patterns") or [])
    line = f"{request.get('task') or 'planner'}: {request.get('permission')} {patterns}".strip()
    return f"{line} (a subagent asks)" if request.get("subagent") else line


def describe_pause(value: dict[str, Any] | None, resume: list[str]) -> list[str]:
    """What the run waits for, and the commands that answer it (plain text lines)."""
    command = shlex.join(resume)
    if value is None:
        return [f"Continue it with:  {command}"]
    refused = [f"The last answer could not be used: {value['error']}"] if value.get("error") else []
    if value.get("type") == "plan_approval":
        tasks = value.get("plan", {}).get("tasks", [])
        lines = [*refused, f"The plan ({len(tasks)} tasks) waits for approval:"]
        lines += [f"  - {t.get('id')}: {t.get('title', '')}" for t in tasks]
        lines += [f"  problem: {p}" for p in value.get("problems") or []]
        reject = json.dumps({"action": "reject", "feedback": "..."})
        lines += [
            "Approve it:  " + shlex.join([*resume, "--answer", "approve"]),
            "Reject it:   " + shlex.join([*resume, "--answer", reject]),
            "Or see it with `langgraph-opencode status` and answer interactively: " + command,
        ]
        return lines
    requests = value.get("requests") or []
    lines = [*refused, f"{len(requests)} permission request(s) wait for an answer:"]
    lines += [f"  - {r.get('id')}: {_request_line(r)}" for r in requests]
    per_request = json.dumps({str(r.get("id")): "once" for r in requests})
    lines += [
        "Answer all:  " + shlex.join([*resume, "--answer", "once"]) + "   (or always, reject)",
        "Per request: " + shlex.join([*resume, "--answer", per_request]),
    ]
    return lines


async def _read_line(console: Console, prompt: str) -> str:
    """Read a line from stdin without blocking the event loop (EOF: leave paused)."""
    console.print(prompt, end="", markup=True, highlight=False)
    console.file.flush()
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    fd = sys.stdin.fileno()

    def readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
    line = sys.stdin.readline()
    if not line:
        raise LeftPaused
    return line.strip()


class TerminalAnswers:
    """Asks a person at the terminal (the ``on_interrupt`` of an interactive run)."""

    def __init__(self, console: Console, progress: Progress) -> None:
        self.console = console
        self.progress = progress

    async def __call__(self, value: dict[str, Any]) -> Any:
        """Show the pause and return the person's answer."""
        with self.progress.paused():
            if value.get("type") == "plan_approval":
                return await self._plan(value)
            if value.get("type") == "permission":
                return await self._permissions(value)
            self.console.print(f"The run waits for: {escape(json.dumps(value))}")
            return parse_answer(await self._ask("Answer (JSON or a word; empty: pause)"))

    async def _ask(self, prompt: str) -> str:
        return await _read_line(self.console, f"[bold]{escape(prompt)}[/bold] ")

    async def _plan(self, value: dict[str, Any]) -> Any:
        self.console.print()
        self.console.print(plan_table(value.get("plan") or {}))
        if value.get("error"):
            self.console.print(
                f"[red]the last answer could not be used:[/red] {escape(value['error'])}"
            )
        for problem in value.get("problems") or []:
            self.console.print(f"[red]problem:[/red] {escape(str(problem))}")
        while True:
            choice = (await self._ask("[a]pprove, [r]eject with feedback, or [p]ause?")).lower()
            if choice in ("a", "approve", "y", "yes"):
                return "approve"
            if choice in ("r", "reject"):
                feedback = await self._ask("What should the planner change?")
                return {"action": "reject", "feedback": feedback or "make a better plan"}
            if choice in ("p", "pause", "q", "quit"):
                raise LeftPaused
            self.console.print("Please answer a, r or p.")

    async def _permissions(self, value: dict[str, Any]) -> dict[str, Any]:
        answers: dict[str, Any] = {}
        for request in value.get("requests") or []:
            self.console.print()
            self.console.print(
                f"[magenta]permission asked[/magenta] {escape(_request_line(request))}"
            )
            metadata = request.get("metadata") or {}
            if metadata:
                self.console.print(f"[dim]{escape(json.dumps(metadata)[:500])}[/dim]")
            while True:
                choice = (await self._ask("allow [o]nce, [a]lways, [r]eject, or [p]ause?")).lower()
                if choice in ("o", "once", "y", "yes"):
                    answers[str(request["id"])] = "once"
                elif choice in ("a", "always"):
                    answers[str(request["id"])] = "always"
                elif choice in ("r", "reject", "n", "no"):
                    message = await self._ask("Why (optional, sent to the agent)?")
                    answers[str(request["id"])] = (
                        {"reply": "reject", "message": message} if message else "reject"
                    )
                elif choice in ("p", "pause", "q", "quit"):
                    raise LeftPaused
                else:
                    self.console.print("Please answer o, a, r or p.")
                    continue
                break
        return answers
