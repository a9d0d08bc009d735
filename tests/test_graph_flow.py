"""Whole runs of the orchestration graph, as a user sees them.

Each run drives a real ``opencode serve`` whose model is scripted, works on a
real git repository, and checkpoints to the default SQLite file in the
repository's git directory. The tests look only at what a user can see: the
files on the integration branch, the report, the events, the branches left
behind, the user's own checkout, and the prompts the agents received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from langgraph_opencode.api import aorchestrate, checkpoint_path
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.graph.builder import build_graph, compile_graph
from langgraph_opencode.report import RunReport, TaskReport
from langgraph_opencode.testing import (
    GIT_ENV,
    Conversation,
    Hang,
    ScriptedModelServer,
    Step,
    StructuredOutput,
    Text,
    ToolCall,
    ToolCalls,
    clashing_notes_plan,
    git,
    one_task_plan,
    planner_returns,
    reviewer_says,
    task_prompt,
    worker_writes,
)
from langgraph_opencode.tools.git import Repo
from langgraph_opencode.tools.opencode.config import PLANNER_PROMPT_HEADER
from langgraph_opencode.tools.opencode.server import OpenCodeServer

# The graph must never block the event loop (LangGraph Server refuses runs that do).
pytestmark = [pytest.mark.opencode, pytest.mark.usefixtures("no_blocking_calls")]

SNAPSHOTS = Path(__file__).parent / "snapshots"

# -- helpers -----------------------------------------------------------------


def _task(
    task_id: str,
    files: Iterable[str],
    checks: Iterable[str],
    *,
    depends_on: Iterable[str] = (),
) -> dict[str, Any]:
    return {
        "id": task_id,
        "title": f"Write {task_id}",
        "instructions": f"Create the files of task {task_id}.",
        "depends_on": list(depends_on),
        "files": list(files),
        "checks": list(checks),
    }


def _plan(objective: str, *tasks: dict[str, Any]) -> dict[str, Any]:
    return {"objective": objective, "summary": "", "tasks": list(tasks)}


async def _run(
    objective: str,
    repo: Path,
    server: OpenCodeServer,
    events: list[dict[str, Any]],
    *,
    plan: dict[str, Any] | None = None,
    settings: RunSettings | None = None,
    run_id: str | None = None,
) -> RunReport:
    """Run to the end with the default checkpointer, collecting the events."""
    return await aorchestrate(
        objective,
        repo=repo,
        plan=plan,
        run_id=run_id,
        server_url=server.url,
        password=server.password,
        settings=settings or RunSettings(),
        on_event=events.append,
    )


def _show(repo: Path, branch: str, path: str) -> str:
    return git(repo, "show", f"{branch}:{path}")


def _tree(repo: Path, branch: str) -> list[str]:
    return git(repo, "ls-tree", "-r", "--name-only", branch).split()


def _by_id(report: RunReport) -> dict[str, TaskReport]:
    return {task.id: task for task in report.tasks}


def _user_checkout(repo: Path) -> dict[str, Any]:
    """Everything of the user's checkout a run must leave alone, byte for byte."""
    files = {
        str(path.relative_to(repo)): path.read_bytes()
        for path in sorted(repo.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(repo).parts
    }
    user_refs = [
        line
        for line in git(repo, "for-each-ref", "--format=%(refname) %(objectname)").splitlines()
        if not line.startswith("refs/heads/lgoc/")
    ]
    status = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain=v1", "--untracked-files=all"],
        check=True,
        capture_output=True,
        env={**os.environ, **GIT_ENV, "GIT_OPTIONAL_LOCKS": "0"},
    ).stdout
    return {
        "HEAD": (repo / ".git" / "HEAD").read_bytes(),
        "refs": user_refs,
        "index": (repo / ".git" / "index").read_bytes(),
        "files": files,
        "status": status,
    }


