"""Acceptance checks: run a shell command in a worktree, with a time limit.

The orchestrator runs the checks itself rather than trusting an agent's
"tests pass". A check runs in its own process group, so a timeout kills the
command and everything it started (test runners, servers, watchers); so does a
normal exit, so a check never leaves processes behind. Output (stdout and
stderr interleaved) is kept within a budget: its head and its tail, where the
summary of a test run usually is.

An orchestrator killed while a check runs cannot end it: the check's own
session outlives it, SIGKILL of the orchestrator's process group included. So
checks are written down before they start ([`CheckRecord`][]), and the
orchestrator that resumes the run ends what the dead one left running before
it touches the worktree the checks ran in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import tempfile
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import IO

from pydantic import BaseModel, ConfigDict

from langgraph_opencode.tools._process import processes, signal_group

__all__ = [
    "CHECKS_ENV",
    "DEFAULT_OUTPUT_CHARS",
    "CheckRecord",
    "CheckResult",
    "run_check",
    "secret_like",
]

DEFAULT_OUTPUT_CHARS = 20_000
"""Default budget for the output kept from one check."""
CHECKS_ENV = "LANGGRAPH_OPENCODE_CHECKS"
"""Set in the environment of checks run under a [`CheckRecord`][] to the record's id: how
their processes are told from any other (a pid may have been reused)."""
_END_PASSES = 20
"""How often the processes of left checks are looked for (each pass ends the children
the last pass's processes forked before they died)."""


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


class CheckRecord:
    """A note of the checks that run now, written before they start: a small JSON file.

    ```python
    record = CheckRecord(run_dir / "checks" / "t1.json")
    if (left := await record.end_left()) is not None:
        ...  # a dead orchestrator's checks ran here: undo what they left (left["commit"])
    env = await record.begin(commit=head)
    results = [await run_check(command, cwd, timeout=60, env=env) for command in commands]
    ...  # put the worktree back
    await record.end()
    ```

    The note holds a random id and the caller's facts (the commit checked).
    Every process of the checks carries the id in its environment
    ([`CHECKS_ENV`][]), so [`end_left`][] finds them all, children and
    grandchildren in other process groups included, and nothing else. A
    process that empties its environment and leaves the check's process group
    is not found. Processes are looked for in ``/proc`` (Linux).

    The note is removed by [`end`][] only: a block that fails or is cancelled
    leaves it, and the next one undoes what the checks left behind.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    async def end_left(self) -> dict[str, str] | None:
        """End the processes of the checks noted here; the note's facts, ``None`` if none.

        The note stays until [`end`][] (or the next [`begin`][]).
        """
        note = await asyncio.to_thread(self._read)
        if note is None:
            return None
        marker = f"{CHECKS_ENV}={note['id']}".encode()
        for _ in range(_END_PASSES):
            if not await asyncio.to_thread(_kill_marked, marker):
                break
            await asyncio.sleep(0.05)  # let the killed die before the next look
        return {key: value for key, value in note.items() if key != "id"}

    async def begin(self, **facts: str) -> dict[str, str]:
        """Note that checks start; return the variables to add to their environment."""
        note = {"id": secrets.token_hex(16), **facts}
        await asyncio.to_thread(self._write, note)
        return {CHECKS_ENV: note["id"]}

    async def end(self) -> None:
        """Remove the note: the checks are over and what they left is undone."""
        await asyncio.to_thread(self.path.unlink, missing_ok=True)

    def _read(self) -> dict[str, str] | None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        note: dict[str, str] = json.loads(text)
        return note

    def _write(self, note: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(note))
        os.replace(partial, self.path)  # never half a note: a kill may come at any time


def _kill_marked(marker: bytes) -> bool:
    """SIGKILL every process whose environment holds ``marker``, with its group; any found?"""
    found = False
    for process in processes():  # none without /proc: the note's commit is still undone
        try:
            # A zombie's environment reads as empty: it is dead already.
            environ = (process / "environ").read_bytes()
        except OSError:  # gone, or another user's
            continue
        if marker not in environ.split(b"\0"):
            continue
        found = True
        pid = int(process.name)
        with contextlib.suppress(ProcessLookupError):
            # Its group came from the check too (never ours: each check has its
            # own): it reaches members that emptied their environment.
            if (group := os.getpgid(pid)) != os.getpgrp():
                signal_group(group, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return found
