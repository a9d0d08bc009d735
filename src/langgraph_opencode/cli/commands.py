"""The commands: ``run``, ``resume``, ``status``, ``runs`` and ``demo``.

Each takes the parsed arguments and an :class:`Output` and returns an exit
code; errors are raised and mapped to exit codes by ``cli.main``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from langgraph_opencode.api import aorchestrate, aresume
from langgraph_opencode.cli.events import EventSink, event_sink
from langgraph_opencode.cli.interactive import (
    TerminalAnswers,
    check_answer,
    describe_pause,
    parse_answer,
    unattended_answer,
)
from langgraph_opencode.cli.parser import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PAUSED,
    SETTING_FLAGS,
)
from langgraph_opencode.cli.progress import Progress, task_table
from langgraph_opencode.cli.store import RunInfo, list_runs, load_run
from langgraph_opencode.core.services import client_for
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.errors import ConfigurationError, LangGraphOpenCodeError
from langgraph_opencode.objective import check_objective
from langgraph_opencode.plan import load_plan
from langgraph_opencode.report import RunReport
from langgraph_opencode.run_host import held_error
from langgraph_opencode.run_ids import check_run_id, new_run_id
from langgraph_opencode.tools.git import Repo
from langgraph_opencode.tools.lockfile import describe

__all__ = [
    "Output",
    "abort_sessions",
    "demo",
    "resume",
    "resume_command",
    "run",
    "runs",
    "status",
]

PROG = "langgraph-opencode"


@dataclass
class Output:
    """Where a command writes, and what an interrupted command needs to say."""

    console: Console
    """Human output: stdout, or stderr with ``--json``."""
    errors: Console
    json: bool = False
    run_id: str = ""
    repo_root: str = ""
    resume: list[str] = field(default_factory=list)
    """The command that continues the run (filled in once the run id is known)."""
    progress: Progress | None = None


def _resume_base(run_id: str, repo_root: str) -> list[str]:
    command = [PROG, "resume", run_id]
    if Path(repo_root).resolve() != Path.cwd().resolve():
        command += ["--repo", repo_root]
    return command


def resume_command(args: argparse.Namespace, run_id: str, repo_root: str) -> list[str]:
    """``langgraph-opencode resume RUN_ID ...`` with the settings flags the user gave."""
    command = _resume_base(run_id, repo_root)
    for name in SETTING_FLAGS:
        value = getattr(args, name, None)
        flag = "--" + name.replace("_", "-")
        if name == "password_env" and value == "OPENCODE_SERVER_PASSWORD":
            continue
        if isinstance(value, bool):
            command += [flag] if value else []
        elif isinstance(value, list):
            for item in value:
                command += [flag, item]
        elif value is not None:
            command += [flag, str(value)]
    return command


def _connection(args: argparse.Namespace) -> dict[str, Any]:
    """The run settings the connection flags give: servers and passwords' variables."""
    servers = list(args.server or [])
    return {
        "server_url": servers[0] if servers else "",
        "server_urls": servers[1:],
        "password_env": args.password_env,
        "password_envs": dict(
            value.rsplit("=", 1) for value in getattr(args, "server_password_env", None) or []
        ),
    }


def _settings(args: argparse.Namespace, *, approve_plan: bool = False) -> RunSettings:
    unmatched = args.unmatched
    if args.yes:
        if unmatched == "ask":
            raise ConfigurationError("--yes runs unattended: use --unmatched allow or deny")
        unmatched = unmatched or "deny"
    given: dict[str, Any] = {
        "max_parallel": args.max_parallel,
        "max_rework_rounds": args.max_rework_rounds,
        "embedded_linger": args.embedded_linger,
        "server_lost_after": args.server_lost_after,
        "check_timeout": args.check_timeout,
        "turn_timeout": args.turn_timeout,
        "stall_timeout": args.stall_timeout,
        "task_token_budget": args.task_token_budget,
        "run_cost_budget": args.run_cost_budget,
    }
    return RunSettings(
        **_connection(args),
        planner_model=args.planner_model or "",
        worker_model=args.worker_model or "",
        reviewer_model=args.reviewer_model or "",
        approve_plan=args.approve_plan or approve_plan,
        allow_permissions=list(args.allow),
        deny_permissions=list(args.deny),
        unmatched_permissions=unmatched or "ask",
        **{k: v for k, v in given.items() if v is not None},
    )