async def _all_hanging(run: asyncio.Task[Any], *holds: Hang, timeout: float = 300) -> bool:
    """Wait until a request hangs on each of ``holds``; ``False`` if the run ends first."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while not run.done():
                if await asyncio.to_thread(lambda: all(h.wait_until_hanging(0.2) for h in holds)):
                    return True
    return False


def _tool_outputs(model: ScriptedModelServer, tool: str) -> list[str]:
    """What every call of ``tool`` returned to the model, in order."""
    return [
        result.content
        for record in model.chat_requests()
        for result in record.request.tool_results
        if result.name == tool
    ]


def _kinds(events: list[dict[str, Any]], task_id: str) -> list[str]:
    """The kinds of a task's events, in the order they were reported."""
    return [e["kind"] for e in events if e.get("task") == task_id]


async def _checkpointed_history(repo: Path, run_id: str) -> list[dict[str, Any]]:
    """Every checkpointed state of a run, oldest first, read back from the SQLite file."""
    path = checkpoint_path(await Repo.open(repo))
    assert path.is_file(), f"no checkpoint file at {path}"
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        graph = compile_graph(saver)
        config: Any = {"configurable": {"thread_id": run_id}}
        history = [snapshot.values async for snapshot in graph.aget_state_history(config)]
    return history[::-1]


def markdown_of(events: list[dict[str, Any]], kind: str) -> str:
    """The messages of the run-level events of one kind, one per line."""
    return "\n".join(e["message"] for e in events if e["kind"] == kind and not e.get("task"))


def _status_trail(history: list[dict[str, Any]], task_id: str) -> list[str]:
    """A task's statuses across the checkpoints, consecutive repeats collapsed."""
    trail: list[str] = []
    for values in history:
        status = (values.get("tasks") or {}).get(task_id, {}).get("status")
        if status and (not trail or trail[-1] != status):
            trail.append(status)
    return trail


# -- 1. a diamond of three tasks ----------------------------------------------


