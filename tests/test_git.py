"""The git toolkit and the check runner, against real git in temporary repositories."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import langgraph_opencode.tools.git as git_package
from _orchestrator_child import alive
from langgraph_opencode.api import aorchestrate
from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.errors import (
    ConfigurationError,
    GitError,
    GitTimeoutError,
    MergeConflict,
    RefreshAborted,
)
from langgraph_opencode.testing import (
    Conversation,
    ScriptedModelServer,
    Step,
    Text,
    ToolCall,
    one_task_plan,
    reviewer_says,
    task_prompt,
)
from langgraph_opencode.tools.checks import CheckRecord, run_check
from langgraph_opencode.tools.git import GitOperations, GitRun, Repo
from langgraph_opencode.tools.git._command import git_timeout
from langgraph_opencode.tools.opencode.server import OpenCodeServer

_TEST_IDENTITY = {
    "GIT_AUTHOR_NAME": "test user",
    "GIT_AUTHOR_EMAIL": "user@example.invalid",
    "GIT_COMMITTER_NAME": "test user",
    "GIT_COMMITTER_EMAIL": "user@example.invalid",
}


def _run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **_TEST_IDENTITY}
    cmd = ["git", "-C", str(repo), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)


def git(repo: Path, *args: str) -> str:
    """Run git as the test user (identity via env) and return stdout."""
    result = _run(repo, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(autouse=True)
def _hermetic_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No global or system git config, and no identity but the ones passed explicitly."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("AUTHOR", "COMMITTER"):
        for field in ("NAME", "EMAIL"):
            monkeypatch.delenv(f"GIT_{var}_{field}", raising=False)


def _snapshot(repo: Path) -> dict[str, object]:
    """Everything of the user's checkout that must survive a run unchanged."""
    files = {
        str(p.relative_to(repo)): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }
    return {
        "status": git(repo, "status", "--porcelain", "--untracked-files=all"),
        "head": git(repo, "rev-parse", "HEAD"),
        "branch": git(repo, "symbolic-ref", "HEAD"),
        "diff": git(repo, "diff"),
        "cached": git(repo, "diff", "--cached"),
        "files": files,
        "index": hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest(),
        "main": git(repo, "rev-parse", "refs/heads/main"),
    }


async def _task(run: GitRun, task_id: str, files: dict[str, str]) -> None:
    """Create a task worktree, write files in it and commit them."""
    wt = await run.create_task_worktree(task_id)
    for name, text in files.items():
        (wt.path / name).write_text(text)
    assert await run.commit_all(task_id, f"{task_id}: work") is not None


# --- the user's repository -------------------------------------------------------------


async def test_open_rejects_a_directory_that_is_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not a git repository"):
        await Repo.open(tmp_path)
    with pytest.raises(ConfigurationError, match="does not exist"):
        await Repo.open(tmp_path / "missing")


async def test_open_rejects_a_repository_without_commits(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet", "--initial-branch=main")
    with pytest.raises(ConfigurationError, match="no commits yet"):
        await Repo.open(tmp_path)


async def test_open_accepts_a_subdirectory_and_reports_the_root(git_repo: Path) -> None:
    (git_repo / "sub").mkdir()
    repo = await Repo.open(git_repo / "sub")
    top = Path(git(git_repo, "rev-parse", "--show-toplevel").strip())
    assert repo.root == top
    assert repo.common_dir == top / ".git"


async def test_status_reports_dirty_files_without_touching_the_index(git_repo: Path) -> None:
    (git_repo / "README.md").write_text("# changed\n")
    (git_repo / "staged.txt").write_text("staged\n")
    git(git_repo, "add", "staged.txt")
    (git_repo / "new.txt").write_text("untracked\n")
    before = _snapshot(git_repo)

    status = await (await Repo.open(git_repo)).status()

    assert status.branch == "main"
    assert status.head == git(git_repo, "rev-parse", "HEAD").strip()
    assert status.dirty
    assert dict((e.path, e.code) for e in status.entries) == {
        "README.md": " M",
        "staged.txt": "A ",
        "new.txt": "??",
    }
    assert _snapshot(git_repo) == before


async def test_status_of_a_clean_checkout(git_repo: Path) -> None:
    status = await (await Repo.open(git_repo)).status()
    assert not status.dirty
    assert status.files == ()


async def test_ids_are_validated(git_repo: Path) -> None:
    repo = await Repo.open(git_repo)
    for bad in ("", "a/b", "..", "a..b", "x.lock", "-x", "a b"):
        with pytest.raises(ConfigurationError, match="invalid run id"):
            repo.run(bad)
    run = repo.run("r1")
    with pytest.raises(ConfigurationError, match="reserved"):
        await run.create_task_worktree("integration")
    with pytest.raises(ConfigurationError, match="invalid task id"):
        await run.create_task_worktree("../escape")


# --- a full cycle leaves the user's checkout alone -------------------------------------


async def test_full_cycle_leaves_the_users_checkout_byte_identical(git_repo: Path) -> None:
    (git_repo / "README.md").write_text("# user's own edit, not committed\n")
    (git_repo / "notes.txt").write_text("user's untracked notes\n")
    (git_repo / "staged.txt").write_text("staged by the user\n")
    git(git_repo, "add", "staged.txt")
    before = _snapshot(git_repo)

    repo = await Repo.open(git_repo)
    run = repo.run("cycle")
    await _task(run, "a", {"a.txt": "a\n"})
    await _task(run, "b", {"README.md": "# from b\n"})
    await run.diff("a")
    await run.merge("a")
    await run.refresh("b")
    await run.merge("b")
    await run.remove_task_worktree("a", delete_branch=True)
    await run.remove_task_worktree("b")
    await run.remove_integration_worktree()
    await run.inventory()
    await repo.status()

    assert _snapshot(git_repo) == before
    integration = git(git_repo, "show", f"{run.integration_branch}:README.md")
    assert integration == "# from b\n"


async def test_git_variables_inherited_from_a_hook_do_not_redirect_commands(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _snapshot(git_repo)
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "stray-index"))
    monkeypatch.setenv("GIT_WORK_TREE", str(tmp_path))
    run = (await Repo.open(git_repo)).run("r1")
    await _task(run, "t1", {"t1.txt": "t1\n"})
    await run.merge("t1")
    monkeypatch.undo()
    assert not (tmp_path / "stray-index").exists()
    assert _snapshot(git_repo) == before
    assert "t1.txt" in git(git_repo, "ls-tree", "--name-only", "lgoc/r1/integration")


