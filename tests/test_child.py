"""Short commands run from asyncio: what they print, how they end, nothing left behind.

Git runs through :func:`run_child` dozens of times per task. Each test runs on
both ways it has of waiting: a pidfd watched by the event loop (Linux), and
asyncio's own subprocess (where pidfds are missing).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from langgraph_opencode.tools import _child
from langgraph_opencode.tools._child import ChildTimeoutError, run_child

pytestmark = [
    pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc"),
    pytest.mark.usefixtures("no_blocking_calls"),  # as under `langgraph dev`
]


@pytest.fixture(params=["pidfd", "asyncio"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "pidfd":
        if not _child._pidfds_work():
            pytest.fail("this Linux machine has no pidfd_open: the main path is not tested")
    else:
        monkeypatch.setattr(_child, "_pidfds_work", lambda: False)
    return str(request.param)


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _running(pid: int) -> bool:
    """Alive and not a zombie (a grandchild is reaped by whoever is init here)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _zombies() -> list[int]:
    """Children of this process that ended and were never waited for."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        if fields[0] == "Z" and int(fields[1]) == os.getpid():
            found.append(int(stat.parent.name))
    return found


def _py(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


async def test_the_outputs_and_the_status_come_back_whole(way: str) -> None:
    # More than one read of each pipe, written in turns so neither pipe fills up unread.
    code = (
        "import sys\n"
        "for i in range(64):\n"
        "    sys.stdout.write(str(i % 10) * 16384); sys.stdout.flush()\n"
        "    sys.stderr.write('e' * 1000); sys.stderr.flush()\n"
        "sys.exit(3)\n"
    )
    done = await run_child(_py(code), env=os.environ, timeout=60)
    assert done.returncode == 3
    assert done.stdout == b"".join(str(i % 10).encode() * 16384 for i in range(64))
    assert done.stderr == b"e" * 64_000


async def test_the_environment_given_is_the_childs(way: str) -> None:
    env = {"PATH": os.environ["PATH"], "ONLY_THIS": "yes"}
    code = "import os; print(sorted(k for k in os.environ if k != 'LC_CTYPE'))"
    done = await run_child(_py(code), env=env, timeout=60)
    assert done.stdout.decode().strip() == "['ONLY_THIS', 'PATH']"


async def test_a_missing_program_is_file_not_found(way: str) -> None:
    with pytest.raises(FileNotFoundError):
        await run_child(("no-such-program-lgoc",), env=os.environ, timeout=60)


async def test_a_command_past_its_time_is_stopped_with_what_it_started(
    way: str, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    # The grandchild holds the output pipes too: only stopping the group ends the wait.
    code = (
        "import os, subprocess, sys, time\n"
        "kid = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(pid_file)!r}, 'w').write(f'{{os.getpid()}} {{kid.pid}}')\n"
        "time.sleep(600)\n"
    )
    async with asyncio.timeout(60):  # a hang guard
        with pytest.raises(ChildTimeoutError):
            await run_child(_py(code), env=os.environ, timeout=3)
    parent, kid = map(int, pid_file.read_text().split())
    assert not _alive(parent)  # ended and reaped
    for _ in range(100):  # the grandchild is reaped by init, soon
        if not _running(kid):
            break
        await asyncio.sleep(0.1)
    assert not _running(kid)


async def test_many_commands_leave_no_descriptor_and_no_child(way: str) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(30):
        assert (await run_child(("true",), env=os.environ, timeout=60)).returncode == 0
    await asyncio.gather(*(run_child(("true",), env=os.environ, timeout=60) for _ in range(10)))
    assert len(os.listdir("/proc/self/fd")) == before
    assert _zombies() == []  # every child was reaped