def _on_interrupt(
    args: argparse.Namespace, out: Output, progress: Progress
) -> Callable[[dict[str, Any]], Any] | None:
    if args.yes:
        unmatched = args.unmatched or "deny"

        def answer(value: dict[str, Any]) -> Any:
            reply = unattended_answer(value, unmatched)
            progress.note(f"[dim]--yes: answered {value.get('type')} with {reply!r}[/dim]")
            return reply

        return answer
    if sys.stdin.isatty():
        return TerminalAnswers(out.console, progress)
    return None


def _check_server_flags(args: argparse.Namespace) -> None:
    for url in args.server or []:
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"--server wants an http(s) URL, got {url!r}")
    if args.model and args.server:
        raise ConfigurationError(
            "--model sets the embedded server's default model; with --server use "
            "--planner-model, --worker-model and --reviewer-model"
        )


async def _with_progress(
    out: Output,
    seed: list[dict[str, Any]],
    go: Callable[[Progress, EventSink], Awaitable[RunReport]],
    events: str | None = None,
) -> RunReport:
    """Run ``go`` with the progress display, and the ``--events`` file if one is given."""
    progress = Progress(out.console)
    out.progress = progress
    progress.seed(seed)
    with event_sink(events) as sink, progress:

        def on_event(event: dict[str, Any]) -> None:
            if sink is not None:
                sink(event)
            progress.on_event(event)

        report = await go(progress, on_event)
        progress.finish(report)
    if not progress.live:
        progress.print_table()
    return report


def _finish(report: RunReport, out: Output) -> int:
    """Print the end of a run (summary, or JSON) and return the exit code."""
    if out.json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
        sys.stdout.flush()
    console = out.console
    if report.status == "interrupted":
        console.print(f"[yellow]Run {escape(report.run_id)} is paused.[/yellow]")
        for line in describe_pause(report.interrupt, out.resume):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        return EXIT_PAUSED
    counts = report.counts()
    merged = counts.get("merged", 0)
    style = "green" if report.status == "completed" else "red"
    console.print(
        f"[{style}]Run {escape(report.run_id)} {report.status}[/{style}]: "
        f"{merged}/{len(report.tasks)} tasks merged, {report.tokens:,} tokens, "
        f"${report.cost:.4f}, {report.duration_s:.0f}s."
    )
    if report.error:
        console.print(f"[red]error:[/red] {escape(report.error)}")
    for task in report.tasks:
        if task.status != "merged" and task.reason:
            console.print(f"  {escape(task.id)} {task.status}: {escape(task.reason)}")
    failing = report.integration_failures
    if failing:
        console.print(
            f"[red]{len(failing)} check(s) fail on {escape(report.integration_branch)}[/red] "
            "with all the merged work together:"
        )
        for check in failing:
            console.print(f"  {check.get('command')}", markup=False, highlight=False)
    if report.integration_branch and report.take_it:
        console.print(
            f"The work is on branch [bold]{escape(report.integration_branch)}[/bold] "
            f"in {escape(report.repo)}.",
            soft_wrap=True,
        )
        console.print("Take it (on your branch, in that repository) with:")
        console.print(f"    {report.take_it}", markup=False, highlight=False, soft_wrap=True)
    if report.files:
        console.print("Report:", markup=False)
        for path in report.files:
            console.print(f"    {path}", markup=False, highlight=False, soft_wrap=True)
    if report.left_behind:
        console.print("Kept for inspection (not merged):")
        for item in report.left_behind:
            console.print(f"  - {item}", markup=False, highlight=False)
    return EXIT_OK if report.status == "completed" and not failing else EXIT_FAILED


# -- run -------------------------------------------------------------------------------


