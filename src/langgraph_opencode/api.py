"""Run the graph from Python: ``orchestrate`` / ``aorchestrate`` and ``aresume``.

A run's checkpoints go to a SQLite file in the repository's git directory,
``.git/langgraph-opencode/checkpoints.sqlite``, under the run id as thread id,
unless another store is named (a PostgreSQL URL, see
:mod:`langgraph_opencode.checkpoints`) or a LangGraph checkpointer is passed. Resuming a
run id continues where it stopped: after a crash, or after a pause for a
person (plan approval, a permission request).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command
from pydantic import SecretStr

from langgraph_opencode.checkpoints import checkpoint_path, open_checkpointer
from langgraph_opencode.core.services import close_services, register_server, services_for
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.core.supervisor import close_supervisor
from langgraph_opencode.errors import ConfigurationError
from langgraph_opencode.graph.builder import compile_graph
from langgraph_opencode.objective import check_objective
from langgraph_opencode.plan import Plan, load_plan, parse_plan
from langgraph_opencode.report import RunReport
from langgraph_opencode.run_host import EmbeddedServer, embedded_server, hold_run, unrecorded
from langgraph_opencode.run_ids import check_run_id, new_run_id
from langgraph_opencode.tools.git import Repo
from langgraph_opencode.tools.opencode.config import build_config

__all__ = ["aorchestrate", "aresume", "checkpoint_path", "orchestrate", "resume"]

InterruptHandler = Callable[[dict[str, Any]], Any]
"""Gets an interrupt's value (``{"type": "plan_approval" | "permission", ...}``);
returns the answer to resume with (or an awaitable of it)."""

EventHandler = Callable[[dict[str, Any]], None]


def _plan_input(
    plan: Plan | Mapping[str, Any] | str | os.PathLike[str] | None,
) -> dict[str, Any] | None:
    if plan is None:
        return None
    if isinstance(plan, (str, os.PathLike)):
        return load_plan(Path(plan)).model_dump(mode="json")
    return parse_plan(plan).model_dump(mode="json")


def _given_servers(settings: RunSettings, server_url: str | Sequence[str] | None) -> list[str]:
    """The URLs given to the API first, then the settings' servers, without repeats."""
    given = [server_url] if isinstance(server_url, str) else list(server_url or [])
    # An embedded server's URL is no server to give: a run starts or adopts its own.
    configured = [*([] if settings.embedded else [settings.server_url]), *settings.server_urls]
    return list(dict.fromkeys(url.rstrip("/") for url in [*given, *configured] if url))


@dataclass
class _Live:
    """The run's connections for one orchestrator process."""

    settings: RunSettings
    embedded: EmbeddedServer | None = None


@contextlib.asynccontextmanager
async def _server(
    settings: RunSettings,
    *,
    run_dir: Path,
    server_url: str | Sequence[str] | None,
    password: str | SecretStr | None,
    model: str | None,
    opencode_config: Mapping[str, Any] | None,
    isolated: bool,
    on_event: EventHandler | None,
) -> AsyncIterator[_Live]:
    servers = _given_servers(settings, server_url)
    if servers:
        if password is not None:
            register_server(
                servers[0], SecretStr(password) if isinstance(password, str) else password
            )
        settings.server_url, settings.server_urls = servers[0], servers[1:]
        settings.embedded = False
        try:
            settings.validate()
            # Fail before the run touches anything when a server is
            # unreachable or refuses its password.
            for url in servers:
                await services_for(settings, url)
            yield _Live(settings)
        finally:
            for url in servers:
                await close_services(url)
            if password is not None:
                register_server(servers[0], None)  # a later run uses its own
        return
    config = build_config(model=model, extra=opencode_config)
    async with embedded_server(
        run_dir, config=config, isolated=isolated, linger=settings.embedded_linger
    ) as embedded:
        url = embedded.server.url
        # The embedded server is gone only when its process is: a loaded one is slow.
        server = embedded.server
        register_server(url, server.password, alive=lambda: server.running)
        settings.server_url, settings.embedded = url, True
        if on_event is not None:
            how = "adopted (it kept running meanwhile)" if embedded.server.adopted else "started"
            on_event(
                {
                    "time": time.time(),
                    "kind": "server",
                    "message": f"opencode serve at {url}: {how}",
                }
            )
        try:
            yield _Live(settings, embedded)
        finally:
            await close_services(url)
            register_server(url, None)