# --- branches and worktrees ------------------------------------------------------------


async def test_integration_branch_starts_at_head_and_is_kept(git_repo: Path) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    start = await run.ensure_integration_branch()
    assert start == git(git_repo, "rev-parse", "HEAD").strip()
    git(git_repo, "commit", "--quiet", "--allow-empty", "-m", "user moves on")
    assert await run.ensure_integration_branch() == start


async def test_a_git_run_is_the_git_operations_the_nodes_use(git_repo: Path) -> None:
    ops: GitOperations = (await Repo.open(git_repo)).run("r1")  # mypy checks the protocol
    head = git(git_repo, "rev-parse", "HEAD").strip()
    assert ops.repo_root == Path(git(git_repo, "rev-parse", "--show-toplevel").strip())
    assert await ops.integration_head() is None
    assert await ops.ensure_integration_branch() == head
    assert await ops.integration_head() == head
    tracked = git(git_repo, "ls-tree", "-r", "--name-only", head).splitlines()
    assert tracked
    assert await ops.tracked_files(head) == tracked
    (git_repo / "dirty.txt").write_text("not committed\n")
    assert [e.path for e in (await ops.repo_status()).entries] == ["dirty.txt"]


def test_the_git_layers_modules_import_each_other_without_a_cycle() -> None:
    prefix = "langgraph_opencode.tools.git."
    imports: dict[str, set[str]] = {}
    for file in Path(git_package.__file__).parent.glob("*.py"):
        tree = ast.parse(file.read_text())
        imports[file.stem] = {
            node.module.removeprefix(prefix)
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(prefix)
        }
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join((*path, module))}"
        if module not in done:
            for imported in imports.get(module, ()):
                visit(imported, (*path, module))
            done.add(module)

    for module in imports:
        visit(module, ())
    assert {"_command", "run", "repo", "protocol"} <= done


async def test_task_worktree_is_recreated_after_a_crash_without_losing_commits(
    git_repo: Path,
) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    first = await run.create_task_worktree("t1")
    assert first.created
    assert first.path == run.run_dir / "worktrees" / "t1"
    assert first.branch == "lgoc/r1/t1"
    (first.path / "work.txt").write_text("committed work\n")
    commit = await run.commit_all("t1", "t1: work")
    assert commit is not None

    again = await run.create_task_worktree("t1")
    assert (again.path, again.created, again.repaired) == (first.path, False, False)

    shutil.rmtree(first.path)  # the crash: the directory is gone, git still lists it
    repaired = await run.create_task_worktree("t1")
    assert (repaired.created, repaired.repaired) == (False, True)
    assert repaired.head == commit.sha
    assert (repaired.path / "work.txt").read_text() == "committed work\n"
    assert git(git_repo, "worktree", "list").count("lgoc/r1/t1") == 1

    # Branch kept, worktree unregistered (e.g. removed by hand): re-added as well.
    shutil.rmtree(repaired.path)
    git(git_repo, "worktree", "prune")
    readded = await run.create_task_worktree("t1")
    assert readded.head == commit.sha
    assert (readded.path / "work.txt").exists()


async def test_worktree_path_with_other_content_is_refused(git_repo: Path, tmp_path: Path) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("not ours\n")
    with pytest.raises(GitError, match="not empty"):
        await run.create_task_worktree("t1", path=occupied)
    assert (occupied / "keep.txt").read_text() == "not ours\n"
    custom = await run.create_task_worktree("t1", path=tmp_path / "custom")
    assert custom.path == (tmp_path / "custom").resolve()
    assert await run.task_path("t1") == custom.path


async def test_a_run_branch_checked_out_by_the_user_is_not_taken_over(git_repo: Path) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    await run.ensure_integration_branch()
    git(git_repo, "checkout", "--quiet", run.integration_branch)
    await _task(run, "t1", {"t1.txt": "t1\n"})
    with pytest.raises(GitError, match="does not own"):
        await run.merge("t1")
    assert git(git_repo, "status", "--porcelain") == ""


# --- commits and diffs -----------------------------------------------------------------


async def test_commit_all_commits_everything_and_reports_ignored_files(git_repo: Path) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    wt = await run.create_task_worktree("t1")
    assert await run.commit_all("t1", "nothing yet") is None

    (wt.path / ".gitignore").write_text("build/\n*.log\n")
    (wt.path / "src.py").write_text("print('hi')\n")
    (wt.path / "README.md").unlink()
    (wt.path / "build").mkdir()
    (wt.path / "build" / "out.bin").write_text("artifact\n")
    (wt.path / "debug.log").write_text("log\n")
    commit = await run.commit_all("t1", "t1: add src")

    assert commit is not None
    assert set(commit.files) == {".gitignore", "src.py", "README.md"}
    assert set(commit.ignored) == {"build/", "debug.log"}
    assert commit.sha == git(wt.path, "rev-parse", "HEAD").strip()
    author = git(wt.path, "log", "-1", "--format=%an <%ae>|%cn <%ce>").strip()
    me = "langgraph-opencode <langgraph-opencode@localhost>"
    assert author == f"{me}|{me}"
    assert git(wt.path, "status", "--porcelain") == ""
    assert await run.commit_all("t1", "again") is None


async def test_diff_against_the_merge_base_with_a_size_cap(git_repo: Path) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    await _task(run, "t1", {"big.txt": "".join(f"line {i}\n" for i in range(2000))})
    await _task(run, "t2", {"other.txt": "other\n"})
    await run.merge("t2")  # integration moves on; t1's diff must not include t2's work

    diff = await run.diff("t1")
    assert diff.files == ("big.txt",)
    assert "big.txt" in diff.stat
    assert "+line 1999" in diff.text
    assert not diff.truncated
    assert "other.txt" not in diff.text

    small = await run.diff("t1", max_chars=500)
    assert small.truncated
    assert len(small.text) <= 500
    assert small.text.endswith("\n")
    assert small.total_chars == len(diff.text)


