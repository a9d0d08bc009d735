"""An offline demonstration on the user's own machine, with no provider key.

It makes a small sample repository in a temporary directory, starts the
scripted model server and a real embedded ``opencode serve`` wired to it, then
runs two worker sessions in parallel (they really write files and run a
command) and a read-only reviewer session that returns a structured verdict.
Progress is followed through the server's event stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from langgraph_opencode.testing import (
    Conversation,
    ScriptedModelServer,
    Step,
    StructuredOutput,
    Text,
    ToolCall,
    git,
    make_repo,
)
from langgraph_opencode.tools.opencode import (
    REVIEWER_AGENT,
    WORKER_AGENT,
    Event,
    EventHub,
    OpenCodeClient,
    OpenCodeServer,
    PromptOutcome,
    build_config,
    send_and_wait,
)

__all__ = ["DemoResult", "run_demo"]

VERDICT_SCHEMA = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean"},
        "findings": {"type": "array", "items": {"type": "string"}},
        "feedback": {"type": "string"},
    },
    "required": ["approved", "findings", "feedback"],
}

GREET = '''def greet(name: str) -> str:
    """Return a friendly greeting."""
    return f"Hello, {name}!"
'''

FAREWELL = '''def farewell(name: str) -> str:
    """Return a friendly goodbye."""
    return f"Goodbye, {name}!"
'''


def _script() -> tuple[Conversation | Step, ...]:
    return (
        Conversation(
            ToolCall.write("greet.py", GREET),
            Step(
                ToolCall.bash(
                    "python3 -c \"import greet; print(greet.greet('demo'))\"",
                    description="try greet",
                ),
                after_tool="write",
            ),
            Step(Text("Added greet.py; it prints 'Hello, demo!'."), after_tool="bash"),
            user="greet.py",
            name="worker: greet",
        ),
        Conversation(
            ToolCall.write("farewell.py", FAREWELL),
            Step(Text("Added farewell.py."), after_tool="write"),
            user="farewell.py",
            name="worker: farewell",
        ),
        Step(
            StructuredOutput(
                {
                    "approved": True,
                    "findings": ["greet.py and farewell.py are small, typed and documented"],
                    "feedback": "Looks good.",
                }
            ),
            tool="StructuredOutput",
            name="reviewer: verdict",
        ),
    )


@dataclass
class _Row:
    title: str
    status: str = "starting"
    session: str = ""
    events: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.monotonic)
    elapsed: float = 0.0


@dataclass
class DemoResult:
    """What the demo did, for the caller (and its tests) to check.

    Attributes:
        repo: The sample repository.
        outcomes: Each session's outcome, by title.
        files: The files the workers created, relative to ``repo``.
        server_start_seconds: How long ``opencode serve`` took to become healthy.
    """

    repo: Path
    outcomes: dict[str, PromptOutcome]
    files: list[str]
    server_start_seconds: float


def _table(rows: Sequence[_Row]) -> Table:
    table = Table(title="OpenCode sessions", expand=False)
    for column in ("session", "status", "events", "tokens", "elapsed"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            f"{row.title} [dim]{row.session[-8:]}[/dim]",
            row.status,
            str(row.events),
            str(row.tokens),
            f"{row.elapsed:.1f}s",
        )
    return table


async def run_demo(console: Console | None = None, *, workdir: Path | None = None) -> DemoResult:
    """Run the offline demo and return what happened.

    Args:
        console: Where to show progress (a live table on a terminal, plain
            lines otherwise).
        workdir: Where to make the sample repository; a temporary directory
            (kept, so the result can be inspected) by default.
    """
    console = console or Console()
    root = workdir or Path(tempfile.mkdtemp(prefix="langgraph-opencode-demo-"))
    repo = make_repo(
        root / "sample-project",
        {"README.md": "# sample project\n\nA tiny repository for the demo.\n"},
    )
    console.print(f"[bold]Sample repository:[/bold] {repo}")
    with ScriptedModelServer(*_script()) as model:
        config = build_config(extra=model.provider_config())
        started = time.monotonic()
        async with OpenCodeServer(isolated=True, config=config) as server:
            start_seconds = time.monotonic() - started
            console.print(
                f"[bold]opencode serve[/bold] healthy at {server.url} after {start_seconds:.2f}s "
                f"(scripted model at {model.base_url})"
            )
            async with (
                OpenCodeClient(server.url, password=server.password) as client,
                EventHub(client) as hub,
            ):
                await hub.wait_connected()
                outcomes = await _run_sessions(console, client, hub, repo)
        if all(outcome.ok for outcome in outcomes.values()):
            model.assert_complete()
    files = sorted(
        line[3:]
        for line in git(repo, "status", "--porcelain").splitlines()
        if line.startswith("??")
    )
    console.print(f"[bold]Files written by the workers:[/bold] {', '.join(files)}")
    verdict = outcomes["reviewer"].structured
    console.print(f"[bold]Reviewer verdict:[/bold] {verdict}")
    return DemoResult(repo=repo, outcomes=outcomes, files=files, server_start_seconds=start_seconds)


async def _run_sessions(
    console: Console, client: OpenCodeClient, hub: EventHub, repo: Path
) -> dict[str, PromptOutcome]:
    rows = {name: _Row(name) for name in ("greet", "farewell", "reviewer")}
    live = Live(_table(list(rows.values())), console=console, auto_refresh=False)

    def follow(name: str) -> Callable[[Event], None]:
        def on_event(event: Event) -> None:
            row = rows[name]
            row.events += 1
            row.elapsed = time.monotonic() - row.started
            if event.type == "session.status":
                row.status = (event.properties.get("status") or {}).get("type", row.status)
            elif event.type == "message.part.updated":
                part = event.properties.get("part") or {}
                if part.get("type") == "tool":
                    state = (part.get("state") or {}).get("status")
                    row.status = f"tool {part.get('tool')}: {state}"
            if console.is_terminal:
                live.update(_table(list(rows.values())), refresh=True)

        return on_event

    async def run(name: str, text: str, agent: str, **options: object) -> PromptOutcome:
        session = await client.create_session(repo, title=f"demo: {name}")
        rows[name].session, rows[name].started = session.id, time.monotonic()
        outcome = await send_and_wait(
            client,
            hub,
            session.id,
            repo,
            text,
            agent=agent,
            timeout=120,
            on_event=follow(name),
            **options,
        )
        row = rows[name]
        row.status, row.tokens = outcome.kind, outcome.tokens.total
        row.elapsed = time.monotonic() - row.started
        if not console.is_terminal:
            console.print(f"{name}: {outcome.kind} in {row.elapsed:.2f}s, {row.tokens} tokens")
        return outcome

    with live if console.is_terminal else contextlib.nullcontext():
        greet, farewell = await asyncio.gather(
            run("greet", "Create greet.py with a greet(name) function.", WORKER_AGENT),
            run("farewell", "Create farewell.py with a farewell(name) function.", WORKER_AGENT),
        )
        reviewer = await run(
            "reviewer",
            "Review the new files greet.py and farewell.py.",
            REVIEWER_AGENT,
            schema=VERDICT_SCHEMA,
        )
        if console.is_terminal:
            live.update(_table(list(rows.values())), refresh=True)
    return {"greet": greet, "farewell": farewell, "reviewer": reviewer}