def _objective(args: argparse.Namespace) -> str:
    """OBJECTIVE or the text of ``--objective-file``, checked as the API would."""
    given, path = args.objective, args.objective_file
    if (given is None) == (path is None):
        raise ConfigurationError(
            "give the objective either as OBJECTIVE or with --objective-file PATH, "
            + ("not both" if path is not None else "one of them")
        )
    if path is None:
        return check_objective(given)
    name = "stdin" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise ConfigurationError(
            f"cannot read the objective from {name}: {reason or type(exc).__name__}"
        ) from None
    return check_objective(text, source=f"the objective file {name}")


async def run(args: argparse.Namespace, out: Output) -> int:
    """``run OBJECTIVE``."""
    objective = _objective(args)
    _check_server_flags(args)
    settings = _settings(args)
    repo = await Repo.open(args.repo)
    plan = load_plan(args.plan) if args.plan else None
    # The API refuses an id that is taken (naming `resume`).
    run_id = check_run_id(args.run_id) if args.run_id is not None else new_run_id()
    out.run_id, out.repo_root = run_id, str(repo.root)
    out.resume = resume_command(args, run_id, str(repo.root))
    out.console.print(f"[bold]Run[/bold] {escape(run_id)} in {escape(str(repo.root))}")

    async def go(progress: Progress, on_event: EventSink) -> RunReport:
        return await aorchestrate(
            objective,
            repo=repo.root,
            plan=plan,
            settings=settings,
            run_id=run_id,
            server_url=args.server,
            model=args.model,
            on_interrupt=_on_interrupt(args, out, progress),
            on_event=on_event,
        )

    seed = [t.model_dump() for t in plan.tasks] if plan else []
    return _finish(await _with_progress(out, seed, go, args.events), out)


# -- resume ----------------------------------------------------------------------------


async def resume(args: argparse.Namespace, out: Output) -> int:
    """``resume RUN_ID``."""
    check_run_id(args.run_id)
    _check_server_flags(args)
    repo = await Repo.open(args.repo)
    info = await load_run(repo, args.run_id)
    if info.holder is not None:
        raise held_error(info.run_id, info.holder)
    waits_for_plan = bool(info.interrupt and info.interrupt.get("type") == "plan_approval")
    settings = _settings(args, approve_plan=waits_for_plan)
    out.run_id, out.repo_root = info.run_id, str(repo.root)
    out.resume = resume_command(args, info.run_id, str(repo.root))
    if info.state == "finished" and info.report is not None:
        out.console.print(f"Run {escape(info.run_id)} has already finished.")
        return _finish(info.report, out)
    answer = parse_answer(args.answer) if args.answer is not None else None
    if answer is not None and info.state != "paused":
        raise ConfigurationError(
            f"run {info.run_id!r} is not waiting for an answer ({info.state}); "
            "resume it without --answer"
        )
    if answer is not None:
        check_answer(info.interrupt, answer)
    if info.state == "paused" and answer is None and not args.yes and not sys.stdin.isatty():
        # Nobody to ask: leave it paused and say how to answer.
        return _finish(info.unfinished_report(), out)
    out.console.print(f"[bold]Resuming[/bold] {escape(info.run_id)} in {escape(str(repo.root))}")

    async def go(progress: Progress, on_event: EventSink) -> RunReport:
        return await aresume(
            info.run_id,
            repo=repo.root,
            answer=answer,
            settings=settings,
            server_url=args.server,
            model=args.model,
            on_interrupt=_on_interrupt(args, out, progress),
            on_event=on_event,
        )

    return _finish(await _with_progress(out, _seed_of(info), go, args.events), out)


def _seed_of(info: RunInfo) -> list[dict[str, Any]]:
    return [{"id": task_id} for task_id in info.tasks]


async def abort_sessions(out: Output, args: argparse.Namespace) -> int:
    """Abort the sessions the run's checkpoint says are running; return how many."""
    repo = await Repo.open(out.repo_root)
    info = await load_run(repo, out.run_id)
    sessions = info.sessions()
    if not sessions:
        return 0
    settings = RunSettings(**_connection(args))
    primary = settings.servers()[0]
    aborted = 0
    # Sessions on servers this command was not given (the run's embedded server) are
    # out of its reach.
    names = [
        n for n in dict.fromkeys(s or primary for _, _, s in sessions) if n in settings.servers()
    ]
    for name in names:
        async with client_for(settings, settings.url_of(name)) as client:
            for session_id, directory, server in sessions:
                if (server or primary) != name:
                    continue
                try:
                    await client.abort(session_id, directory)
                    aborted += 1
                except LangGraphOpenCodeError as exc:
                    out.errors.print(
                        f"could not abort session {escape(session_id)}: {escape(str(exc))}"
                    )
    return aborted