# --- merging ---------------------------------------------------------------------------


async def test_parallel_tasks_writing_different_files_both_merge(git_repo: Path) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    await asyncio.gather(
        _task(run, "t1", {"one.txt": "one\n"}), _task(run, "t2", {"two.txt": "two\n"})
    )
    results = await asyncio.gather(run.merge("t1"), run.merge("t2"))

    assert {r.task_id for r in results} == {"t1", "t2"}
    assert not any(r.already_merged for r in results)
    tree = git(git_repo, "ls-tree", "--name-only", run.integration_branch).split()
    assert set(tree) == {"README.md", "one.txt", "two.txt"}
    log = git(git_repo, "log", "--merges", "--format=%s", run.integration_branch)
    assert "Merge task t1" in log
    assert "Merge task t2" in log

    again = await run.merge("t1")  # e.g. repeated after a crash
    assert again.already_merged
    (first,) = [r for r in results if r.task_id == "t1"]
    assert again.sha == first.sha  # its own merge commit, whichever merged last
    assert await run.is_merged("t1")
    assert await run.is_merged("t2")


async def test_a_conflict_resolved_by_editing_alone_can_be_finished(git_repo: Path) -> None:
    # Agents resolve conflicts by editing files; they do not run `git add`.
    run = (await Repo.open(git_repo)).run("r1")
    await _task(run, "a", {"README.md": "# from a\n"})
    await _task(run, "b", {"README.md": "# from b\n"})
    await run.merge("a")
    refresh = await run.refresh("b")
    assert refresh.conflicts == ("README.md",)
    wt = await run.task_path("b")
    (wt / "README.md").write_text("# from a and b\n")

    finished = await run.finish_refresh("b")

    assert git(git_repo, "show", f"{finished.head}:README.md") == "# from a and b\n"
    merged = await run.merge("b")
    assert git(git_repo, "show", f"{merged.sha}:README.md") == "# from a and b\n"


async def test_a_merge_killed_half_way_is_redone_on_the_next_merge(git_repo: Path) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    await _task(run, "a", {"a.txt": "a\n"})
    await _task(run, "b", {"b.txt": "b\n"})
    await run.merge("a")
    # What a git merge killed with the orchestrator leaves: a lock file and
    # half-written files in the run's own integration worktree.
    gitdir = Path(git(run.integration_path, "rev-parse", "--absolute-git-dir").strip())
    (gitdir / "index.lock").write_text("")
    (run.integration_path / "b.txt").write_text("half\n")
    (run.integration_path / "a.txt").write_text("garbled\n")

    merged = await run.merge("b")

    assert git(git_repo, "show", f"{merged.sha}:b.txt") == "b\n"
    assert git(git_repo, "show", f"{merged.sha}:a.txt") == "a\n"
    assert git(run.integration_path, "status", "--porcelain", "--untracked-files=all") == ""


async def test_locks_left_in_a_task_worktree_by_a_killed_git_are_cleared(git_repo: Path) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    await _task(run, "a", {"a.txt": "a\n"})
    wt = await run.task_path("a")
    # What a `git add` or `git commit` killed with the orchestrator leaves.
    gitdir = Path(git(wt, "rev-parse", "--absolute-git-dir").strip())
    stale = [
        gitdir / "index.lock",
        gitdir / "HEAD.lock",
        git_repo / ".git/refs/heads/lgoc/r1/a.lock",
    ]
    for lock in stale:
        lock.write_text("")
    (wt / "a.txt").write_text("a, v2\n")

    committed = await run.commit_all("a", "a: more")

    assert committed is not None
    assert git(git_repo, "show", "lgoc/r1/a:a.txt") == "a, v2\n"
    assert [lock for lock in stale if lock.exists()] == []


