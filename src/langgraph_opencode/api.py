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
import inspect
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command
from pydantic import SecretStr

from langgraph_opencode.checkpoints import checkpoint_path, open_checkpointer
from langgraph_opencode.driver import driving
from langgraph_opencode.errors import ConfigurationError
from langgraph_opencode.graph.builder import compile_graph
from langgraph_opencode.graph.services import close_services, register_server, services_for
from langgraph_opencode.graph.settings import RunSettings
from langgraph_opencode.nodes.planner import MAX_OBJECTIVE_CHARS
from langgraph_opencode.plan import Plan, load_plan, parse_plan
from langgraph_opencode.report import RunReport
from langgraph_opencode.tools.git import Repo
from langgraph_opencode.tools.opencode.config import build_config
from langgraph_opencode.tools.opencode.server import OpenCodeServer

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
    return list(dict.fromkeys(url.rstrip("/") for url in [*given, *settings.servers()] if url))


@contextlib.asynccontextmanager
async def _server(
    settings: RunSettings,
    *,
    server_url: str | Sequence[str] | None,
    password: str | SecretStr | None,
    model: str | None,
    opencode_config: Mapping[str, Any] | None,
    isolated: bool,
    on_event: EventHandler | None,
) -> AsyncIterator[RunSettings]:
    servers = _given_servers(settings, server_url)
    if servers:
        if password is not None:
            register_server(
                servers[0], SecretStr(password) if isinstance(password, str) else password
            )
        settings.server_url, settings.server_urls = servers[0], servers[1:]
        settings.validate()
        try:
            # Fail before the run touches anything when a server is
            # unreachable or refuses its password.
            for url in servers:
                await services_for(settings, url)
            yield settings
        finally:
            for url in servers:
                await close_services(url)
        return
    config = build_config(model=model, extra=opencode_config)
    async with OpenCodeServer(config=config, isolated=isolated) as server:
        register_server(server.url, server.password)
        settings.server_url = server.url
        if on_event is not None:
            on_event(
                {
                    "time": time.time(),
                    "kind": "server",
                    "message": f"opencode serve at {server.url}",
                }
            )
        try:
            yield settings
        finally:
            await close_services(server.url)
            register_server(server.url, None)


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
        ConfigurationError: Bad input; nothing was changed.
    """
    if not objective or not objective.strip():
        raise ConfigurationError("the objective is empty: say what the run should achieve")
    if len(objective) > MAX_OBJECTIVE_CHARS:
        raise ConfigurationError(
            f"the objective is {len(objective):,} characters long; the limit is "
            f"{MAX_OBJECTIVE_CHARS:,}. Put long material in a file of the repository and "
            "refer to it."
        )
    settings = settings or RunSettings()
    settings.validate()
    git_repo = await Repo.open(repo)
    run_input: dict[str, Any] = {
        "objective": objective,
        "repo": str(git_repo.root),
        "run_id": run_id or time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6],
        "plan": _plan_input(plan),
    }
    config: RunnableConfig = {
        "configurable": {"thread_id": run_input["run_id"]},
        "recursion_limit": 10_000,
    }
    async with (
        driving(git_repo, run_input["run_id"]),
        _checkpointer(git_repo, checkpointer) as saver,
        _server(
            settings,
            server_url=server_url,
            password=password,
            model=model,
            opencode_config=opencode_config,
            isolated=isolated,
            on_event=on_event,
        ) as live,
    ):
        await _check_models(live, git_repo, model)
        graph = compile_graph(saver)
        return await _drive(graph, run_input, config, live, on_interrupt, on_event)


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
    """
    settings = settings or RunSettings()
    settings.validate()
    git_repo = await Repo.open(repo)
    config: RunnableConfig = {"configurable": {"thread_id": run_id}, "recursion_limit": 10_000}
    async with _checkpointer(git_repo, checkpointer) as saver:
        graph = compile_graph(saver)
        snapshot = await graph.aget_state(config)
        if not snapshot.values:
            raise ConfigurationError(
                f"no run {run_id!r} is recorded for {git_repo.root}; "
                "`langgraph-opencode runs` lists the runs of a repository"
            )
        recorded = str(snapshot.values.get("repo") or "")
        if recorded and Path(recorded) != git_repo.root:
            raise ConfigurationError(
                f"run {run_id!r} works on {recorded}, not {git_repo.root}: "
                f"resume it with --repo {recorded}"
            )
        paused = any(task.interrupts for task in snapshot.tasks)
        payload: Command[Any] | None = (
            Command(resume=answer) if paused and answer is not None else None
        )
        async with (
            driving(git_repo, run_id),
            _server(
                settings,
                server_url=server_url,
                password=password,
                model=model,
                opencode_config=opencode_config,
                isolated=isolated,
                on_event=on_event,
            ) as live,
        ):
            await _check_models(live, git_repo, model)
            return await _drive(graph, payload, config, live, on_interrupt, on_event)


def orchestrate(objective: str, **kwargs: Any) -> RunReport:
    """Blocking :func:`aorchestrate`."""
    return asyncio.run(aorchestrate(objective, **kwargs))


def resume(run_id: str, **kwargs: Any) -> RunReport:
    """Blocking :func:`aresume`."""
    return asyncio.run(aresume(run_id, **kwargs))
