"""Keep ``opencode serve`` running while someone holds a lock file, then stop it.

Run as a script, not as a module of the package (it needs none of the
package's imports, and starts in a few tens of milliseconds)::

    python _keeper.py --lock PATH --linger SECONDS --runtime PATH --log PATH -- opencode serve ...

It reads the server's password from its standard input (one line), detaches
(its first process prints the keeper's pid and exits; the keeper leads a new
session, so a terminal's Ctrl-C does not reach it), and runs the server as
its child in its own process group, with the password in the server's
environment only (which the server's password plugin clears once OpenCode has
read it; see ``_hide_password.js``). Once nobody has held the lock for ``--linger`` seconds (the
orchestrator that held it died, was stopped, or left the run paused), it
stops the server. Whenever it ends, it removes the runtime file if that file
names it. SIGTERM (to the keeper or its group) stops the server at once.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

_PASSWORD_VAR = "OPENCODE_SERVER_PASSWORD"
_POLL = 0.5
_STOP_GRACE = 5.0


def _lockfile() -> ModuleType:
    """``langgraph_opencode.tools.lockfile``, loaded by path (the package is not imported)."""
    path = Path(__file__).resolve().parents[1] / "lockfile.py"
    spec = importlib.util.spec_from_file_location("_langgraph_opencode_lockfile", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _say(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"--- langgraph-opencode keeper {os.getpid()}: {stamp} {message} ---", flush=True)


def _remove_runtime(path: Path) -> None:
    try:
        if json.loads(path.read_text()).get("pid") != os.getpid():
            return  # another keeper's file
    except (OSError, ValueError):
        return
    with contextlib.suppress(OSError):
        path.unlink()


def _stop(child: subprocess.Popen[bytes]) -> None:
    """Stop the server and whatever it started (they share the keeper's process group)."""
    # The keeper gets the SIGTERM too; its handler only notes it.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(os.getpgrp(), signal.SIGTERM)
    if child.poll() is None:
        try:
            child.wait(_STOP_GRACE)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _keep(args: argparse.Namespace, password: str) -> int:
    holder = _lockfile().holder
    stopping: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, on_signal)
    env = {**os.environ, _PASSWORD_VAR: password}
    child = subprocess.Popen(args.command, env=env, stdin=subprocess.DEVNULL)
    runtime = Path(args.runtime)
    try:
        _watch(child, args, holder, stopping)
    finally:
        _remove_runtime(runtime)  # first, so that no resume adopts a server going away
        _stop(child)
    return child.returncode or 0


def _watch(
    child: subprocess.Popen[bytes],
    args: argparse.Namespace,
    holder: Any,
    stopping: list[int],
) -> None:
    """Return once the server exited, a signal came, or nobody held the lock for the linger."""
    lock = Path(args.lock)
    unheld_since: float | None = None
    while child.poll() is None:
        if stopping:
            _say(f"signal {stopping[0]}: stopping the server")
            break
        if holder(lock) is not None:
            unheld_since = None
        elif unheld_since is None:
            unheld_since = time.monotonic()
        elif time.monotonic() - unheld_since >= args.linger:
            _say(f"nobody has held {lock} for {args.linger:g} s: stopping the server")
            break
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(_POLL)
    else:
        _say(f"opencode serve exited with code {child.returncode}")


def main(argv: list[str] | None = None) -> int:
    """Detach, run the server while the lock is held, and stop it afterwards."""
    parser = argparse.ArgumentParser(prog="_keeper.py")
    parser.add_argument("--lock", required=True)
    parser.add_argument("--linger", type=float, required=True)
    parser.add_argument("--runtime", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    password = sys.stdin.readline().rstrip("\n")
    pid = os.fork()
    if pid:
        print(pid, flush=True)
        return 0
    os.setsid()
    log = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    try:
        code = _keep(args, password)
    except BaseException as exc:
        _say(f"failed: {type(exc).__name__}: {exc}")
        code = 1
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