async def test_three_tasks_two_in_parallel_are_merged_and_the_user_checkout_is_untouched(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    plan = _plan(
        "Write three files",
        _task("a", ["a.txt"], ["test -f a.txt"]),
        _task("b", ["b.txt"], ["test -f b.txt"]),
        _task(
            "c",
            ["c.txt"],
            ["test -f a.txt && test -f b.txt && test -f c.txt"],
            depends_on=["a", "b"],
        ),
    )
    # a and b each hold their first model call until both have made one.
    hold_a = Hang(then=ToolCalls(ToolCall.write("a.txt", "from a\n")))
    hold_b = Hang(then=ToolCalls(ToolCall.write("b.txt", "from b\n")))
    model.script(
        planner_returns(plan),
        *(
            Conversation(hold, Step(Text(f"{tid} done"), after_tool="write"), user=task_prompt(tid))
            for tid, hold in (("a", hold_a), ("b", hold_b))
        ),
        worker_writes("c", {"c.txt": "from c\n"}),
        reviewer_says(True, repeat=True),
    )
    # The user's checkout, mid-work: a change, a staged file, an untracked file.
    (git_repo / "README.md").write_text("# sample\nlocal edit, not committed\n")
    (git_repo / "staged.txt").write_text("staged, not committed\n")
    git(git_repo, "add", "staged.txt")
    (git_repo / "untracked.txt").write_text("nobody added me\n")
    before = _user_checkout(git_repo)
    events: list[dict[str, Any]] = []

    run = asyncio.create_task(_run("Write three files", git_repo, opencode_server, events))
    try:
        both_held = await _all_hanging(run, hold_a, hold_b)
    finally:
        hold_a.release()
        hold_b.release()
    report = await run

    assert both_held, "a and b were never both in a model call at the same time"
    assert report.status == "completed", report.to_markdown()
    assert {t.id: t.status for t in report.tasks} == {"a": "merged", "b": "merged", "c": "merged"}
    branch = report.integration_branch
    assert branch == f"lgoc/{report.run_id}/integration"
    assert _show(git_repo, branch, "a.txt") == "from a\n"
    assert _show(git_repo, branch, "b.txt") == "from b\n"
    assert _show(git_repo, branch, "c.txt") == "from c\n"
    # The run worked from the last commit: none of the local changes went in.
    assert sorted(_tree(git_repo, branch)) == ["README.md", "a.txt", "b.txt", "c.txt"]
    assert _show(git_repo, branch, "README.md") == "# sample\n"
    assert report.head_commit == git(git_repo, "rev-parse", branch).strip()
    # c started from the merged work of a and b.
    c_base = git(git_repo, "merge-base", branch, _by_id(report)["c"].commits[0]).strip()
    for task_id in ("a", "b"):
        merge_sha = _by_id(report)[task_id].merge_sha
        git(git_repo, "merge-base", "--is-ancestor", merge_sha, c_base)

    assert _user_checkout(git_repo) == before
    assert any(e["kind"] == "warning" and "uncommitted" in e["message"] for e in events)
    # Every merged task's check ran again on the merged work, and passed.
    assert [(c["command"], c["passed"]) for c in report.integration_checks] == [
        ("test -f a.txt", True),
        ("test -f b.txt", True),
        ("test -f a.txt && test -f b.txt && test -f c.txt", True),
    ]
    assert "3/3 checks pass" in markdown_of(events, "verified")
    assert report.left_behind == []
    assert json.loads(report.model_dump_json()) == json.loads(json.dumps(report.model_dump()))
    markdown = report.to_markdown()
    assert f"`{branch}`" in markdown
    assert f"git merge {branch}" in markdown
    assert report.take_it == f"git merge {branch}"


# -- 1b. work that passes alone and fails together -------------------------------


def _script_notes(model: ScriptedModelServer) -> None:
    model.script(
        worker_writes("a", {"notes/a.txt": "alpha\n"}),
        worker_writes("b", {"notes/b.txt": "beta\n"}),
        reviewer_says(True, repeat=True),
    )


async def test_a_check_that_fails_on_the_merged_work_is_reported(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    plan = clashing_notes_plan()
    commands = [t["checks"][0] for t in plan["tasks"]]
    _script_notes(model)
    events: list[dict[str, Any]] = []

    report = await _run("Write two notes", git_repo, opencode_server, events, plan=plan)

    assert {t.id: t.status for t in report.tasks} == {"a": "merged", "b": "merged"}
    assert all(c["passed"] for t in report.tasks for c in t.checks)
    assert [(c["command"], c["passed"]) for c in report.integration_checks] == [
        (commands[0], False),
        (commands[1], False),
    ]
    assert len(report.integration_failures) == 2
    verified = markdown_of(events, "verified")
    assert "0/2 checks pass" in verified
    assert commands[0] in verified
    assert "0/2 checks pass with all the merged work together" in report.to_markdown()
    assert "2 check(s) fail on" in markdown_of(events, "finished")
    # The checks ran in the run's integration worktree and left it clean; the
    # worktree is removed as usual.
    assert report.left_behind == []

    # Turned off, the merged work is not checked again.
    _script_notes(model)
    quiet = await _run(
        "Write two notes",
        git_repo,
        opencode_server,
        [],
        plan=plan,
        settings=RunSettings(verify_integration=False),
    )
    assert quiet.status == "completed"
    assert quiet.integration_checks == []


# -- 2. rework after a failing check --------------------------------------------


async def test_failing_check_is_reworked_with_the_feedback_and_the_check_output(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    check = 'grep -qx ok a.txt || { echo "a.txt must say ok, it says: $(cat a.txt)"; exit 1; }'
    plan = _plan("Make a.txt say ok", _task("a", ["a.txt"], [check]))
    feedback = "The check fails: a.txt must contain exactly the line ok."
    model.script(
        worker_writes("a", {"a.txt": "draft\n"}),
        reviewer_says(False, task_id="a", feedback=feedback, findings=["a.txt: wrong text"]),
        worker_writes("a", {"a.txt": "ok\n"}, user="needs more work"),
        reviewer_says(True, task_id="a"),
    )
    events: list[dict[str, Any]] = []

    report = await _run("Make a.txt say ok", git_repo, opencode_server, events, plan=plan)

    assert report.status == "completed", report.to_markdown()
    (task,) = report.tasks
    assert task.status == "merged"
    assert task.rounds == 1
    assert [c["passed"] for c in task.checks] == [True]
    assert _show(git_repo, report.integration_branch, "a.txt") == "ok\n"
    rework = [p for p in model.all_prompts() if "needs more work" in p]
    assert len(rework) == 1
    assert feedback in rework[0]
    # ... in the worker's own session, which still holds its first prompt.
    (worker_session,) = [
        prompts for prompts in model.prompts().values() if prompts[0].startswith("# Task `a`: ")
    ]
    assert worker_session == [worker_session[0], rework[0]]
    assert "a.txt: wrong text" in rework[0]
    assert check in rework[0]
    assert "a.txt must say ok, it says: draft" in rework[0]
    assert _kinds(events, "a") == [
        "dispatched",
        "checked",
        "rework",
        "checked",
        "approved",
        "merged",
    ]


async def test_an_approval_with_a_failing_check_is_reworked_with_the_failure_not_the_approval(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    check = 'grep -qx ok a.txt || { echo "a.txt must say ok, it says: $(cat a.txt)"; exit 1; }'
    plan = _plan("Make a.txt say ok", _task("a", ["a.txt"], [check]))
    approval = "Wrote a.txt as asked; nothing to change."
    model.script(
        worker_writes("a", {"a.txt": "draft\n"}),
        reviewer_says(True, task_id="a", feedback=approval),
        worker_writes("a", {"a.txt": "ok\n"}, user="needs more work"),
        reviewer_says(True, task_id="a"),
    )
    events: list[dict[str, Any]] = []

    report = await _run("Make a.txt say ok", git_repo, opencode_server, events, plan=plan)

    assert report.status == "completed", report.to_markdown()
    assert report.tasks[0].rounds == 1
    (rework,) = [p for p in model.all_prompts() if "needs more work" in p]
    assert check in rework
    assert "(exit 1)" in rework
    assert "a.txt must say ok, it says: draft" in rework  # the check's output
    assert approval not in rework
    assert "Reviewer's feedback" not in rework
    (note,) = [e["message"] for e in events if e["kind"] == "rework"]
    assert "1 acceptance check(s) fail" in note
    assert approval not in note


# -- 3. a merge conflict between parallel tasks ---------------------------------


async def test_conflicting_parallel_tasks_are_resolved_by_the_worker_and_both_merged(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    resolved = "from a\nfrom b\n"
    plan = _plan(
        "Both tasks write shared.txt",
        _task("a", ["shared.txt"], ["grep -qx 'from a' shared.txt"]),
        _task("b", ["shared.txt"], ["grep -qx 'from b' shared.txt"]),
    )
    model.script(
        worker_writes("a", {"shared.txt": "from a\n"}),
        worker_writes("b", {"shared.txt": "from b\n"}),
        # Whichever task merges second is asked to resolve the conflict.
        Conversation(
            ToolCall.read("shared.txt"),
            Step(ToolCall.write("shared.txt", resolved), after_tool="read"),
            Step(Text("Kept both lines."), after_tool="write"),
            user="resolve a merge conflict",
        ),
        reviewer_says(True, repeat=True),
    )
    run_id = "conflict-run"
    branch = f"lgoc/{run_id}/integration"
    events: list[dict[str, Any]] = []
    on_branch_when_reported: dict[str, bool] = {}

    def on_event(record: dict[str, Any]) -> None:
        events.append(record)
        if record["kind"] == "merged":  # is the task's work on the branch already?
            task_branch = f"lgoc/{run_id}/{record['task']}"
            ancestor = ["merge-base", "--is-ancestor", task_branch, branch]
            on_branch = subprocess.run(["git", "-C", str(git_repo), *ancestor], check=False)
            on_branch_when_reported[record["task"]] = on_branch.returncode == 0

    report = await aorchestrate(
        "Both tasks write shared.txt",
        repo=git_repo,
        plan=plan,
        run_id=run_id,
        server_url=opencode_server.url,
        password=opencode_server.password,
        on_event=on_event,
    )

    assert report.status == "completed", report.to_markdown()
    assert report.integration_branch == branch
    assert _show(git_repo, branch, "shared.txt") == resolved
    conflicted = [e["task"] for e in events if e["kind"] == "conflict"]
    assert len(conflicted) == 1
    second = conflicted[0]
    first = "b" if second == "a" else "a"
    tasks = _by_id(report)
    assert tasks[first].rounds == 0
    assert tasks[second].rounds == 1
    assert all(t.status == "merged" for t in tasks.values())

    # The worker was prompted on its branch with the integration head merged in
    # and the conflict markers in the file, and saw them.
    (resolution,) = [p for p in model.all_prompts() if "resolve a merge conflict" in p]
    assert f"# Task `{second}`" in resolution
    assert "shared.txt" in resolution
    read_results = _tool_outputs(model, "read")
    assert len(read_results) == 1
    assert "<<<<<<<" in read_results[0]
    assert f">>>>>>> {branch}" in read_results[0]
    git(git_repo, "merge-base", "--is-ancestor", tasks[first].merge_sha, tasks[second].merge_sha)
    second_branch = tasks[second].branch
    git(git_repo, "merge-base", "--is-ancestor", tasks[first].merge_sha, second_branch)

    # Merged only after its merge: in the events, in git, and in every checkpoint.
    assert _kinds(events, first) == ["dispatched", "checked", "approved", "merged"]
    assert _kinds(events, second) == [
        "dispatched",
        "checked",
        "approved",
        "conflict",
        "checked",
        "approved",
        "merged",
    ]
    assert on_branch_when_reported == {first: True, second: True}
    for task in tasks.values():  # each merge commit merges the task's final work
        git(git_repo, "merge-base", "--is-ancestor", task.merge_sha, branch)
        task_head = git(git_repo, "rev-parse", task.branch).strip()
        assert git(git_repo, "rev-parse", f"{task.merge_sha}^2").strip() == task_head
    history = await _checkpointed_history(git_repo, report.run_id)
    assert history[-1]["report"] == report.model_dump(mode="json")
    for values in history:
        for task_id, record in (values.get("tasks") or {}).items():
            if record.get("status") == "merged":
                assert record["merge_sha"] == tasks[task_id].merge_sha
    assert _status_trail(history, second) == [
        "pending",
        "working",
        "reviewing",
        "approved",
        "working",
        "reviewing",
        "approved",
        "merged",
    ]


# -- 4. rework rounds exhausted ------------------------------------------------


async def test_task_out_of_rework_rounds_fails_blocks_its_dependent_and_keeps_its_branch(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    plan = _plan(
        "A lexer, a parser on top of it, and docs",
        _task("lexer", ["lexer.txt"], ["test -f lexer.txt"]),
        _task("docs", ["docs.txt"], ["test -f docs.txt"]),
        _task("parser", ["parser.txt"], ["test -f parser.txt"], depends_on=["lexer"]),
    )
    feedback = "lexer.txt must list the tokens"
    model.script(
        worker_writes("lexer", {"lexer.txt": "first try\n"}),
        worker_writes("lexer", {"lexer.txt": "second try\n"}, user="needs more work"),
        worker_writes("docs", {"docs.txt": "docs\n"}),
        reviewer_says(False, task_id="lexer", feedback=feedback, repeat=True),
        reviewer_says(True, task_id="docs"),
    )
    events: list[dict[str, Any]] = []

    report = await _run(
        plan["objective"],
        git_repo,
        opencode_server,
        events,
        plan=plan,
        settings=RunSettings(max_rework_rounds=1),
    )

    assert report.status == "partial", report.to_markdown()
    tasks = _by_id(report)
    assert {t: r.status for t, r in tasks.items()} == {
        "lexer": "failed",
        "docs": "merged",
        "parser": "blocked",
    }
    lexer, parser = tasks["lexer"], tasks["parser"]
    assert lexer.rounds == 1
    assert "1 rework round" in lexer.reason
    assert feedback in lexer.reason
    assert "lexer" in parser.reason
    assert "blocked" in parser.reason
    assert len([p for p in model.all_prompts() if p.startswith("# Review task `lexer`")]) == 2
    assert not any(p.startswith("# Task `parser`") for p in model.all_prompts())

    integration = report.integration_branch
    assert sorted(_tree(git_repo, integration)) == ["README.md", "docs.txt"]
    # The lexer's work is kept: its branch holds both attempts, and the report says so.
    assert _show(git_repo, lexer.branch, "lexer.txt") == "second try\n"
    assert len(lexer.commits) == 2
    assert git(git_repo, "rev-list", "--count", f"{integration}..{lexer.branch}").strip() == "2"
    assert f"branch {lexer.branch} (2 unmerged commit(s))" in report.left_behind
    assert f"worktree {lexer.worktree} ({lexer.branch})" in report.left_behind
    assert git(Path(lexer.worktree), "status", "--porcelain") == ""  # nothing uncommitted lost
    assert not parser.branch
    assert not git(git_repo, "branch", "--list", f"lgoc/{report.run_id}/parser").strip()
    markdown = report.to_markdown()
    assert lexer.branch in markdown
    assert parser.reason in markdown


# -- 5. git as workers and users have it ------------------------------------------


async def test_a_worker_that_commits_on_a_branch_of_its_own_has_that_commit_merged(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    command = (
        "git checkout -b x && echo y > f && git add f && "
        "git -c user.name=worker -c user.email=worker@example.invalid commit -q -m y"
    )
    plan = _plan("Write f", _task("t", ["f"], ["grep -qx y f"]))
    model.script(
        Conversation(
            ToolCall.bash(command, description="commit f on a branch of its own"),
            Step(Text("Committed f."), after_tool="bash"),
            user=task_prompt("t"),
        ),
        reviewer_says(True, task_id="t"),
    )
    events: list[dict[str, Any]] = []

    report = await _run("Write f", git_repo, opencode_server, events, plan=plan)

    assert report.status == "completed", report.to_markdown()
    (task,) = report.tasks
    branch = report.integration_branch
    assert _show(git_repo, branch, "f") == "y\n"
    worker_commit = git(git_repo, "rev-parse", "x").strip()  # the worker's branch, left alone
    assert git(git_repo, "log", "-1", "--format=%an %s", worker_commit) == "worker y\n"
    assert worker_commit in task.commits
    git(git_repo, "merge-base", "--is-ancestor", worker_commit, task.branch)
    assert git(git_repo, "rev-parse", f"{task.merge_sha}^2").strip() == worker_commit
    (note,) = [e for e in events if e["kind"] == "reattached"]
    assert note["how"] == "fast_forward"
    assert "branch x" in note["message"]
    assert report.left_behind == []


async def test_a_refresh_merge_the_worker_aborts_is_started_again_and_the_task_completes(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    resolved = "from a\nfrom b\n"
    plan = _plan(
        "Both tasks write shared.txt",
        _task("a", ["shared.txt"], ["grep -qx 'from a' shared.txt"]),
        _task("b", ["shared.txt"], ["grep -qx 'from b' shared.txt"]),
    )
    conflict = "resolve a merge conflict"
    model.script(
        worker_writes("a", {"shared.txt": "from a\n"}),
        worker_writes("b", {"shared.txt": "from b\n"}),
        # Whichever task merges second is asked to resolve the conflict: it
        # aborts the merge instead, and resolves when asked again.
        Conversation(
            ToolCall.bash("git merge --abort", description="start over"),
            Step(Text("I aborted the merge."), after_tool="bash"),
            Step(ToolCall.read("shared.txt"), user=conflict, after_tool=False),
            Step(ToolCall.write("shared.txt", resolved), after_tool="read"),
            Step(Text("Kept both lines."), after_tool="write"),
            user=conflict,
        ),
        reviewer_says(True, repeat=True),
    )
    events: list[dict[str, Any]] = []

    report = await _run(plan["objective"], git_repo, opencode_server, events, plan=plan)

    assert report.status == "completed", report.to_markdown()
    branch = report.integration_branch
    assert _show(git_repo, branch, "shared.txt") == resolved
    (second,) = {e["task"] for e in events if e["kind"] == "conflict"}
    tasks = _by_id(report)
    assert tasks[second].rounds == 2
    assert len([p for p in model.all_prompts() if conflict in p]) == 2
    undone = [e["message"] for e in events if e["kind"] == "conflict" and "undone" in e["message"]]
    assert len(undone) == 1
    assert "started again: conflicts in shared.txt" in undone[0]
    assert "<<<<<<<" in _tool_outputs(model, "read")[0]  # the markers were back
    task_head = git(git_repo, "rev-parse", tasks[second].branch).strip()
    assert git(git_repo, "rev-parse", f"{tasks[second].merge_sha}^2").strip() == task_head


async def test_the_planner_reads_a_clean_checkout_of_head_not_the_users_working_tree(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path
) -> None:
    model.script(
        Conversation(
            ToolCalls(ToolCall.read("."), ToolCall.read("README.md")),
            Step(StructuredOutput(one_task_plan()), after_tool="read", tool="StructuredOutput"),
            system=PLANNER_PROMPT_HEADER,
            name="planner: looks at the files, then plans",
        ),
        worker_writes("one", {"one.txt": "1\n"}),
        reviewer_says(True, task_id="one"),
    )
    # The user's checkout, mid-work: a change, a staged file, an untracked file.
    (git_repo / "README.md").write_text("# sample\nlocal edit, not committed\n")
    (git_repo / "staged.txt").write_text("staged, not committed\n")
    git(git_repo, "add", "staged.txt")
    (git_repo / "untracked.txt").write_text("nobody added me\n")
    before = _user_checkout(git_repo)
    events: list[dict[str, Any]] = []

    report = await _run("one file", git_repo, opencode_server, events, run_id="clean-plan")

    assert report.status == "completed", report.to_markdown()
    checkout = git_repo / ".git" / "langgraph-opencode" / "runs" / "clean-plan" / "planner"
    listed, readme = _tool_outputs(model, "read")
    assert f"<path>{checkout}</path>" in listed  # the session's directory
    assert "\n.git\nREADME.md\n\n(2 entries)" in listed  # no staged.txt, no untracked.txt
    assert "# sample" in readme
    assert "local edit" not in readme
    (planner_prompt,) = [p for p in model.all_prompts() if "Files tracked at HEAD" in p]
    assert "README.md" in planner_prompt
    assert "staged.txt" not in planner_prompt
    assert _user_checkout(git_repo) == before
    assert not checkout.exists()  # removed with the run's other worktrees
    assert report.left_behind == []


# -- 11. the graph's shape ------------------------------------------------------


def test_graph_shape_matches_the_snapshot() -> None:
    drawn = build_graph().compile().get_graph().draw_mermaid()
    snapshot = SNAPSHOTS / "graph.mmd"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        snapshot.parent.mkdir(exist_ok=True)
        snapshot.write_text(drawn)
    assert snapshot.is_file(), f"{snapshot} is missing: regenerate it with UPDATE_SNAPSHOTS=1"
    assert drawn == snapshot.read_text(), (
        "the graph's shape changed; if on purpose, regenerate the snapshot with "
        "UPDATE_SNAPSHOTS=1 and review the diff"
    )
