"""A worktree's git directories read from git's own files agree with ``git rev-parse``.

The run reads them before each write in a worktree (stale locks, a merge left
half-way) without starting a process; these tests hold that reading to git's
answer in every layout the run meets, and check that what it cannot read is
asked of git.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from langgraph_opencode.testing import make_repo
from langgraph_opencode.tools.git._gitdir import (
    GitDirs,
    checked_out_at,
    git_dirs,
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
