"""The merge node on its own, against real git: what it does with state a crash left behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.nodes._prompts import prompt_text
from langgraph_opencode.nodes.merge import merge
from langgraph_opencode.testing import git
from langgraph_opencode.tools.git import GitRun, Repo


async def _commit_task(run: GitRun, task_id: str, files: dict[str, str]) -> str:
    worktree = await run.create_task_worktree(task_id)
    for name, text in files.items():
        (worktree.path / name).write_text(text)
    committed = await run.commit_all(task_id, f"{task_id}: work")
    assert committed is not None
    return str(worktree.path)


def _plan() -> dict[str, Any]:
    def task(task_id: str) -> dict[str, Any]:
        return {
            "id": task_id,
            "title": f"Edit the README ({task_id})",
            "instructions": "Rewrite README.md",
            "depends_on": [],
            "files": ["README.md"],
            "checks": ["test -f README.md"],
        }

    return {"objective": "two README edits", "summary": "", "tasks": [task("a"), task("b")]}


async def test_a_refresh_left_by_a_crash_is_undone_and_the_conflict_sent_back_again(
    git_repo: Path,
) -> None:
    run = (await Repo.open(git_repo)).run("crash-refresh")
    worktrees = {
        "a": await _commit_task(run, "a", {"README.md": "# from a\n"}),
        "b": await _commit_task(run, "b", {"README.md": "# from b\n"}),
    }
    await run.merge("a")
    b_head = git(Path(worktrees["b"]), "rev-parse", "HEAD").strip()
    # The lost step: b's merge conflicted, the integration branch was merged
    # into b's worktree (markers and all), and the process died before that
    # was checkpointed. The checkpoint still says b is approved.
    assert (await run.refresh("b")).conflicts == ("README.md",)
    state: dict[str, Any] = {
        "run_id": "crash-refresh",
        "repo": str(git_repo),
        "plan": _plan(),
        "tasks": {
            "a": {"id": "a", "status": "merged", "worktree": worktrees["a"]},
            "b": {
                "id": "b",
                "status": "approved",
                "round": 0,
                "worktree": worktrees["b"],
                "worker_session": "ses_b",
            },
        },
    }
    events: list[Any] = []

    update = await merge(  # type: ignore[arg-type]
        state, Runtime(context=RunSettings(), stream_writer=events.append)
    )

    b = update["tasks"]["b"]
    assert b["status"] == "working", b.get("reason")
    assert b["round"] == 1
    assert b["refreshing"] is True
    job = update["jobs"]["task:b"]
    assert job["session_id"] == "ses_b"
    # The prompt names the conflicting file when it is sent.
    text = await prompt_text(
        {**state, "tasks": {**state["tasks"], "b": {**state["tasks"]["b"], **b}}},
        "task:b",
        job,
        diff_chars=1000,
    )  # type: ignore[arg-type]
    assert "README.md" in text
    assert [e["event"]["kind"] for e in events] == ["conflict"]
    # b's worktree holds the refresh merge again, on top of b's own commit.
    assert git(Path(worktrees["b"]), "rev-parse", "-q", "--verify", "MERGE_HEAD").strip()
    assert git(Path(worktrees["b"]), "rev-parse", "HEAD").strip() == b_head
    assert "<<<<<<<" in (Path(worktrees["b"]) / "README.md").read_text()


async def test_tasks_merged_before_a_crash_in_the_merge_loop_keep_their_own_merge_commits(
    git_repo: Path,
) -> None:
    run = (await Repo.open(git_repo)).run("crash-merges")
    worktrees = {t: await _commit_task(run, t, {f"{t}.txt": f"{t}\n"}) for t in ("a", "b", "c")}
    # The lost step: the merge node merged a and b, and the process died
    # before it returned; the checkpoint still says all three are approved.
    lost = {t: (await run.merge(t, message=f"Merge task {t}")).sha for t in ("a", "b")}
    plan = {
        "objective": "three files",
        "summary": "",
        "tasks": [
            {
                "id": t,
                "title": f"Write {t}",
                "instructions": f"Create {t}.txt",
                "depends_on": [],
                "files": [f"{t}.txt"],
                "checks": [],
            }
            for t in ("a", "b", "c")
        ],
    }
    state: dict[str, Any] = {
        "run_id": "crash-merges",
        "repo": str(git_repo),
        "plan": plan,
        "tasks": {
            t: {"id": t, "status": "approved", "worktree": worktrees[t], "worker_session": "s"}
            for t in ("a", "b", "c")
        },
    }

    update = await merge(  # type: ignore[arg-type]
        state, Runtime(context=RunSettings(), stream_writer=lambda _: None)
    )

    records = update["tasks"]
    assert {t: r["status"] for t, r in records.items()} == dict.fromkeys("abc", "merged")
    assert {t: records[t]["merge_sha"] for t in ("a", "b")} == lost
    for task_id, record in records.items():  # each merge commit merged the task's own branch
        task_head = git(git_repo, "rev-parse", run.task_branch(task_id)).strip()
        assert git(git_repo, "rev-parse", f"{record['merge_sha']}^2").strip() == task_head
    assert records["c"]["merge_sha"] == git(git_repo, "rev-parse", run.integration_branch).strip()
