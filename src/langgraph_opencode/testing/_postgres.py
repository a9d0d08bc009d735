"""A throwaway PostgreSQL server for tests: its own cluster in a temporary directory.

It uses the server programs of Debian's ``postgresql`` package (``make setup``
installs it when missing), listens on a free loopback port with a random
password (scram-sha-256), and is removed when stopped. PostgreSQL refuses to
run as root, so as root the cluster belongs to the ``postgres`` system user.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from langgraph_opencode.errors import BinaryNotFoundError, ServerStartError
from langgraph_opencode.tools.opencode.server import free_port

__all__ = ["PG_BIN_ENV_VAR", "PostgresServer", "find_postgres_bin"]

PG_BIN_ENV_VAR = "LANGGRAPH_OPENCODE_PG_BIN"
"""Environment variable naming the directory of ``initdb`` and ``pg_ctl``."""

_USER = "lgoc"
_SYSTEM_USER = "postgres"


def find_postgres_bin() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``.

    Looked up in ``$LANGGRAPH_OPENCODE_PG_BIN``, then Debian's
    ``/usr/lib/postgresql/<version>/bin`` (newest first), then ``PATH``.

    Raises:
        BinaryNotFoundError: No PostgreSQL server programs are installed.
    """
    candidates = []
    if os.environ.get(PG_BIN_ENV_VAR):
        candidates.append(Path(os.environ[PG_BIN_ENV_VAR]))
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += [Path(p) for p in debian]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    raise BinaryNotFoundError(
        "PostgreSQL server programs (initdb, pg_ctl) not found: run `make setup`, which "
        "installs Debian's `postgresql` package, or set "
        f"{PG_BIN_ENV_VAR} to the directory that holds them"
    )


class PostgresServer:
    """A PostgreSQL cluster of its own, started on loopback; use as a context manager.

    Attributes:
        url: ``postgresql://`` URL with the user, password, port and database.
        port: The TCP port on 127.0.0.1.
        directory: The cluster's temporary directory (data, socket, log).
    """

    def __init__(self, *, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or find_postgres_bin()
        self.port = 0
        self.directory: Path | None = None
        self._password = secrets.token_urlsafe(18)
        self._as_root = os.geteuid() == 0

    @property
    def url(self) -> str:
        """The connection URL (it holds the password: keep it out of logs)."""
        return (
            f"postgresql://{_USER}:{quote(self._password, safe='')}@127.0.0.1:{self.port}/postgres"
        )

    @property
    def password(self) -> str:
        """The password of the ``lgoc`` superuser."""
        return self._password

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", _SYSTEM_USER, "--", *command]
        # Generous: initdb and a start take seconds on a quiet machine, far more on a busy one.
        return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)

    def start(self) -> PostgresServer:
        """Create and start the cluster.

        Raises:
            ServerStartError: ``initdb`` or ``pg_ctl start`` failed (their output is given).
        """
        self.directory = Path(tempfile.mkdtemp(prefix="lgoc-postgres-"))
        data = self.directory / "data"
        pwfile = self.directory / "pwfile"
        pwfile.write_text(self._password + "\n")
        if self._as_root:
            shutil.chown(self.directory, _SYSTEM_USER)
            shutil.chown(pwfile, _SYSTEM_USER)
        self.directory.chmod(0o700)
        pwfile.chmod(0o600)
        self.port = free_port()
        steps = [
            (
                "initdb",
                "-D",
                str(data),
                "-U",
                _USER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--no-sync",
            ),
            (
                "pg_ctl",
                "-D",
                str(data),
                "-l",
                str(self.directory / "server.log"),
                "-o",
                f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off",
                "-w",
                "-t",
                "300",
                "start",
            ),
        ]
        for step in steps:
            done = self._run(*step)
            if done.returncode != 0:
                log = self.directory / "server.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                output = (done.stdout + done.stderr + tail).replace(self._password, "***")
                self.stop()
                raise ServerStartError(f"PostgreSQL {step[0]} failed:\n{output.strip()}")
        pwfile.unlink()
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory."""
        if self.directory is None:
            return
        data = self.directory / "data"
        if (data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", "300", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
