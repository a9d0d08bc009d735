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
        help="offline demo: a real `opencode serve` driven by the scripted model, no key needed",
        description=(
            "Make a sample repository in a temporary directory, start a real embedded "
            "`opencode serve` backed by the scripted model, run two worker sessions in "
            "parallel and a read-only reviewer, and show their progress."
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

            result = asyncio.run(run_demo(console))
            failed = [name for name, outcome in result.outcomes.items() if not outcome.ok]
            if failed:
                console.print(f"[red]Sessions that did not finish well:[/red] {', '.join(failed)}")
                return EXIT_FAILED
            console.print("[green]Demo finished.[/green] Inspect the sample repository above.")
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
