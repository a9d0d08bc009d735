"""Acceptance checks: run a shell command in a worktree, with a time limit.

The orchestrator runs the checks itself rather than trusting an agent's
"tests pass". A check runs in its own process group, so a timeout kills the
command and everything it started (test runners, servers, watchers); so does a
normal exit, so a check never leaves processes behind. Output (stdout and
stderr interleaved) is kept within a budget: its head and its tail, where the
summary of a test run usually is.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import tempfile
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import IO

from pydantic import BaseModel, ConfigDict

from langgraph_opencode.tools._process import signal_group

__all__ = ["DEFAULT_OUTPUT_CHARS", "CheckResult", "run_check", "secret_like"]

DEFAULT_OUTPUT_CHARS = 20_000
"""Default budget for the output kept from one check."""


class CheckResult(BaseModel):
    """The outcome of one check command."""

    model_config = ConfigDict(frozen=True)

    command: str
    cwd: Path
    exit_code: int | None
    """The exit status; negative for a signal (e.g. ``-15`` after a timeout)."""
    duration_s: float
    timed_out: bool
    output: str
    """Stdout and stderr, interleaved; the middle is cut when over budget."""
    truncated: bool
    output_bytes: int
    """How many bytes the command wrote in all."""

    @property
    def passed(self) -> bool:
        """Whether the command exited with status 0 within its time limit."""
        return self.exit_code == 0 and not self.timed_out


_SECRET_NAMES = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?)", re.IGNORECASE
)


def secret_like(name: str) -> bool:
    """Whether an environment variable's name says it holds a secret."""
    return bool(_SECRET_NAMES.search(name))


async def run_check(
    command: str,
    cwd: Path,
    *,
    timeout: float,
    max_output_chars: int = DEFAULT_OUTPUT_CHARS,
    env: Mapping[str, str] | None = None,
    withhold: Collection[str] = (),
    kill_grace: float = 2.0,
) -> CheckResult:
    """Run a shell command in ``cwd`` and report how it went.

    Args:
        command: A ``/bin/sh`` command line, e.g. ``"pytest -q"``.
        cwd: The directory to run it in (a task or integration worktree).
        timeout: Seconds before the whole process group is sent SIGTERM.
        max_output_chars: Keep about this many bytes of output: the first half
            and the last half, with a marker where the middle was cut.
        env: Variables added to (and overriding) the orchestrator's environment.
        withhold: Names of variables of the orchestrator's environment the
            command must not see, on top of those that look like secrets
            (see [`secret_like`][]): checks are written by a model.
        kill_grace: Seconds between SIGTERM and SIGKILL after a timeout.

    Returns:
        The exit code, duration, whether it timed out, and the output.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    started = time.monotonic()
    # Output goes to an anonymous file, not a pipe: a background process that
    # keeps the pipe open would make asyncio wait for it (Process.wait() waits
    # for the pipes to close), and a file needs no reader to keep it flowing.
    # File work goes to a thread: the event loop never waits on the disk.
    with await asyncio.to_thread(tempfile.TemporaryFile) as sink:
        proc = await asyncio.create_subprocess_shell(
            command,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sink,
            stderr=asyncio.subprocess.STDOUT,
            env={
                **{
                    name: value
                    for name, value in os.environ.items()
                    if name not in withhold and not secret_like(name)
                },
                **(env or {}),
            },
            start_new_session=True,
        )
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            timed_out = True
            signal_group(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), kill_grace)
            except TimeoutError:
                signal_group(proc.pid, signal.SIGKILL)
        finally:
            # Whatever the command left running in its group goes too.
            signal_group(proc.pid, signal.SIGKILL)
            if proc.returncode is None:
                await proc.wait()
        duration = time.monotonic() - started
        output, truncated, total = await asyncio.to_thread(
            _head_and_tail, sink, max(2, max_output_chars)
        )
    return CheckResult(
        command=command,
        cwd=cwd,
        exit_code=proc.returncode,
        duration_s=round(duration, 3),
        timed_out=timed_out,
        output=output,
        truncated=truncated,
        output_bytes=total,
    )


def _head_and_tail(sink: IO[bytes], budget: int) -> tuple[str, bool, int]:
    """Return the first and last ``budget // 2`` bytes of ``sink`` as text."""
    total = sink.seek(0, os.SEEK_END)
    sink.seek(0)
    if total <= budget:
        return sink.read().decode("utf-8", errors="replace"), False, total
    head = sink.read(budget // 2).decode("utf-8", errors="replace")
    sink.seek(total - (budget - budget // 2))
    tail = sink.read().decode("utf-8", errors="replace")
    omitted = total - budget
    return f"{head}\n… [{omitted} bytes of output omitted] …\n{tail}", True, total
