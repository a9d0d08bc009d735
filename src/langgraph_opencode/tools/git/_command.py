"""Run the real ``git`` executable from asyncio, with a fixed environment.

Every git command the orchestrator runs goes through :func:`run_git`, so the
environment is the same everywhere: no prompts, no pager, no editor, English
messages, and no optional index writes (``GIT_OPTIONAL_LOCKS=0``: a
``git status`` in the user's repository must not even refresh their index).
Variables that point git at another repository or index (``GIT_DIR``,
``GIT_INDEX_FILE``, ... as set inside a git hook) are dropped, so a command
always acts on the directory it is given.

No command runs the user's hooks (``core.hooksPath`` is ``/dev/null``): a
``post-checkout`` hook would run on every ``git worktree add``, and a failing
one (git-lfs's, with git-lfs missing) would fail the task. Every command has a
time limit (:data:`GIT_TIMEOUT_ENV`, default :data:`DEFAULT_GIT_TIMEOUT`) and
runs in its own process group, so a filter or credential helper that waits for
ever is stopped with everything it started, and the graph goes on.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from langgraph_opencode.errors import ConfigurationError, GitError, GitTimeoutError
from langgraph_opencode.tools._child import ChildTimeoutError, run_child
from langgraph_opencode.tools._env import seconds_from_env

__all__ = [
    "DEFAULT_GIT_TIMEOUT",
    "GIT_TIMEOUT_ENV",
    "GitIdentity",
    "GitOutput",
    "check_git_version",
    "command_error",
    "git_timeout",
    "identity_args",
    "run_git",
    "split_z",
]

_STDERR_LIMIT = 2_000
DEFAULT_GIT_TIMEOUT = 600.0
"""Seconds one git command may take (a hang guard, not a speed limit): checking out a
repository of hundreds of thousands of files takes minutes on a busy machine."""
GIT_TIMEOUT_ENV = "LANGGRAPH_OPENCODE_GIT_TIMEOUT"
"""The environment variable that overrides :data:`DEFAULT_GIT_TIMEOUT` (seconds)."""
_MIN_VERSION = (2, 36)  # `git worktree list -z`

# `git rev-parse --local-env-vars`: these would redirect a command elsewhere.
_DROPPED_ENV = frozenset(
    [
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_OBJECT_DIRECTORY",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_GRAFT_FILE",
        "GIT_INDEX_FILE",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_REPLACE_REF_BASE",
        "GIT_PREFIX",
        "GIT_INTERNAL_SUPER_PREFIX",
        "GIT_SHALLOW_FILE",
        "GIT_COMMON_DIR",
    ]
)
_checked_version = False

_BASE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_PAGER": "cat",
    "GIT_EDITOR": "true",
    "GIT_MERGE_AUTOEDIT": "no",
    "LC_ALL": "C",
    "LANGUAGE": "C",
}

# Every command: no user hooks (an empty hooks directory is no directory at all).
_ALWAYS_CONFIG = ("-c", f"core.hooksPath={os.devnull}")

# Orchestrator commits and merges: no signing prompts, no rerere replaying a
# recorded resolution behind the reviewer's back.
_COMMIT_CONFIG = (
    "-c",
    "commit.gpgSign=false",
    "-c",
    "rerere.enabled=false",
    "-c",
    "merge.conflictStyle=merge",
)


@dataclass(frozen=True, kw_only=True)
class GitIdentity:
    """The author and committer of every commit the orchestrator makes.

    It is passed to git through the environment and ``-c`` options, never
    written to any git config file.
    """

    name: str = "langgraph-opencode"
    """Author and committer name."""
    email: str = "langgraph-opencode@localhost"
    """Author and committer e-mail."""

    def env(self) -> dict[str, str]:
        """Return the ``GIT_AUTHOR_*`` / ``GIT_COMMITTER_*`` variables."""
        return {
            "GIT_AUTHOR_NAME": self.name,
            "GIT_AUTHOR_EMAIL": self.email,
            "GIT_COMMITTER_NAME": self.name,
            "GIT_COMMITTER_EMAIL": self.email,
        }


def identity_args(identity: GitIdentity) -> tuple[str, ...]:
    """Return the ``-c`` options that make ``identity`` commit, with signing off."""
    return (
        "-c",
        f"user.name={identity.name}",
        "-c",
        f"user.email={identity.email}",
        *_COMMIT_CONFIG,
    )


@dataclass(frozen=True)
class GitOutput:
    """What one git command produced."""

    command: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """Whether git exited with status 0."""
        return self.returncode == 0


async def run_git(
    cwd: Path,
    *args: str,
    check: bool = True,
    identity: GitIdentity | None = None,
    timeout: float | None = None,
) -> GitOutput:
    """Run ``git -C cwd args...`` and return its output.

    Args:
        cwd: The directory git runs in.
        *args: The git arguments (options before the subcommand included).
        check: Raise :class:`GitError` when git exits with a non-zero status.
        identity: Commit as this identity (environment and ``-c`` options).
        timeout: Seconds before git and everything it started are stopped
            (default: ``$LANGGRAPH_OPENCODE_GIT_TIMEOUT``, else
            :data:`DEFAULT_GIT_TIMEOUT`).

    Raises:
        GitTimeoutError: git ran past ``timeout``; it was stopped.
        GitError: git failed and ``check`` is true.
        ConfigurationError: git is not installed, or the timeout variable is
            not a positive number.
    """
    limit = git_timeout() if timeout is None else timeout
    full = (*_ALWAYS_CONFIG, *(identity_args(identity) if identity else ()), *args)
    inherited = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env = {**inherited, **_BASE_ENV, **(identity.env() if identity else {})}
    command = ("git", *args)
    try:
        # The child looks git up on PATH: no blocking file-system look-up in the event loop.
        # Its own process group: a timeout or a cancellation stops what git started too
        # (a filter holding the pipes would keep us waiting).
        done = await run_child(("git", "-C", str(cwd), *full), env=env, timeout=limit)
    except FileNotFoundError:
        raise ConfigurationError(
            "the `git` executable was not found on PATH: install git (2.36 or newer) "
            "and make sure it is on PATH"
        ) from None
    except ChildTimeoutError:
        raise GitTimeoutError(
            f"`git {_subcommand(args)}` did not finish within {limit:g} s in {cwd} and was "
            "stopped: a filter, credential helper or other program git started may be waiting; "
            f"find out what it runs there, or allow longer with {GIT_TIMEOUT_ENV}=<seconds>",
            command=command,
            cwd=str(cwd),
            timeout=limit,
        ) from None
    result = GitOutput(
        command=command,
        returncode=done.returncode,
        stdout=done.stdout.decode("utf-8", errors="replace"),
        stderr=done.stderr.decode("utf-8", errors="replace"),
    )
    if check and not result.ok:
        raise command_error(result, f"git {_subcommand(args)} failed in {cwd}")
    return result


def git_timeout() -> float:
    """Seconds a git command may take: ``$LANGGRAPH_OPENCODE_GIT_TIMEOUT`` or the default.

    Raises:
        ConfigurationError: The variable is set but not a positive number.
    """
    return seconds_from_env(GIT_TIMEOUT_ENV, DEFAULT_GIT_TIMEOUT)


def _subcommand(args: tuple[str, ...]) -> str:
    """The subcommand of a git command line (``-c name=value`` options skipped)."""
    rest = iter(args)
    for arg in rest:
        if arg == "-c":
            next(rest, None)
        elif not arg.startswith("-"):
            return arg
    return ""


async def check_git_version() -> None:
    """Fail clearly when git is missing or older than 2.36 (checked once per process).

    Raises:
        ConfigurationError: git is missing or too old.
    """
    global _checked_version
    if _checked_version:
        return
    out = await run_git(Path("/"), "version")
    found = re.search(r"(\d+)\.(\d+)", out.stdout)
    if found is None or (int(found[1]), int(found[2])) < _MIN_VERSION:
        raise ConfigurationError(
            f"{out.stdout.strip() or 'git'} is too old: langgraph-opencode needs git "
            f"{_MIN_VERSION[0]}.{_MIN_VERSION[1]} or newer"
        )
    _checked_version = True


def command_error(result: GitOutput, what: str) -> GitError:
    """Return a :class:`GitError` for a failed command, with git's own words."""
    stderr = result.stderr.strip()
    if len(stderr) > _STDERR_LIMIT:
        stderr = stderr[:_STDERR_LIMIT] + "…"
    detail = stderr or result.stdout.strip()[:_STDERR_LIMIT]
    message = f"{what} (exit {result.returncode}): {detail}" if detail else what
    return GitError(message, command=result.command, stderr=stderr)


def split_z(text: str) -> tuple[str, ...]:
    """The non-empty fields of NUL-separated git output (``-z``)."""
    return tuple(p for p in text.split("\0") if p)