@contextlib.asynccontextmanager
async def _checkpointer(
    repo: Repo, given: BaseCheckpointSaver[Any] | str | None
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    if isinstance(given, BaseCheckpointSaver):
        yield given
        return
    async with open_checkpointer(repo, given) as saver:
        yield saver


async def _check_models(settings: RunSettings, repo: Repo, *extra: str | None) -> None:
    """Refuse models the server does not know, before a run depends on them."""
    wanted = {
        m
        for m in (settings.planner_model, settings.worker_model, settings.reviewer_model, *extra)
        if m
    }
    if not wanted:
        return
    servers = settings.servers()
    for url in servers:
        known = await (await services_for(settings, url)).client.models(repo.root)
        unknown = sorted(wanted - known)
        if unknown:
            sample = ", ".join(sorted(known)[:12]) + (" …" if len(known) > 12 else "")
            which = f" at {url}" if len(servers) > 1 else ""
            raise ConfigurationError(
                f"unknown model{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: the "
                f"OpenCode server{which} knows {len(known)} model(s) ({sample or 'none'}); "
                "configure the provider in your OpenCode config, or pick one of these"
            )


async def _drive(
    graph: Any,
    first_input: Any,
    config: RunnableConfig,
    settings: RunSettings,
    on_interrupt: InterruptHandler | None,
    on_event: EventHandler | None,
) -> RunReport:
    payload = first_input
    while True:
        async for mode, chunk in graph.astream(
            payload, config, context=settings, stream_mode=["custom", "updates"], durability="sync"
        ):
            if (
                mode == "custom"
                and on_event is not None
                and isinstance(chunk, dict)
                and "event" in chunk
            ):
                on_event(chunk["event"])
        snapshot = await graph.aget_state(config)
        interrupts = [i for task in snapshot.tasks for i in task.interrupts]
        if not interrupts:
            report = (snapshot.values or {}).get("report")
            if report is None:
                raise ConfigurationError(
                    f"run {config['configurable']['thread_id']} did not finish"
                )
            return RunReport.model_validate(report)
        value = interrupts[0].value
        if on_interrupt is None:
            values = snapshot.values or {}
            return RunReport(
                run_id=str(values.get("run_id") or config["configurable"]["thread_id"]),
                objective=str(values.get("objective", "")),
                repo=str(values.get("repo", "")),
                status="interrupted",
                interrupt=value,
            )
        answer = on_interrupt(value)
        if inspect.isawaitable(answer):
            answer = await answer
        payload = Command(resume=answer)


def _own_settings(settings: RunSettings | None) -> RunSettings:
    """The run's own copy of the caller's settings (the run fills in its servers)."""
    if settings is None:
        return RunSettings()
    if not isinstance(settings, RunSettings):
        raise ConfigurationError(
            f"settings must be a RunSettings, got {type(settings).__name__}: "
            "pass settings=RunSettings(...) (e.g. RunSettings(**your_dict))"
        )
    return dataclasses.replace(settings)  # validated again by __post_init__


def _refuse_snapshot(snapshot: Any, run_id: str, root: Path, *, new: bool, existed: bool) -> None:
    """Refuse to start a run that exists, or to resume one that does not."""
    if new and snapshot.values:
        raise ConfigurationError(
            f"run {run_id!r} already exists in {root}; continue it with "
            f"`langgraph-opencode resume {run_id}` (or resume(run_id=...)), or pick another run id"
        )
    if new:
        return
    if not snapshot.values:
        raise unrecorded(run_id, root, existed=existed)
    recorded = str(snapshot.values.get("repo") or "")
    if recorded and Path(recorded) != root:
        raise ConfigurationError(
            f"run {run_id!r} works on {recorded}, not {root}: resume it with --repo {recorded}"
        )
    if _before_the_job_channel(snapshot.values):
        raise ConfigurationError(
            f"run {run_id!r} was checkpointed by an older langgraph-opencode (its prompts are "
            "kept per task, not in the run's job channel): finish it with that version, or "
            "start it again; its branches and worktrees are kept"
        )


def _before_the_job_channel(values: Mapping[str, Any]) -> bool:
    """Whether a run's state is from before the ``jobs`` channel (prompts kept per task)."""
    tasks = values.get("tasks") or {}
    # (The old ``planner_job`` channel is not loaded any more; a run of today records
    # its planner's session and prompt in one step.)
    planning = values.get("planner_session") and not values.get("jobs")
    return bool(planning) or any(
        isinstance(record, dict) and record.get("job") for record in tasks.values()
    )


@contextlib.asynccontextmanager
async def _driving(
    git_repo: Repo,
    run_id: str,
    checkpointer: BaseCheckpointSaver[Any] | str | None,
    settings: RunSettings,
    *,
    new: bool,
    server: dict[str, Any],
) -> AsyncIterator[tuple[Any, RunnableConfig, _Live, Any]]:
    """Everything one process needs to drive a run: checks, checkpoints, lock, servers.

    Nothing is written before the run is known to be startable (a new id) or
    resumable (a recorded one); a run that fails before its first checkpoint
    leaves nothing behind.
    """
    run_dir = git_repo.run(run_id).run_dir  # refuses an unusable run id
    existed = await asyncio.to_thread(run_dir.exists)
    config: RunnableConfig = {"configurable": {"thread_id": run_id}, "recursion_limit": 10_000}
    async with _checkpointer(git_repo, checkpointer) as saver:
        graph = compile_graph(saver)
        # A first look refuses without writing anything (not even the lock).
        snapshot = await graph.aget_state(config)
        _refuse_snapshot(snapshot, run_id, git_repo.root, new=new, existed=existed)
        async with hold_run(run_dir, run_id):
            try:
                # What the run is now that no other process can move it on.
                snapshot = await graph.aget_state(config)
                _refuse_snapshot(snapshot, run_id, git_repo.root, new=new, existed=existed)
                async with _server(settings, run_dir=run_dir, **server) as live:
                    await _check_models(live.settings, git_repo, server.get("model"))
                    try:
                        yield graph, config, live, snapshot
                    finally:
                        # The run's prompts are followed while this process drives it.
                        await close_supervisor(run_id)
            except BaseException:
                # Still holding the lock: nobody else uses the directory made for it.
                if not existed and not (await graph.aget_state(config)).values:
                    await asyncio.to_thread(shutil.rmtree, run_dir, ignore_errors=True)
                raise


async def _drive_and_keep(
    graph: Any,
    first_input: Any,
    config: RunnableConfig,
    live: _Live,
    on_interrupt: InterruptHandler | None,
    on_event: EventHandler | None,
) -> RunReport:
    """Drive the run; its embedded server stops if it ended, else lingers for a resume."""
    if live.embedded is not None:
        live.embedded.keep = True  # a crash or Ctrl-C from here on leaves a resumable run
    report = await _drive(graph, first_input, config, live.settings, on_interrupt, on_event)
    if live.embedded is not None:
        live.embedded.keep = report.status == "interrupted"
    return report


async def aorchestrate(
    objective: str,
    *,
    repo: str | os.PathLike[str] = ".",
    plan: Plan | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    settings: RunSettings | None = None,
    run_id: str | None = None,
    server_url: str | Sequence[str] | None = None,
    password: str | SecretStr | None = None,
    model: str | None = None,
    opencode_config: Mapping[str, Any] | None = None,
    isolated: bool = False,
    checkpointer: BaseCheckpointSaver[Any] | str | None = None,
    on_interrupt: InterruptHandler | None = None,
    on_event: EventHandler | None = None,
) -> RunReport:
    """Run an objective to the end and return the report.

    Args:
        objective: What the run should achieve.
        repo: The git repository to work on (never modified: the work goes to
            the run's own branches).
        plan: A ready plan (object, dict, or a YAML/JSON file) to skip planning.
        settings: Run settings; defaults otherwise.
        run_id: The run's id (the checkpoint thread id); a new one by default.
        server_url: An OpenCode server to use, or several to spread the
            sessions over (the first is the primary; ``settings.server_urls``
            adds more). They must see the repository at the same path. By
            default one is started with the user's own OpenCode config and
            credentials.
        password: The primary server's password. Without it, and for the
            other servers, each server's environment variable is read
            (``settings.password_envs``, else ``settings.password_env``).
        model: For an embedded server: the default ``provider/model``.
        opencode_config: For an embedded server: extra OpenCode config.
        isolated: For an embedded server: hide the user's OpenCode config.
        checkpointer: Any LangGraph checkpointer, or a store's URL
            (``postgresql://…``, ``sqlite:///…``); by default
            ``$LANGGRAPH_OPENCODE_CHECKPOINTS``, else the repository's SQLite file.
        on_interrupt: Answers pauses (plan approval, permission requests);
            without it a paused run returns a report with status ``interrupted``
            and ``aresume`` continues it.
        on_event: Gets each notable event (progress display).

    Raises:
        ConfigurationError: Bad input (or a run id that exists: resume it);
            nothing was changed.
        RunHeldError: Another orchestrator process drives a run of that id.
    """
    check_objective(objective)
    run_id = check_run_id(run_id) if run_id is not None else new_run_id()
    settings = _own_settings(settings)
    git_repo = await Repo.open(repo)
    await git_repo.run(run_id).check_namespace()
    run_input: dict[str, Any] = {
        "objective": objective,
        "repo": str(git_repo.root),
        "run_id": run_id,
        "plan": _plan_input(plan),
    }
    async with _driving(
        git_repo,
        run_input["run_id"],
        checkpointer,
        settings,
        new=True,
        server=dict(
            server_url=server_url,
            password=password,
            model=model,
            opencode_config=opencode_config,
            isolated=isolated,
            on_event=on_event,
        ),
    ) as (graph, config, live, _):
        return await _drive_and_keep(graph, run_input, config, live, on_interrupt, on_event)


async def aresume(
    run_id: str,
    *,
    repo: str | os.PathLike[str] = ".",
    answer: Any = None,
    settings: RunSettings | None = None,
    server_url: str | Sequence[str] | None = None,
    password: str | SecretStr | None = None,
    model: str | None = None,
    opencode_config: Mapping[str, Any] | None = None,
    isolated: bool = False,
    checkpointer: BaseCheckpointSaver[Any] | str | None = None,
    on_interrupt: InterruptHandler | None = None,
    on_event: EventHandler | None = None,
) -> RunReport:
    """Continue a run from its last checkpoint (after a crash or a pause).

    Args:
        run_id: The run to continue.
        repo: Its repository.
        answer: The answer to the pause the run is waiting on, if it is.
        settings: As for :func:`aorchestrate`; the same arguments apply.
        server_url: As for :func:`aorchestrate`.
        password: As for :func:`aorchestrate`.
        model: As for :func:`aorchestrate`.
        opencode_config: As for :func:`aorchestrate`.
        isolated: As for :func:`aorchestrate`.
        checkpointer: As for :func:`aorchestrate`.
        on_interrupt: As for :func:`aorchestrate`.
        on_event: As for :func:`aorchestrate`.

    Raises:
        ConfigurationError: No run with that id was checkpointed here.
        RunHeldError: Another orchestrator process drives the run now.
    """
    check_run_id(run_id)
    settings = _own_settings(settings)
    git_repo = await Repo.open(repo)
    async with _driving(
        git_repo,
        run_id,
        checkpointer,
        settings,
        new=False,
        server=dict(
            server_url=server_url,
            password=password,
            model=model,
            opencode_config=opencode_config,
            isolated=isolated,
            on_event=on_event,
        ),
    ) as (graph, config, live, snapshot):
        paused = any(task.interrupts for task in snapshot.tasks)
        payload: Command[Any] | None = (
            Command(resume=answer) if paused and answer is not None else None
        )
        return await _drive_and_keep(graph, payload, config, live, on_interrupt, on_event)


def orchestrate(objective: str, **kwargs: Any) -> RunReport:
    """Blocking :func:`aorchestrate`."""
    return asyncio.run(aorchestrate(objective, **kwargs))


def resume(run_id: str, **kwargs: Any) -> RunReport:
    """Blocking :func:`aresume`."""
    return asyncio.run(aresume(run_id, **kwargs))
