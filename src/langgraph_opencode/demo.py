"""An offline demonstration on the user's own machine, with no provider key.

It makes a small sample repository in a temporary directory and runs a real
orchestration on it: the graph starts an embedded ``opencode serve`` whose
model is the scripted model server, so the planner plans three tasks, two
workers run in parallel in their own worktrees (really writing files), one
of them fails its acceptance check and is reworked after the reviewer's
feedback, and everything is merged into the run's integration branch.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from langgraph_opencode.api import aorchestrate
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.report import RunReport
from langgraph_opencode.testing import (
    ScriptedModelServer,
    make_repo,
    planner_returns,
    reviewer_says,
    worker_writes,
)

__all__ = ["DEMO_OBJECTIVE", "run_demo"]

DEMO_OBJECTIVE = "Add greet() and farewell() helpers and a small command line that uses both."

_GREET_WRONG = 'def greet(name: str) -> str:\n    return f"Hi {name}"\n'
_GREET = (
    'def greet(name: str) -> str:\n    """Return a friendly greeting."""\n'
    '    return f"Hello, {name}!"\n'
)
_FAREWELL = (
    'def farewell(name: str) -> str:\n    """Return a friendly goodbye."""\n'
    '    return f"Goodbye, {name}!"\n'
)
_CLI = (
    "import sys\n\nfrom farewell import farewell\nfrom greet import greet\n\n"
    'if __name__ == "__main__":\n    name = sys.argv[1] if len(sys.argv) > 1 else "world"\n'
    "    print(greet(name))\n    print(farewell(name))\n"
)

_PLAN: dict[str, Any] = {
    "objective": DEMO_OBJECTIVE,
    "summary": "Two independent helpers, then the command line that needs both.",
    "tasks": [
        {
            "id": "greet",
            "title": "Add greet()",
            "instructions": "Create greet.py with greet(name) returning 'Hello, <name>!'.",
            "depends_on": [],
            "files": ["greet.py"],
            "checks": ["python3 -c \"import greet; assert greet.greet('Ada') == 'Hello, Ada!'\""],
        },
        {
            "id": "farewell",
            "title": "Add farewell()",
            "instructions": "Create farewell.py with farewell(name) returning 'Goodbye, <name>!'.",
            "depends_on": [],
            "files": ["farewell.py"],
            "checks": [
                "python3 -c \"import farewell; assert farewell.farewell('Ada') == 'Goodbye, Ada!'\""
            ],
        },
        {
            "id": "cli",
            "title": "Add the command line",
            "instructions": "Create cli.py printing greet(name) and farewell(name).",
            "depends_on": ["greet", "farewell"],
            "files": ["cli.py"],
            "checks": ["python3 cli.py Ada | grep -q 'Hello, Ada!'"],
        },
    ],
}


def demo_model() -> ScriptedModelServer:
    """The scripted model behind the demo: what each agent answers."""
    return ScriptedModelServer(
        planner_returns(_PLAN),
        worker_writes("greet", {"greet.py": _GREET_WRONG}, answer="Added greet.py."),
        worker_writes("farewell", {"farewell.py": _FAREWELL}, answer="Added farewell.py."),
        worker_writes(
            "greet", {"greet.py": _GREET}, user="needs more work", answer="Fixed the greeting."
        ),
        worker_writes("cli", {"cli.py": _CLI}, answer="Added cli.py."),
        reviewer_says(
            False,
            task_id="greet",
            feedback="greet() must return 'Hello, <name>!' exactly; its acceptance check fails.",
            findings=["greet.py: returns 'Hi <name>' instead of 'Hello, <name>!'"],
        ),
        reviewer_says(True, repeat=True),
    )


async def run_demo(console: Console | None = None, *, workdir: Path | None = None) -> RunReport:
    """Run the offline demo and return the run's report.

    Args:
        console: Where to show progress.
        workdir: Where to make the sample repository; a new temporary
            directory (kept, so the result can be inspected) by default.
    """
    console = console or Console()
    root = workdir or Path(tempfile.mkdtemp(prefix="langgraph-opencode-demo-"))
    repo = make_repo(
        root / "sample-project",
        {"README.md": "# sample project\n\nA tiny repository for the demo.\n"},
    )
    console.print(f"[bold]Sample repository:[/bold] {repo}")
    console.print(f"[bold]Objective:[/bold] {DEMO_OBJECTIVE}")
    began = time.monotonic()

    def show(event: dict[str, Any]) -> None:
        console.print(
            f"[dim]{time.monotonic() - began:6.1f}s[/dim] [bold]{event['kind']:>10}[/bold]  "
            + escape(str(event["message"]))
        )

    with demo_model() as model:
        report = await aorchestrate(
            DEMO_OBJECTIVE,
            repo=repo,
            isolated=True,
            opencode_config=model.provider_config(),
            settings=RunSettings(max_parallel=2, check_timeout=60),
            on_event=show,
        )
        if report.status == "completed":
            model.assert_complete()
    console.print()
    console.print(report.to_markdown(), markup=False)
    return report
