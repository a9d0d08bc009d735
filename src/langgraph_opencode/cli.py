"""The ``langgraph-opencode`` command line.

Exit codes: 0 success, 1 the work failed, 2 usage or configuration error,
130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape

from langgraph_opencode import __version__
from langgraph_opencode.errors import ConfigurationError, LangGraphOpenCodeError

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="langgraph-opencode",
        description="Run coding objectives through OpenCode sessions under a LangGraph graph.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "demo",
        help="offline demo: a real orchestration with a scripted model, no provider key needed",
        description=(
            "Make a sample repository in a temporary directory and run a real orchestration "
            "on it, with an embedded `opencode serve` backed by the scripted model: planning, "
            "parallel workers in their own worktrees, a rework round, review and merging."
        ),
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    args = _parser().parse_args(argv)
    console = Console()
    try:
        if args.command == "demo":
            from langgraph_opencode.demo import run_demo

            report = asyncio.run(run_demo(console))
            if report.status != "completed":
                console.print(f"[red]The demo run ended {report.status}.[/red]")
                return EXIT_FAILED
            console.print(
                "[green]Demo finished.[/green] The work is on the run's integration branch "
                "in the sample repository above."
            )
            return EXIT_OK
    except ConfigurationError as exc:
        console.print("[red]error:[/red]", escape(str(exc)))
        return EXIT_USAGE
    except (LangGraphOpenCodeError, TimeoutError) as exc:
        console.print("[red]error:[/red]", escape(str(exc) or type(exc).__name__))
        return EXIT_FAILED
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        return EXIT_INTERRUPTED
    return EXIT_USAGE  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