# -- status and runs ---------------------------------------------------------------------


def _state_rows(info: RunInfo) -> list[dict[str, Any]]:
    now = time.time()
    rows = []
    for task_id, record in info.tasks.items():
        started, finished = record.get("started_at"), record.get("finished_at")
        rows.append(
            {
                "id": task_id,
                "status": record.get("status", "pending"),
                "round": record.get("round", 0),
                "session": record.get("worker_session", ""),
                "tokens": record.get("tokens"),
                "cost": record.get("cost"),
                "elapsed": ((finished or now) - started) if started else None,
            }
        )
    return rows


async def status(args: argparse.Namespace, out: Output) -> int:
    """``status [RUN_ID]``."""
    repo = await Repo.open(args.repo)
    info = await load_run(repo, args.run_id)
    console = out.console
    if info.state == "finished" and info.report is not None:
        report = info.report
        if out.json:
            sys.stdout.write(report.model_dump_json(indent=2) + "\n")
            return EXIT_OK
        md = next((Path(f) for f in report.files if f.endswith(".md")), None)
        text = md.read_text() if md is not None and md.exists() else report.to_markdown()
        console.print(text, markup=False, highlight=False, end="")
        return EXIT_OK
    if out.json:
        sys.stdout.write(info.unfinished_report().model_dump_json(indent=2) + "\n")
        return EXIT_OK
    console.print(f"[bold]Run {escape(info.run_id)}[/bold]: {info.state}")
    console.print(f"> {info.objective[:500]}", markup=False, highlight=False)
    if info.integration_branch:
        console.print(f"Integration branch: {escape(info.integration_branch)}")
    if info.tasks:
        console.print(task_table(_state_rows(info)))
    else:
        console.print("No tasks yet (planning).")
    command = _resume_base(info.run_id, str(repo.root))
    if info.state == "paused":
        for line in describe_pause(info.interrupt, command):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    elif info.holder is not None:
        console.print(f"It is being driven now by {escape(describe(info.holder))}.")
    else:
        console.print(
            "No orchestrator drives it; continue it with (and the same server, "
            f"model and setting flags):  {escape(shlex.join(command))}",
            highlight=False,
            soft_wrap=True,
        )
    return EXIT_OK


async def runs(args: argparse.Namespace, out: Output) -> int:
    """``runs``."""
    repo = await Repo.open(args.repo)
    found = await list_runs(repo)
    if not found:
        out.console.print(f"No runs are recorded for {escape(str(repo.root))}.")
        return EXIT_OK
    table = Table(title=f"Runs of {escape(str(repo.root))}", title_justify="left")
    table.add_column("run", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("tasks", justify="right", no_wrap=True)
    table.add_column("objective", overflow="fold")
    for info in found:
        if info.report is not None:
            merged = info.report.counts().get("merged", 0)
            tasks = f"{merged}/{len(info.report.tasks)} merged"
            state = f"finished ({info.report.status})"
        else:
            merged = sum(1 for t in info.tasks.values() if t.get("status") == "merged")
            tasks = f"{merged}/{len(info.tasks)} merged" if info.tasks else ""
            state = info.state
        started = (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(info.started_at))
            if info.started_at
            else ""
        )
        table.add_row(escape(info.run_id), state, started, tasks, escape(info.objective[:200]))
    out.console.print(table)
    return EXIT_OK


# -- demo ------------------------------------------------------------------------------


async def demo(args: argparse.Namespace, out: Output) -> int:
    """``demo``: the offline demonstration."""
    from langgraph_opencode.demo import run_demo

    report = await run_demo(out.console)
    if report.status != "completed":
        out.console.print(f"[red]The demo run ended {report.status}.[/red]")
        return EXIT_FAILED
    out.console.print(
        "[green]Demo finished.[/green] The work is on the run's integration branch "
        "in the sample repository above."
    )
    return EXIT_OK