def _hold_index_lock(worktree: Path, release: Path) -> subprocess.Popen[bytes]:
    """A `git commit -a` in ``worktree`` whose editor waits for ``release``: it holds index.lock."""
    (worktree / "README.md").write_text("# edited while git commits\n")
    editor = f"while [ ! -e {release} ]; do sleep 0.05; done; true"
    return subprocess.Popen(
        ["git", "commit", "-a"],
        cwd=worktree,
        env={**os.environ, **_TEST_IDENTITY, "GIT_EDITOR": editor},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_a_lock_that_a_running_git_holds_is_left_alone(
    git_repo: Path, tmp_path: Path
) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    await _task(run, "a", {"a.txt": "a\n"})
    await _task(run, "b", {"b.txt": "b\n"})
    await run.merge("a")
    release = tmp_path / "release"
    for worktree, act in [
        (await run.task_path("b"), lambda: run.commit_all("b", "b: more")),
        (run.integration_path, lambda: run.merge("b")),
    ]:
        lock = Path(git(worktree, "rev-parse", "--absolute-git-dir").strip()) / "index.lock"
        holder = _hold_index_lock(worktree, release)
        try:
            deadline = time.monotonic() + 60
            while not lock.exists():
                assert holder.poll() is None, "git commit ended before it took the lock"
                assert time.monotonic() < deadline, "git commit took no lock within 60 s"
                await asyncio.sleep(0.02)

            with pytest.raises(GitError, match=r"index\.lock"):
                await act()
            assert lock.exists()
        finally:
            release.touch()
            await asyncio.to_thread(holder.wait, 60)
            release.unlink()
        git(worktree, "checkout", "--", "README.md")
    assert (await run.merge("b")).files == ("b.txt",)


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
async def test_a_lock_open_in_another_process_is_kept_until_it_is_closed(
    git_repo: Path, tmp_path: Path
) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    await _task(run, "a", {"a.txt": "a\n"})
    wt = await run.task_path("a")
    lock = Path(git(wt, "rev-parse", "--absolute-git-dir").strip()) / "index.lock"
    lock.write_text("")
    release = tmp_path / "release"
    # Open from outside the worktree: the open file alone says it is held.
    holder = await asyncio.create_subprocess_shell(
        f"exec 3<{lock}; echo open; while [ ! -e {release} ]; do sleep 0.05; done",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
    )
    assert holder.stdout is not None
    assert await asyncio.wait_for(holder.stdout.readline(), 60) == b"open\n"
    (wt / "a.txt").write_text("a, v2\n")

    with pytest.raises(GitError, match=r"index\.lock"):
        await run.commit_all("a", "a: more")
    assert lock.exists()

    release.touch()
    await asyncio.wait_for(holder.wait(), 60)
    assert await run.commit_all("a", "a: more") is not None
    assert not lock.exists()


async def test_a_conflicting_merge_is_aborted_and_the_task_branch_kept(git_repo: Path) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    await _task(run, "a", {"README.md": "# from a\n"})
    await _task(run, "b", {"README.md": "# from b\n", "b.txt": "b\n"})
    b_head = git(git_repo, "rev-parse", "lgoc/r1/b").strip()
    merged_a = await run.merge("a")

    with pytest.raises(MergeConflict) as caught:
        await run.merge("b")

    assert caught.value.paths == ("README.md",)
    assert "lgoc/r1/b" in str(caught.value)
    assert git(run.integration_path, "status", "--porcelain", "--untracked-files=all") == ""
    assert not (run.integration_path / ".git").is_dir()  # a linked worktree, not a clone
    assert git(git_repo, "rev-parse", run.integration_branch).strip() == merged_a.sha
    assert git(git_repo, "rev-parse", "lgoc/r1/b").strip() == b_head
    assert not await run.is_merged("b")


async def test_merge_refuses_a_task_with_uncommitted_work(git_repo: Path) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    await _task(run, "t1", {"t1.txt": "t1\n"})
    (await run.task_path("t1") / "late.txt").write_text("not committed\n")
    with pytest.raises(GitError, match="uncommitted changes"):
        await run.merge("t1")
    await run.commit_all("t1", "late")
    assert (await run.merge("t1")).files == ("late.txt", "t1.txt")


async def test_a_merge_interrupted_by_a_crash_is_cleared_first(git_repo: Path) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    await _task(run, "a", {"README.md": "# from a\n"})
    await _task(run, "b", {"README.md": "# from b\n"})
    await _task(run, "c", {"c.txt": "c\n"})
    await run.merge("a")
    # The process died in the middle of merging b: conflict markers, MERGE_HEAD.
    crashed = run.integration_path
    assert _run(crashed, "merge", "--quiet", "lgoc/r1/b").returncode != 0
    assert "<<<<<<<" in (crashed / "README.md").read_text()

    result = await run.merge("c")
    assert not result.already_merged
    assert (crashed / "README.md").read_text() == "# from a\n"
    assert git(crashed, "status", "--porcelain") == ""


async def test_merges_repeated_after_a_crash_each_report_their_own_merge_commit(
    git_repo: Path,
) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    for task_id in ("a", "b", "c"):
        await _task(run, task_id, {f"{task_id}.txt": f"{task_id}\n"})
    merged = {task_id: (await run.merge(task_id)).sha for task_id in ("a", "b", "c")}
    assert len(set(merged.values())) == 3
    # A task with no commit of its own lies on the integration branch's line itself.
    await run.create_task_worktree("empty")
    await _task(run, "d", {"d.txt": "d\n"})
    await run.merge("d")

    again = {task_id: await run.merge(task_id) for task_id in ("a", "b", "c", "empty")}

    assert all(result.already_merged for result in again.values())
    assert {t: again[t].sha for t in merged} == merged
    for task_id, sha in merged.items():
        task_head = git(git_repo, "rev-parse", run.task_branch(task_id)).strip()
        assert git(git_repo, "rev-parse", f"{sha}^2").strip() == task_head
    assert again["empty"].sha == git(git_repo, "rev-parse", run.task_branch("empty")).strip()


# --- conflict rework -------------------------------------------------------------------


async def test_refresh_leaves_markers_and_finishing_after_resolution_works(
    git_repo: Path,
) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    await _task(run, "a", {"README.md": "# from a\n"})
    await _task(run, "b", {"README.md": "# from b\n", "b.txt": "b\n"})
    await run.merge("a")
    with pytest.raises(MergeConflict):
        await run.merge("b")
    wt = await run.task_path("b")
    b_head = git(wt, "rev-parse", "HEAD").strip()

    refresh = await run.refresh("b")
    assert refresh.conflicts == ("README.md",)
    assert not refresh.clean
    assert refresh.head == b_head
    text = (wt / "README.md").read_text()
    assert "<<<<<<<" in text
    assert "# from a" in text
    assert "# from b" in text
    assert (await run.refresh("b")).conflicts == ("README.md",)  # asking again is harmless

    with pytest.raises(GitError, match="finish_refresh"):
        await run.commit_all("b", "too early")
    (wt / "README.md").write_text("<<<<<<< HEAD\nhalf resolved\n")
    git(wt, "add", "README.md")  # staged, but markers remain
    with pytest.raises(MergeConflict) as caught:
        await run.finish_refresh("b")
    assert caught.value.paths == ("README.md",)

    (wt / "README.md").write_text("# from a and b\n")
    finished = await run.finish_refresh("b")
    assert finished.clean
    assert finished.head != b_head
    assert (
        git(wt, "rev-parse", "HEAD^2").strip()
        == git(git_repo, "rev-parse", run.integration_branch).strip()
    )
    assert git(wt, "status", "--porcelain") == ""
    assert (await run.finish_refresh("b")).up_to_date

    merged = await run.merge("b")
    assert git(git_repo, "show", f"{merged.sha}:README.md") == "# from a and b\n"
    assert git(git_repo, "show", f"{merged.sha}:b.txt") == "b\n"


async def test_refresh_without_conflict_and_when_up_to_date(git_repo: Path) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    await _task(run, "a", {"a.txt": "a\n"})
    await _task(run, "b", {"b.txt": "b\n"})
    assert (await run.refresh("b")).up_to_date
    await run.merge("a")
    (await run.task_path("b") / "wip.txt").write_text("not committed\n")
    with pytest.raises(GitError, match="commit them"):
        await run.refresh("b")
    await run.commit_all("b", "wip")
    refreshed = await run.refresh("b")
    assert refreshed.clean
    assert not refreshed.up_to_date
    assert (await run.task_path("b") / "a.txt").read_text() == "a\n"


async def test_abort_refresh_restores_the_task_commit(git_repo: Path) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    await _task(run, "a", {"README.md": "# from a\n"})
    await _task(run, "b", {"README.md": "# from b\n"})
    await run.merge("a")
    assert (await run.refresh("b")).conflicts
    await run.abort_refresh("b")
    wt = await run.task_path("b")
    assert (wt / "README.md").read_text() == "# from b\n"
    assert git(wt, "status", "--porcelain") == ""


async def test_a_refresh_undone_by_merge_abort_is_told_apart_and_can_be_started_again(
    git_repo: Path,
) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    await _task(run, "a", {"README.md": "# from a\n"})
    await _task(run, "b", {"README.md": "# from b\n"})
    await run.merge("a")
    assert (await run.refresh("b")).conflicts == ("README.md",)
    wt = await run.task_path("b")
    git(wt, "merge", "--abort")  # the agent's own doing

    with pytest.raises(RefreshAborted, match="call refresh"):
        await run.finish_refresh("b")
    assert (await run.refresh("b")).conflicts == ("README.md",)
    (wt / "README.md").write_text("# from a and b\n")
    assert (await run.finish_refresh("b")).clean


# --- a worktree its agent switched to another branch -----------------------------------


async def _moved(git_repo: Path, *switch: str) -> tuple[GitRun, Path, str]:
    """Task ``t``'s worktree switched away by ``git switch`` args, with a commit made there."""
    run = (await Repo.open(git_repo)).run("r1")
    await _task(run, "t", {"t.txt": "t\n"})
    wt = await run.task_path("t")
    git(wt, "switch", "--quiet", *switch)
    (wt / "f.txt").write_text("y\n")
    git(wt, "add", "f.txt")
    git(wt, "commit", "--quiet", "-m", "y")
    return run, wt, git(wt, "rev-parse", "HEAD").strip()


@pytest.mark.parametrize("switch", [("-c", "x"), ("--detach",)], ids=["new branch", "detached"])
async def test_a_worktree_switched_away_is_put_back_on_its_branch_with_the_commits(
    git_repo: Path, switch: tuple[str, ...]
) -> None:
    run, wt, commit = await _moved(git_repo, *switch)
    with pytest.raises(GitError, match="has no worktree"):
        await run.task_path("t")  # found by branch: it looks gone
    (wt / "later.txt").write_text("not committed\n")

    moved = await run.reattach("t", wt)

    assert moved is not None
    assert moved.how == "fast_forward"
    assert moved.left_on == ("x" if "x" in switch else None)
    assert moved.committed is not None
    assert await run.task_path("t") == wt
    assert git(wt, "symbolic-ref", "--short", "HEAD").strip() == run.task_branch("t")
    assert git(wt, "status", "--porcelain") == ""
    head = git(git_repo, "rev-parse", run.task_branch("t")).strip()
    assert head == moved.head == moved.committed
    assert git(git_repo, "rev-parse", f"{head}^").strip() == commit
    assert git(git_repo, "show", f"{head}:later.txt") == "not committed\n"
    assert await run.reattach("t", wt) is None  # on its branch: nothing to do
    assert (await run.merge("t")).files == ("f.txt", "later.txt", "t.txt")


async def test_a_worktree_switched_to_an_older_commit_is_merged_back(git_repo: Path) -> None:
    run, wt, commit = await _moved(git_repo, "--detach", "HEAD~1")
    task_commit = git(git_repo, "rev-parse", run.task_branch("t")).strip()

    moved = await run.reattach("t", wt)

    assert moved is not None
    assert moved.how == "merged"
    head = git(git_repo, "rev-parse", run.task_branch("t")).strip()
    assert git(git_repo, "rev-parse", f"{head}^1", f"{head}^2").split() == [task_commit, commit]
    assert sorted(git(wt, "ls-files").split()) == ["README.md", "f.txt", "t.txt"]


async def test_a_switched_worktree_whose_commits_conflict_is_left_as_it_was(
    git_repo: Path,
) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    await _task(run, "t", {"README.md": "# from t\n"})
    wt = await run.task_path("t")
    git(wt, "switch", "--quiet", "-c", "x", "HEAD~1")
    (wt / "README.md").write_text("# from x\n")
    git(wt, "commit", "--quiet", "-am", "x")
    found = git(wt, "rev-parse", "HEAD").strip()

    with pytest.raises(GitError, match="conflict with"):
        await run.reattach("t", wt)

    assert git(wt, "symbolic-ref", "--short", "HEAD").strip() == "x"
    assert git(wt, "rev-parse", "HEAD").strip() == found
    assert git(wt, "status", "--porcelain") == ""


# --- the planner's checkout ------------------------------------------------------------


async def test_the_planner_checkout_is_head_without_the_users_changes(git_repo: Path) -> None:
    (git_repo / "README.md").write_text("local edit\n")
    (git_repo / "staged.txt").write_text("staged\n")
    git(git_repo, "add", "staged.txt")
    (git_repo / "untracked.txt").write_text("untracked\n")
    before = _snapshot(git_repo)
    run = (await Repo.open(git_repo)).run("r1")
    head = git(git_repo, "rev-parse", "HEAD").strip()

    checkout = await run.planner_checkout(head)

    assert checkout == run.planner_path
    assert checkout.is_relative_to(git_repo / ".git")
    assert sorted(p.name for p in checkout.iterdir()) == [".git", "README.md"]
    assert (checkout / "README.md").read_text() == "# sample\n"
    assert git(checkout, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(checkout, "rev-parse", "HEAD").strip() == head
    assert _run(checkout, "symbolic-ref", "-q", "HEAD").returncode == 1  # detached
    assert await run.planner_checkout(head) == checkout  # made once, then reused
    assert _snapshot(git_repo) == before

    assert await run.remove_planner_checkout()
    assert not checkout.exists()
    assert not await run.remove_planner_checkout()
    assert (await run.inventory()).worktrees == ()
    assert _snapshot(git_repo) == before


# --- clean-up --------------------------------------------------------------------------


async def test_clean_up_refuses_unmerged_or_dirty_work(git_repo: Path) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    await _task(run, "done", {"done.txt": "done\n"})
    await _task(run, "open", {"open.txt": "open\n"})
    await run.merge("done")
    open_head = git(git_repo, "rev-parse", "lgoc/r1/open").strip()
    open_path = await run.task_path("open")

    with pytest.raises(GitError, match="not merged"):
        await run.remove_task_worktree("open")
    with pytest.raises(GitError, match="not merged"):
        await run.remove_task_worktree("open", force=True, delete_branch=True)
    (open_path / "draft.txt").write_text("uncommitted\n")
    with pytest.raises(GitError, match="uncommitted changes"):
        await run.remove_task_worktree("open", force=True)
    assert (open_path / "draft.txt").read_text() == "uncommitted\n"

    done_path = await run.task_path("done")
    (done_path / "scratch.txt").write_text("untracked\n")
    with pytest.raises(GitError, match="untracked files"):
        await run.remove_task_worktree("done")
    (done_path / "scratch.txt").unlink()

    inventory = await run.inventory()
    assert [(b.name, b.merged, b.unmerged_commits) for b in inventory.branches] == [
        ("lgoc/r1/integration", True, 0),
        ("lgoc/r1/done", True, 0),
        ("lgoc/r1/open", False, 1),
    ]
    assert {(w.branch, w.dirty) for w in inventory.worktrees} == {
        ("lgoc/r1/integration", False),
        ("lgoc/r1/done", False),
        ("lgoc/r1/open", True),
    }

    assert await run.remove_task_worktree("done", delete_branch=True)
    assert not done_path.exists()
    (open_path / "draft.txt").unlink()
    assert await run.remove_task_worktree("open", force=True)
    assert not open_path.exists()
    assert git(git_repo, "rev-parse", "lgoc/r1/open").strip() == open_head
    assert not await run.remove_task_worktree("open", force=True)  # nothing left to remove

    left = await run.inventory()
    assert [b.name for b in left.branches] == ["lgoc/r1/integration", "lgoc/r1/open"]
    assert [w.branch for w in left.worktrees] == ["lgoc/r1/integration"]
    assert await run.remove_integration_worktree()
    assert not (await run.inventory()).worktrees


async def test_a_missing_worktree_is_unregistered_and_listed_as_missing(git_repo: Path) -> None:
    run = (await Repo.open(git_repo)).run("r1")
    wt = await run.create_task_worktree("t1")
    shutil.rmtree(wt.path)
    listed = (await run.inventory()).worktrees
    assert [(w.branch, w.missing, w.dirty) for w in listed] == [("lgoc/r1/t1", True, None)]
    assert await run.remove_task_worktree("t1")
    assert (await run.inventory()).worktrees == ()


# --- the user's hooks and filters ------------------------------------------------------

_HOOKS = (
    "post-checkout",
    "pre-commit",
    "commit-msg",
    "post-commit",
    "pre-merge-commit",
    "post-merge",
    "reference-transaction",
)


def _failing_hooks(repo: Path, marker: Path) -> None:
    """Hooks that leave a mark and fail (as git-lfs's do when git-lfs is missing)."""
    hooks = repo / ".git" / "hooks"
    for name in _HOOKS:
        hook = hooks / name
        hook.write_text(f"#!/bin/sh\necho {name} >> '{marker}'\nexit 1\n")
        hook.chmod(0o755)


def _group_members(pgid: int) -> list[int]:
    """The processes (not zombies) of process group ``pgid``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def _hanging_filter(repo: Path, pid_file: Path) -> None:
    """A smudge filter that writes its pid and process group, ignores SIGTERM and never ends."""
    (repo / ".gitattributes").write_text("*.bin filter=hang\n")
    (repo / "data.bin").write_text("payload\n")
    git(repo, "add", ".gitattributes", "data.bin")
    git(repo, "commit", "--quiet", "-m", "a file with a filter")
    script = (
        f"echo $$ $(cut -d' ' -f5 /proc/$$/stat) > '{pid_file}'; "
        "trap '' TERM; while :; do sleep 1; done"
    )
    git(repo, "config", "filter.hang.smudge", f'sh -c "{script}"')


def _has_text(path: Path) -> bool:
    return path.exists() and bool(path.read_text().strip())


async def _written(path: Path, within: float = 120.0) -> None:
    """Wait until another process has written ``path``."""
    deadline = time.monotonic() + within
    while not _has_text(path):
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} was not written within {within} s")
        await asyncio.sleep(0.05)


async def _group_gone(pgid: int, within: float = 60.0) -> bool:
    deadline = time.monotonic() + within
    while _group_members(pgid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_no_user_hook_runs_and_failing_hooks_fail_nothing(
    git_repo: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "hooks-ran.txt"
    _failing_hooks(git_repo, marker)
    run = (await Repo.open(git_repo)).run("r1")
    await _task(run, "a", {"a.txt": "a\n"})
    await _task(run, "b", {"b.txt": "b\n"})
    await run.merge("a")
    await run.refresh("b")
    await run.merge("b")
    async with run.integration_checkout() as checkout:
        assert (checkout / "b.txt").read_text() == "b\n"
    await run.remove_task_worktree("a", delete_branch=True)

    assert set(git(git_repo, "ls-tree", "--name-only", run.integration_branch).split()) == {
        "README.md",
        "a.txt",
        "b.txt",
    }
    assert not marker.exists(), marker.read_text()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
async def test_a_git_command_that_hangs_is_stopped_with_everything_it_started(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "filter.pid"
    _hanging_filter(git_repo, pid_file)
    # Long enough for a busy machine to start git and the filter.
    monkeypatch.setenv("LANGGRAPH_OPENCODE_GIT_TIMEOUT", "5")
    run = (await Repo.open(git_repo)).run("r1")

    async with asyncio.timeout(120):  # a hang guard: the loop must not wait for the filter
        with pytest.raises(GitTimeoutError) as caught:
            await run.create_task_worktree("t1")

    error = caught.value
    assert error.timeout == 5
    assert error.command[:3] == ("git", "worktree", "add")
    assert str(error).startswith(f"`git worktree` did not finish within 5 s in {git_repo}")
    assert "LANGGRAPH_OPENCODE_GIT_TIMEOUT" in str(error)
    pid, pgid = map(int, pid_file.read_text().split())
    assert pgid != os.getpgid(0)  # git ran in a process group of its own
    assert await _gone(pid)
    assert await _group_gone(pgid)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
async def test_a_cancelled_git_command_leaves_no_process_behind(
    git_repo: Path, tmp_path: Path
) -> None:
    pid_file = tmp_path / "filter.pid"
    _hanging_filter(git_repo, pid_file)
    run = (await Repo.open(git_repo)).run("r1")
    adding = asyncio.create_task(run.create_task_worktree("t1"))
    await _written(pid_file)  # the filter started, and never ends
    adding.cancel()
    async with asyncio.timeout(120):  # a hang guard
        with pytest.raises(asyncio.CancelledError):
            await adding

    pid, pgid = map(int, pid_file.read_text().split())
    assert await _gone(pid)
    assert await _group_gone(pgid)


def test_a_git_timeout_that_is_no_number_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGGRAPH_OPENCODE_GIT_TIMEOUT", "soon")
    with pytest.raises(ConfigurationError, match="LANGGRAPH_OPENCODE_GIT_TIMEOUT must be"):
        git_timeout()


# --- submodules ------------------------------------------------------------------------


def _with_submodule(repo: Path, tmp_path: Path) -> None:
    """Give ``repo`` a submodule ``sub`` from a local bare repository, then lose that one.

    Only the user's own clone of it (``.git/modules/sub``) is left, so a task
    worktree that gets ``sub`` got it from there, not from its URL.
    """
    library = tmp_path / "library"
    library.mkdir()
    git(library, "init", "--quiet", "--initial-branch=main")
    (library / "file").write_text("from the submodule\n")
    git(library, "add", "file")
    git(library, "commit", "--quiet", "-m", "library")
    upstream = tmp_path / "upstream.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(library), str(upstream))
    git(
        repo,
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "--quiet",
        str(upstream),
        "sub",
    )
    git(repo, "commit", "--quiet", "-m", "add sub")
    shutil.rmtree(upstream)
    shutil.rmtree(library)


async def test_a_task_worktree_gets_the_users_submodules_from_their_local_clones(
    git_repo: Path, tmp_path: Path
) -> None:
    _with_submodule(git_repo, tmp_path)
    config = (git_repo / ".git" / "config").read_bytes()
    run = (await Repo.open(git_repo)).run("r1")

    task = await run.create_task_worktree("t1")
    check = await run_check("test -f sub/file", task.path, timeout=120)
    assert check.passed, check.output
    assert (task.path / "sub" / "file").read_text() == "from the submodule\n"
    assert (await run.commit_all("t1", "t1: nothing")) is None  # the checkout is clean
    async with run.integration_checkout() as checkout:
        assert (checkout / "sub" / "file").is_file()
    assert await run.remove_task_worktree("t1")
    assert await run.remove_integration_worktree()
    assert (await run.inventory()).worktrees == ()
    assert (git_repo / ".git" / "config").read_bytes() == config


# --- the repository's shared files ----------------------------------------------------


def _shared_files(repo: Path) -> dict[str, tuple[bytes, int]]:
    """The bytes and modes of the git directory's config, hooks and info files."""
    gitdir = repo / ".git"
    paths = [
        gitdir / "config",
        *sorted((gitdir / "hooks").rglob("*")),
        *(gitdir / "info").glob("*"),
    ]
    return {
        str(p.relative_to(gitdir)): (p.read_bytes(), p.stat().st_mode) for p in paths if p.is_file()
    }


async def test_an_agents_change_to_the_shared_config_and_hooks_is_undone(
    git_repo: Path, tmp_path: Path
) -> None:
    before = _shared_files(git_repo)
    run = (await Repo.open(git_repo)).run("r1")
    task = await run.create_task_worktree("t1")
    # What an agent can do from its linked worktree: `git config` writes the shared config.
    git(task.path, "config", "core.hooksPath", str(tmp_path / "evil"))
    git(task.path, "config", "url.https://someone:tok3n-secret@example.com/.insteadOf", "x:")
    hooks = Path(git(task.path, "rev-parse", "--path-format=absolute", "--git-common-dir").strip())
    hook = hooks / "hooks" / "post-checkout"
    hook.write_text("#!/bin/sh\necho gotcha\n")
    hook.chmod(0o755)
    (hooks / "hooks" / "pre-commit.sample").write_text("changed\n")
    (hooks / "info" / "exclude").write_text("*\n")

    undone = await run.undo_shared_changes("t1")

    assert _shared_files(git_repo) == before
    assert undone is not None
    assert undone.files == (
        "config",
        "hooks/post-checkout",
        "hooks/pre-commit.sample",
        "info/exclude",
    )
    assert undone.config_keys == (
        "core.hookspath",
        "url.https://***@example.com/.insteadof",
    )
    assert "tok3n-secret" not in undone.summary
    assert "core.hookspath" in undone.summary
    # Nothing is lost: the changed versions are kept.
    assert (undone.kept / "hooks" / "post-checkout").read_text() == "#!/bin/sh\necho gotcha\n"
    assert str(tmp_path / "evil") in (undone.kept / "config").read_text()
    assert await run.undo_shared_changes("t1") is None


async def test_a_change_in_the_users_core_hooks_path_directory_is_undone(
    git_repo: Path, tmp_path: Path
) -> None:
    hooks = tmp_path / "team-hooks"
    hooks.mkdir()
    (hooks / "pre-push").write_text("#!/bin/sh\nexit 0\n")
    git(git_repo, "config", "core.hooksPath", str(hooks))
    run = (await Repo.open(git_repo)).run("r1")
    await run.create_task_worktree("t1")
    (hooks / "pre-push").write_text("#!/bin/sh\necho gotcha\n")
    (hooks / "post-checkout").write_text("#!/bin/sh\necho gotcha\n")

    undone = await run.undo_shared_changes("t1")

    assert undone is not None
    assert undone.files == ("core.hooksPath/post-checkout", "core.hooksPath/pre-push")
    assert sorted(p.name for p in hooks.iterdir()) == ["pre-push"]
    assert (hooks / "pre-push").read_text() == "#!/bin/sh\nexit 0\n"


@pytest.mark.opencode
@pytest.mark.usefixtures("no_blocking_calls")
async def test_a_workers_git_config_and_hook_are_undone_and_reported(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, git_repo: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "hook-ran"
    evil = tmp_path / "evil"
    # What README's `--allow 'bash:git *'` lets a worker do from its linked worktree.
    command = (
        f"git config core.hooksPath {evil} && "
        'hooks="$(git rev-parse --path-format=absolute --git-common-dir)/hooks" && '
        f"printf '#!/bin/sh\\ntouch {marker}\\n' > \"$hooks/post-checkout\" && "
        'chmod +x "$hooks/post-checkout" && echo one > one.txt'
    )
    model.script(
        Conversation(
            ToolCall.bash(command, description="write one.txt"),
            Step(Text("Wrote one.txt."), after_tool="bash"),
            user=task_prompt("one"),
        ),
        reviewer_says(True, repeat=True),
    )
    before = _shared_files(git_repo)
    events: list[dict[str, Any]] = []

    report = await aorchestrate(
        "write one.txt",
        repo=git_repo,
        plan=one_task_plan("one", file="one.txt"),
        server_url=opencode_server.url,
        password=opencode_server.password,
        settings=RunSettings(unmatched_permissions="allow"),
        on_event=events.append,
    )

    assert report.status == "completed", report.to_markdown()
    assert _shared_files(git_repo) == before
    git(git_repo, "checkout", "--quiet", "-b", "after-the-run")
    assert not marker.exists()  # the user's next checkout runs no hook of the agent's
    undone = [e for e in events if e["kind"] == "undone"]
    assert [(e["task"], e["files"], e["config_keys"]) for e in undone] == [
        ("one", ["config", "hooks/post-checkout"], ["core.hookspath"])
    ]
    (task,) = report.tasks
    assert task.undone == [undone[0]["message"].removeprefix("one: ")]
    assert "core.hookspath" in report.to_markdown()
    kept = Path(undone[0]["kept"])
    assert str(evil) in (kept / "config").read_text()
    assert (kept / "hooks" / "post-checkout").is_file()


# --- acceptance checks -----------------------------------------------------------------


async def test_check_passes_and_fails(tmp_path: Path) -> None:
    ok = await run_check("echo out; echo err >&2", tmp_path, timeout=120)
    assert ok.passed
    assert (ok.exit_code, ok.timed_out, ok.truncated) == (0, False, False)
    assert ok.output == "out\nerr\n"
    assert ok.duration_s >= 0

    failed = await run_check("pwd; exit 3", tmp_path, timeout=120, env={"X": "1"})
    assert not failed.passed
    assert failed.exit_code == 3
    assert failed.output.strip() == str(tmp_path)


async def _gone(pid: int, within: float = 60.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
async def test_check_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    command = "trap '' TERM; sleep 300 & echo $! > child.pid; echo started; wait"
    # Long enough for a busy machine (two suites at once) to start the shell and print "started".
    result = await run_check(command, tmp_path, timeout=10, kill_grace=0.5)
    assert result.timed_out
    assert not result.passed
    assert result.exit_code is not None
    assert result.exit_code < 0
    assert "started" in result.output
    assert result.duration_s < 100  # killed, not waited for: the sleep would take 300 s
    assert await _gone(int((tmp_path / "child.pid").read_text()))


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
async def test_check_leaves_no_background_process_behind(tmp_path: Path) -> None:
    result = await run_check("sleep 300 & echo $! > child.pid", tmp_path, timeout=120)
    assert result.passed
    assert result.duration_s < 100  # the background sleep (300 s) was not waited for
    assert await _gone(int((tmp_path / "child.pid").read_text()))


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
async def test_checks_left_running_by_a_dead_orchestrator_are_ended(tmp_path: Path) -> None:
    record = CheckRecord(tmp_path / "run" / "checks" / "t1.json")
    env = await record.begin(commit="c0ffee")
    # What an orchestrator killed in a check leaves running: the check's shell
    # in its own session, its child, and a grandchild in a session of its own.
    check = "sleep 300 & echo $! > child.pid; setsid sleep 300 & echo $! > grandchild.pid; wait"
    bystander = await asyncio.create_subprocess_exec("sleep", "300", start_new_session=True)
    orphan = await asyncio.create_subprocess_shell(
        check, cwd=tmp_path, env={**os.environ, **env}, start_new_session=True
    )
    try:
        pid_files = [tmp_path / "child.pid", tmp_path / "grandchild.pid"]
        deadline = time.monotonic() + 60
        while not all(p.exists() and p.read_text().strip() for p in pid_files):
            assert time.monotonic() < deadline, "the check did not start within 60 s"
            await asyncio.sleep(0.02)
        pids = [orphan.pid, *(int(p.read_text()) for p in pid_files)]

        left = await CheckRecord(record.path).end_left()  # the next orchestrator's look

        assert left == {"commit": "c0ffee"}
        for pid in pids:
            assert await _gone(pid), f"process {pid} of the left check still runs"
        assert alive(bystander.pid), "a process of no check was killed"
        await record.end()
        assert await record.end_left() is None
    finally:
        for process in (orphan, bystander):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def test_check_output_keeps_head_and_tail(tmp_path: Path) -> None:
    command = (
        "echo FIRST; i=0; while [ $i -lt 3000 ]; do echo filler-$i; i=$((i+1)); done; echo LAST"
    )
    result = await run_check(command, tmp_path, timeout=120, max_output_chars=1000)
    assert result.truncated
    assert result.output.startswith("FIRST\n")
    assert result.output.endswith("LAST\n")
    assert "bytes of output omitted" in result.output
    assert len(result.output) < 1100
    assert result.output_bytes > 30_000


async def test_checks_do_not_see_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Check commands come from a model: they must not be able to print keys.
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-123456")
    monkeypatch.setenv("OPENCODE_SERVER_PASSWORD", "pw-7890ab")
    monkeypatch.setenv("MY_RUN_PASSWORD_VAR", "pw-cdef01")
    monkeypatch.setenv("LGOC_CUSTOM", "custom-secret-22")
    monkeypatch.setenv("HARMLESS_SETTING", "visible-42")
    result = await run_check("env", tmp_path, timeout=120, withhold={"LGOC_CUSTOM"})
    assert result.passed
    assert "visible-42" in result.output
    for value in ("sk-ant-123456", "pw-7890ab", "pw-cdef01", "custom-secret-22"):
        assert value not in result.output
