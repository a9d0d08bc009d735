"""A short command run to its end from asyncio: its exit status and both outputs.

Git commands are most of the processes a run starts (dozens per task), each done
in milliseconds. asyncio's own subprocess support on Python 3.11 gives every
child a thread that waits for it (``ThreadedChildWatcher``) and three pipe
transports, about 0.7 ms of CPU per command here: more than starting git costs.
On Linux the command is started with posix_spawn(3), and a pidfd
(pidfd_open(2)) becomes readable when it ends, so the event loop waits on it
and on the two output pipes directly, with no thread and no transport. Where
pidfds are missing (another system, an old kernel, a sandbox refusing the
call) asyncio's subprocess runs the command instead.

Either way the child leads its own process group, and a timeout or a
cancellation stops the whole group: SIGTERM first (git removes its lock files),
SIGKILL after a grace, so that a filter or helper git started cannot keep the
pipes open.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from langgraph_opencode.tools._process import signal_group

__all__ = ["ChildTimeoutError", "Finished", "run_child"]

_KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL, and then before the pipes are given up."""
_READ_SIZE = 1 << 16
_UNKNOWN_STATUS = 255
"""The status of a child someone else reaped (asyncio says 255 then too)."""


@dataclass(frozen=True)
class Finished:
    """How a command ended."""

    returncode: int
    stdout: bytes
    stderr: bytes


class ChildTimeoutError(TimeoutError):
    """The command ran past its time limit; its process group was stopped."""


async def run_child(argv: Sequence[str], *, env: Mapping[str, str], timeout: float) -> Finished:
    """Run ``argv`` (looked up on PATH) with no input and ``env``; return how it ended.

    Raises:
        ChildTimeoutError: It ran past ``timeout`` seconds and was stopped.
        FileNotFoundError: The program was not found.
    """
    if not _pidfds_work():
        return await _run_by_asyncio(argv, env, timeout)
    child = _Child(argv, env)
    try:
        await asyncio.wait_for(asyncio.shield(child.ended), timeout)
    except TimeoutError:
        await child.stop()
        raise ChildTimeoutError(f"{argv[0]} ran past {timeout:g} s") from None
    except asyncio.CancelledError:
        await child.stop()
        raise
    finally:
        child.close()
    return Finished(child.returncode, bytes(child.out), bytes(child.err))


@functools.cache
def _pidfds_work() -> bool:
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


class _Child:
    """A process started with posix_spawn(3), its pipes and its end watched by the event loop.

    posix_spawn, unlike :class:`subprocess.Popen`, makes no blocking read in the
    event loop to learn whether the exec worked (the C library waits for it).
    """

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self._loop = asyncio.get_running_loop()
        self.out = bytearray()
        self.err = bytearray()
        self.returncode = -1
        self.ended: asyncio.Future[None] = self._loop.create_future()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            self.pid = os.posix_spawnp(
                argv[0],
                list(argv),
                dict(env),
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, out_w, 1),
                    (os.POSIX_SPAWN_DUP2, err_w, 2),
                ],
                setsid=True,  # its own process group, which a timeout stops whole
            )
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            raise
        finally:
            for fd in (out_w, err_w):
                os.close(fd)
        self._open = {out_r: self.out, err_r: self.err}
        for fd in self._open:
            os.set_blocking(fd, False)
            self._loop.add_reader(fd, self._read, fd)
        try:
            self._pidfd: int | None = os.pidfd_open(self.pid)
        except OSError:  # out of file descriptors: do not leave it running
            signal_group(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self._pidfd = None
            self.close()
            raise
        self._loop.add_reader(self._pidfd, self._exited)

    def _read(self, fd: int) -> None:
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._open[fd] += data
            return
        self._forget(fd)
        self._check()

    def _exited(self) -> None:
        self._close_pidfd()
        try:
            _, status = os.waitpid(self.pid, 0)  # it has ended: this only reaps it
            self.returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            self.returncode = _UNKNOWN_STATUS  # reaped by a waitpid(-1) elsewhere
        self._check()

    def _check(self) -> None:
        if not self._open and self._pidfd is None and not self.ended.done():
            self.ended.set_result(None)

    async def stop(self) -> None:
        """SIGTERM the group, then SIGKILL what is left; wait a grace for each."""
        await _stop_group(self.pid, lambda: asyncio.shield(self.ended))

    def close(self) -> None:
        """Stop watching: close the pipes and the pidfd, reap the process if it has ended."""
        for fd in list(self._open):
            self._forget(fd)
        if self._pidfd is not None:
            self._close_pidfd()
            with contextlib.suppress(ChildProcessError):
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        if not self.ended.done():
            self.ended.cancel()

    def _forget(self, fd: int) -> None:
        self._loop.remove_reader(fd)
        del self._open[fd]
        os.close(fd)

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None


async def _run_by_asyncio(argv: Sequence[str], env: Mapping[str, str], timeout: float) -> Finished:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        await _stop_group(proc.pid, proc.communicate)  # reads the pipes to their end
        raise ChildTimeoutError(f"{argv[0]} ran past {timeout:g} s") from None
    except asyncio.CancelledError:
        await _stop_group(proc.pid, proc.communicate)  # reads the pipes to their end
        raise
    return Finished(proc.returncode if proc.returncode is not None else -1, out, err)


async def _stop_group(pgid: int, ended: Callable[[], Awaitable[object]]) -> None:
    """SIGTERM group ``pgid``, then SIGKILL what is left, waiting up to a grace for ``ended``.

    A process that left the group may hold the pipes: it is given up on after the grace.
    """
    signal_group(pgid, signal.SIGTERM)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ended(), _KILL_GRACE)
    finally:
        signal_group(pgid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ended(), _KILL_GRACE)
