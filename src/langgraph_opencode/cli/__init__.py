"""The ``langgraph-opencode`` command line.

Commands: ``run``, ``resume``, ``status``, ``runs``, ``demo`` (``--help`` of
each). Exit codes: 0 every task merged, 1 some tasks failed or the run failed,
2 usage or configuration error, 3 paused waiting for an answer, 130
interrupted (Ctrl-C). Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
from collections.abc import Sequence

from rich.markup import escape

from langgraph_opencode.cli import commands
from langgraph_opencode.cli.commands import Output
from langgraph_opencode.cli.events import STDERR
from langgraph_opencode.cli.interactive import LeftPaused
from langgraph_opencode.cli.parser import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PAUSED,
    EXIT_USAGE,
    build_parser,
)
from langgraph_opencode.cli.store import load_run
from langgraph_opencode.cli.terminal import TerminalConsole
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.errors import (
    AuthenticationError,
    ConfigurationError,
    LangGraphOpenCodeError,
    OpenCodeConnectionError,
)
from langgraph_opencode.tools.git import Repo

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PAUSED",
    "EXIT_USAGE",
    "main",
]

_COMMANDS = {
    "run": commands.run,
    "resume": commands.resume,
    "status": commands.status,
    "runs": commands.runs,
    "demo": commands.demo,
}


def _error(out: Output, message: str) -> None:
    out.errors.print("[red]error:[/red] " + escape(message), highlight=False, soft_wrap=True)


def _started(out: Output) -> bool:
    return out.progress is not None and out.progress.events_seen > 0


def _interrupted(args: argparse.Namespace, out: Output) -> int:
    console = out.errors
    if args.command == "demo":
        console.print(
            "[yellow]interrupted[/yellow]: a demo cannot be resumed (its scripted model ran in "
            "this process); its sample repository, named above, is left as it was: delete it, "
            "or run `langgraph-opencode demo` again",
            highlight=False,
            soft_wrap=True,
        )
        return EXIT_INTERRUPTED
    if not _recorded(out):
        console.print("[yellow]interrupted[/yellow]")
        return EXIT_INTERRUPTED
    console.print(
        f"[yellow]Interrupted.[/yellow] Run {escape(out.run_id)} is checkpointed; continue it "
        "with:",
        highlight=False,
    )
    console.print("    " + shlex.join(out.resume), markup=False, highlight=False, soft_wrap=True)
    server = getattr(args, "server", None)
    if not server:
        linger = getattr(args, "embedded_linger", None) or RunSettings().embedded_linger
        console.print(
            "Its sessions go on in the run's OpenCode server, which keeps running for "
            f"{linger:g} s without a command driving the run; a resume in that time picks "
            "up their results (after it, they are prompted again where they stopped)."
        )
    elif getattr(args, "abort_on_interrupt", False):
        try:
            count = asyncio.run(commands.abort_sessions(out, args))
            console.print(f"Aborted {count} running session(s).")
        except (LangGraphOpenCodeError, KeyboardInterrupt) as exc:
            console.print(f"Could not abort the sessions: {escape(str(exc) or 'interrupted')}")
    else:
        console.print(
            "Sessions running on the server are left to finish (--abort-on-interrupt aborts "
            "them); the resumed run picks up their results."
        )
    return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    args = build_parser().parse_args(argv)
    as_json = bool(getattr(args, "json", False))
    # With --json and --events -, stderr carries the JSON lines, not the progress lines.
    quiet = as_json and getattr(args, "events", None) == STDERR
    out = Output(
        console=TerminalConsole(stderr=as_json, quiet=quiet),
        errors=TerminalConsole(stderr=True),
        json=as_json,
    )
    try:
        return asyncio.run(_COMMANDS[args.command](args, out))
    except KeyboardInterrupt:
        return _interrupted(args, out)
    except LeftPaused:
        out.console.print(f"[yellow]Run {escape(out.run_id)} is left paused.[/yellow]")
        out.console.print(
            "Continue it with:  " + shlex.join(out.resume),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return EXIT_PAUSED
    except ConfigurationError as exc:
        _error(out, str(exc))
        return EXIT_USAGE
    except (AuthenticationError, OpenCodeConnectionError) as exc:
        _error(out, str(exc))
        if _started(out):
            _resume_hint(out)
            return EXIT_FAILED
        return EXIT_USAGE  # the server was wrong before anything started
    except (LangGraphOpenCodeError, TimeoutError) as exc:
        _error(out, str(exc) or type(exc).__name__)
        _resume_hint(out)
        return EXIT_FAILED
    except Exception as exc:  # a bug: still one line, unless asked for the traceback
        if os.environ.get("LANGGRAPH_OPENCODE_DEBUG"):
            raise
        _error(
            out,
            f"unexpected {type(exc).__name__}: {exc} (LANGGRAPH_OPENCODE_DEBUG=1 "
            "shows the traceback)",
        )
        _resume_hint(out)
        return EXIT_FAILED


def _recorded(out: Output) -> bool:
    """Whether the run has a checkpoint to resume from (it may have failed before one)."""
    if not (out.run_id and out.resume):
        return False

    async def look() -> bool:
        await load_run(await Repo.open(out.repo_root), out.run_id)
        return True

    try:
        return asyncio.run(look())
    except (LangGraphOpenCodeError, OSError):
        return False


def _resume_hint(out: Output) -> None:
    if _recorded(out):
        out.errors.print(
            "The run is checkpointed; continue it with:  " + shlex.join(out.resume),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
