"""A worktree's git directories, its ``HEAD`` and the branches, read from git's own files,
agree with ``git rev-parse``.

The run reads them before each write in a worktree (stale locks, a merge left
half-way) and wherever it needs a branch's commit, without starting a process;
these tests hold that reading to git's answer in every layout the run meets
(loose and packed refs, symbolic refs, SHA-256), and check that what it cannot
read is asked of git.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from langgraph_opencode.testing import make_repo
from langgraph_opencode.tools.git import _gitdir
from langgraph_opencode.tools.git._command import GitOutput
from langgraph_opencode.tools.git._gitdir import (
    GitDirs,
    branch_commit,
    checked_out_at,
    git_dirs,
    head_of,
    merge_in_progress,
)

_IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
}


def git(repo: Path, *args: str, check: bool = True) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **_IDENTITY},
        check=False,
    )
    assert out.returncode == 0 or not check, out.stderr
    return out.stdout


def git_says(worktree: Path) -> GitDirs:
    """What git says of ``worktree``, asked one question at a time."""
    git_dir = git(worktree, "rev-parse", "--absolute-git-dir").strip()
    common = git(worktree, "rev-parse", "--path-format=absolute", "--git-common-dir").strip()
    ref = git(worktree, "symbolic-ref", "-q", "HEAD", check=False).strip()
    return GitDirs(Path(git_dir), Path(common), ref or None)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    git(root, "branch", "side")
    git(root, "worktree", "add", "--quiet", str(tmp_path / "linked"), "side")
    git(root, "worktree", "add", "--quiet", "--detach", str(tmp_path / "detached"), "HEAD")
    return root


@pytest.mark.parametrize("where", ["repo", "linked", "detached"])
async def test_the_directories_read_from_files_are_gits_own(repo: Path, where: str) -> None:
    worktree = repo.parent / where
    assert await git_dirs(worktree) == git_says(worktree)


def _make_gitfile_relative(worktree: Path) -> None:
    absolute = (worktree / ".git").read_text().split(": ", 1)[1].strip()
    (worktree / ".git").write_text(f"gitdir: {os.path.relpath(absolute, worktree)}\n")


async def test_a_relative_gitfile_is_read_against_its_worktree(repo: Path) -> None:
    worktree = repo.parent / "linked"
    _make_gitfile_relative(worktree)
    assert git(worktree, "rev-parse", "--abbrev-ref", "HEAD").strip() == "side"
    assert await git_dirs(worktree) == git_says(worktree)


async def test_a_subdirectory_or_a_broken_gitfile_is_asked_of_git(repo: Path) -> None:
    (repo / "sub").mkdir()
    assert await git_dirs(repo / "sub") == git_says(repo / "sub")
    linked = repo.parent / "linked"
    (linked / ".git").write_text("not a gitfile\n")
    assert not await checked_out_at(linked, "refs/heads/side", repo / ".git")
    assert not await merge_in_progress(linked)  # git fails there too: no merge known


async def test_a_merge_stopped_half_way_is_seen_and_its_end_too(repo: Path) -> None:
    linked = repo.parent / "linked"
    (linked / "a.txt").write_text("side\n")
    git(linked, "commit", "-qam", "side")
    (repo / "a.txt").write_text("main\n")
    git(repo, "commit", "-qam", "main")
    assert not await merge_in_progress(linked)
    git(linked, "merge", "--no-edit", "main", check=False)  # conflicts
    assert git(linked, "rev-parse", "-q", "--verify", "MERGE_HEAD", check=False)
    assert await merge_in_progress(linked)
    assert not await merge_in_progress(repo)
    git(linked, "merge", "--abort")
    assert not await merge_in_progress(linked)


async def test_checked_out_at_names_only_that_branch_of_that_repository(
    repo: Path, tmp_path: Path
) -> None:
    linked = repo.parent / "linked"
    common = repo / ".git"
    assert await checked_out_at(linked, "refs/heads/side", common)
    assert not await checked_out_at(linked, "refs/heads/main", common)
    assert not await checked_out_at(repo.parent / "detached", "refs/heads/side", common)
    assert not await checked_out_at(tmp_path / "nowhere", "refs/heads/side", common)
    other = make_repo(tmp_path / "other")
    assert not await checked_out_at(linked, "refs/heads/side", other / ".git")
    git(linked, "checkout", "--quiet", "--detach")  # an agent left its branch
    assert not await checked_out_at(linked, "refs/heads/side", common)


def git_commit_of(repo: Path, rev: str) -> str | None:
    """git's own answer: the commit ``rev`` names, ``None`` if none."""
    out = git(repo, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}", check=False)
    return out.strip() or None


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The git commands the reads fall back to (they still run)."""
    calls: list[tuple[str, ...]] = []
    real = _gitdir.run_git

    async def recording(cwd: Path, *args: str, **kwargs: object) -> GitOutput:
        calls.append(args)
        return await real(cwd, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_gitdir, "run_git", recording)
    return calls


_REFS = ["refs/heads/main", "refs/heads/side", "refs/heads/a/b", "refs/heads/a", "refs/heads/none"]


async def _agree(repo: Path) -> None:
    for ref in _REFS:
        assert await branch_commit(repo, repo / ".git", ref) == git_commit_of(repo, ref), ref


async def test_branch_commits_read_from_loose_and_packed_refs_are_gits_own(
    repo: Path, asked: list[tuple[str, ...]]
) -> None:
    git(repo, "branch", "a/b")  # a directory refs/heads/a: no branch `a`
    await _agree(repo)
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "side").exists()  # only packed now
    await _agree(repo)
    linked = repo.parent / "linked"
    (linked / "new.txt").write_text("new\n")
    git(linked, "add", "new.txt")
    git(linked, "commit", "-qm", "new")  # a loose side over the packed one
    assert git_commit_of(repo, "refs/heads/side") != git_commit_of(repo, "refs/heads/main")
    await _agree(repo)
    git(repo, "branch", "-D", "a/b")  # deleted from packed-refs
    await _agree(repo)
    assert asked == []  # every answer came from the files


async def test_a_symbolic_branch_is_followed(repo: Path, asked: list[tuple[str, ...]]) -> None:
    git(repo, "symbolic-ref", "refs/heads/alias", "refs/heads/side")
    git(repo, "pack-refs", "--all")  # the alias stays loose, its target is packed
    side = git_commit_of(repo, "refs/heads/side")
    assert await branch_commit(repo, repo / ".git", "refs/heads/alias") == side
    assert asked == []


async def test_what_the_ref_files_cannot_say_is_asked_of_git(
    repo: Path, asked: list[tuple[str, ...]]
) -> None:
    main = git_commit_of(repo, "refs/heads/main")
    (repo / ".git" / "reftable").mkdir()  # the refs would live in the table
    assert await branch_commit(repo, repo / ".git", "refs/heads/main") == main
    assert len(asked) == 1
    (repo / ".git" / "reftable").rmdir()
    # Not a name git allows: the files are not read, git refuses it.
    assert await branch_commit(repo, repo / ".git", "refs/heads/../../HEAD") is None
    # Not a branch (a per-worktree ref would live in the worktree's git directory).
    assert await branch_commit(repo, repo / ".git", "refs/worktree/none") is None
    loose = repo / ".git" / "refs" / "heads" / "odd"
    loose.write_text("not an object id\n")
    assert await branch_commit(repo, repo / ".git", "refs/heads/odd") is None
    assert len(asked) == 4


@pytest.mark.parametrize("where", ["repo", "linked", "detached"])
async def test_a_worktrees_head_is_gits_own(
    repo: Path, where: str, asked: list[tuple[str, ...]]
) -> None:
    worktree = repo.parent / where
    assert await head_of(worktree) == git(worktree, "rev-parse", "HEAD").strip()
    (worktree / "more.txt").write_text("more\n")
    git(worktree, "add", "more.txt")
    git(worktree, "commit", "-qm", "more")
    git(repo, "pack-refs", "--all")
    assert await head_of(worktree) == git(worktree, "rev-parse", "HEAD").strip()
    assert asked == []


async def test_sha256_object_ids_are_read_too(tmp_path: Path) -> None:
    root = tmp_path / "sha256"
    root.mkdir()
    git(root, "init", "--quiet", "--object-format=sha256", "--initial-branch=main")
    (root / "a.txt").write_text("a\n")
    git(root, "add", "a.txt")
    git(root, "commit", "-qm", "a")
    main = git_commit_of(root, "refs/heads/main")
    assert main is not None
    assert len(main) == 64
    assert await branch_commit(root, root / ".git", "refs/heads/main") == main
    assert await head_of(root) == main
    git(root, "pack-refs", "--all")
    assert await branch_commit(root, root / ".git", "refs/heads/main") == main
