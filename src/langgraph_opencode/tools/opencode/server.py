"""An embedded ``opencode serve`` process, owned by Python.

```python
async with OpenCodeServer(config=build_config(model="anthropic/claude-sonnet-4-5")) as server:
    ...  # talk to server.url with HTTP Basic auth (server.username, server.password)
```

[`OpenCodeServer`][] finds the ``opencode`` executable
([`find_opencode_binary`][]), starts it on a loopback port with a random
password, waits until ``GET /global/health`` answers, and stops it again on
exit. The server runs in its own process group, so whatever it started (shell
commands, language servers) is stopped with it. Its stdout and stderr go to a
log file; start-up failures raise [`ServerStartError`][] with the end of that
log. The password is a ``pydantic.SecretStr`` and never appears in a repr, a
log line or an exception message.

The commands the agents run do not see the password either: every server
loads a small plugin of ours (``_hide_password.js``, added to
``OPENCODE_CONFIG_CONTENT``) that deletes it from the server's environment
once OpenCode has read it, blanks it in ``/proc/<pid>/environ`` and makes the
server process non-dumpable. See "Trust boundary" in the README for what an
agent can still reach.

A server can also outlive the object (and the process) that started it, for
as long as somebody holds a lock file (``home=`` and ``keep_while=``): it then
runs under a small keeper process that stops it once nobody has held the lock
for ``linger`` seconds, and its URL, pid and password are in a runtime file in
``home`` (mode 0600, like Jupyter's), so that [`adopt`][] finds it again::

    server = await OpenCodeServer.adopt(home) or OpenCodeServer(home=home, keep_while=lock)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import httpx
from pydantic import SecretStr

from langgraph_opencode.errors import ConfigurationError, ServerStartError
from langgraph_opencode.tools._process import signal_group
from langgraph_opencode.tools.opencode.binary import (
    BINARY_ENV_VAR,
    OPENCODE_VERSION,
    find_opencode_binary,
)

__all__ = [
    "BINARY_ENV_VAR",
    "DEFAULT_USERNAME",
    "OFFLINE_VARS",
    "OPENCODE_VERSION",
    "LogLevel",
    "OpenCodeServer",
    "find_opencode_binary",
    "free_port",
]

DEFAULT_USERNAME = "opencode"
"""HTTP Basic user name the server expects."""

LogLevel = Literal["DEBUG", "INFO", "WARN", "ERROR"]
"""Log levels of ``opencode serve --log-level``."""

_HOST = "127.0.0.1"
_HEALTH_PATH = "/global/health"
# One connection accepted during start-up is never answered: keep polls short.
_HEALTH_POLL_TIMEOUT = 0.5
_HEALTH_POLL_INTERVAL = 0.1
_PORT_ATTEMPTS = 3
_LOG_TAIL_LINES = 40
_LOG_TAIL_BYTES = 16_384
# Inherited variables that would point an isolated server at the user's own
# config, database or credentials.
_USER_STATE_VARS = (
    "OPENCODE_CONFIG",
    "OPENCODE_CONFIG_DIR",
    "OPENCODE_CONFIG_CONTENT",
    "OPENCODE_DB",
    "OPENCODE_AUTH_CONTENT",
)
_AUTH_VARS = ("OPENCODE_SERVER_PASSWORD", "OPENCODE_SERVER_USERNAME")
# OPENCODE_PURE turns off external plugins, the password plugin among them.
_NOT_INHERITED = (*_AUTH_VARS, "OPENCODE_PURE")
_RUNTIME_FILE = "runtime.json"
_KEEPER = Path(__file__).with_name("_keeper.py")
_PASSWORD_PLUGIN = Path(__file__).with_name("_hide_password.js").as_uri()
# Configuring any plugin makes OpenCode wait, before the first tool call in a
# directory, for the npm install of this package that it starts in each of its
# config directories lacking it (about 70 s of retries when npm cannot reach
# its registry). It skips the install where node_modules exists and
# package-lock.json lists the package: an isolated server's own config
# directory gets both.
_PLUGIN_PACKAGE = "@opencode-ai/plugin"
OFFLINE_VARS = (
    "OPENCODE_DISABLE_MODELS_FETCH",
    "OPENCODE_DISABLE_LSP_DOWNLOAD",
    "OPENCODE_DISABLE_DEFAULT_PLUGINS",
    "OPENCODE_DISABLE_SHARE",
    "OPENCODE_DISABLE_CLAUDE_CODE",
    "OPENCODE_DISABLE_EXTERNAL_SKILLS",
)
"""Set to ``1`` for an isolated server: no fetch of the models.dev catalogue
(``https://models.opencode.ai/api.json``, at start and hourly), no language
server downloads, no built-in plugins, no sharing, and none of the user's
``~/.claude/CLAUDE.md``, Claude Code skills or other external skills in the
prompts. Each was read in the source of opencode-ai 1.18.33; ``env=`` can
override them."""
_XDG_DIRS = {
    "XDG_DATA_HOME": "data",
    "XDG_CONFIG_HOME": "config",
    "XDG_CACHE_HOME": "cache",
    "XDG_STATE_HOME": "state",
}


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((_HOST, port))
        except OSError:
            return False
        return True


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


class _Detached:
    """A server process that is not our child (it runs under its keeper)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    @property
    def returncode(self) -> int | None:
        return None if _alive(self.pid) else -1

    async def wait(self) -> int:
        # Not our child: nothing tells us when it ends, so look now and then.
        while _alive(self.pid):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return -1


async def _stop_group(pgid: int, grace: float = 10.0) -> None:
    """SIGTERM a detached server's process group, then SIGKILL it after ``grace`` s."""
    signal_group(pgid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_Detached(pgid).wait(), grace)
    signal_group(pgid, signal.SIGKILL)


def _inherited_config(env: Mapping[str, str]) -> dict[str, Any]:
    """The config in the inherited ``OPENCODE_CONFIG_CONTENT``, ``{}`` if there is none."""
    text = env.get("OPENCODE_CONFIG_CONTENT")
    if not text:
        return {}
    try:
        config = json.loads(text)
    except ValueError:
        config = None
    if not isinstance(config, dict):
        # Never echo it: it may hold provider keys.
        raise ConfigurationError("OPENCODE_CONFIG_CONTENT in the environment is not a JSON object")
    return config


def _with_password_plugin(config: Mapping[str, Any], source: str) -> dict[str, Any]:
    """``config`` with the plugin that hides the password from the agents' commands."""
    plugins = config.get("plugin", [])
    if not isinstance(plugins, list):
        raise ConfigurationError(f"{source}: 'plugin' must be a list, got {type(plugins).__name__}")
    if _PASSWORD_PLUGIN in plugins:
        return dict(config)
    return {**config, "plugin": [*plugins, _PASSWORD_PLUGIN]}


def provide_plugin_package(config_dir: Path) -> None:
    """Make OpenCode skip its npm install of ``@opencode-ai/plugin`` into ``config_dir``.

    OpenCode installs that package into each of its config directories that
    lacks it, and a server with plugins configured (ours all have one) waits
    for those installs before a directory's first tool call. This writes an
    empty ``node_modules`` and a ``package.json`` and ``package-lock.json``
    naming the package, which is all OpenCode 1.18.33 checks. Only for
    directories that belong to us (an isolated server's own config directory,
    a test's home), never a user's.
    """
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "node_modules").mkdir(exist_ok=True)
    dependencies = {"dependencies": {_PLUGIN_PACKAGE: OPENCODE_VERSION}}
    lock = {"lockfileVersion": 3, "packages": {"": dependencies}}
    for name, content in (("package.json", dependencies), ("package-lock.json", lock)):
        path = config_dir / name
        if not path.exists():
            path.write_text(json.dumps(content, indent=2) + "\n")


async def _answers(url: str, password: str) -> bool:
    """Whether the server at ``url`` is healthy and takes ``password``."""
    async with httpx.AsyncClient(
        base_url=url,
        auth=(DEFAULT_USERNAME, password),
        timeout=httpx.Timeout(5.0),  # a loaded server is slow, not gone
        trust_env=False,
        verify=url.startswith("https:"),  # loopback HTTP loads no certificates
    ) as client:
        for _ in range(3):  # one connection may go unanswered (see the server notes)
            try:
                response = await client.get(_HEALTH_PATH)
            except httpx.TransportError:
                continue
            return response.status_code == 200
    return False


class OpenCodeServer:
    """An ``opencode serve`` process on a loopback port, as an async context manager.

    ``async with`` starts the server and waits until it is healthy, and on exit
    stops it and removes the temporary directories it made. [`stop`][] and
    [`kill`][] leave those in place, so [`start`][] can bring the server back
    on the same port, with the same password and (when isolated) the same
    data.

    Attributes:
        binary: The ``opencode`` executable that is run.
        isolated: Whether the server has its own temporary XDG directories.
    """

    def __init__(
        self,
        *,
        binary: str | os.PathLike[str] | None = None,
        port: int | None = None,
        password: str | SecretStr | None = None,
        config: Mapping[str, Any] | None = None,
        isolated: bool = False,
        log_path: str | os.PathLike[str] | None = None,
        log_level: LogLevel = "INFO",
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float = 5.0,
        home: str | os.PathLike[str] | None = None,
        keep_while: str | os.PathLike[str] | None = None,
        linger: float = 300.0,
    ) -> None:
        """Describe a server; nothing starts until [`start`][] or ``async with``.

        Args:
            binary: The ``opencode`` executable; by default
                [`find_opencode_binary`][] searches for one.
            port: Loopback port to listen on; by default a free one is picked
                at the first start and kept for restarts.
            password: HTTP Basic password the server will require; by default a
                random one. There is no way to run without one.
            config: OpenCode config for ``OPENCODE_CONFIG_CONTENT`` (see
                ``build_config``). ``None``: the inherited one (none when
                ``isolated``). Either way the plugin that hides the password
                from the agents' commands is added to its ``plugin`` list.
            isolated: Give the server its own temporary XDG data, config,
                cache and state directories (and ignore inherited
                ``OPENCODE_CONFIG*``, ``OPENCODE_DB`` and
                ``OPENCODE_AUTH_CONTENT``), so it sees neither the user's
                OpenCode config nor their provider credentials, and set
                [`OFFLINE_VARS`][] so it stays off the network. For tests and
                offline demos. The directories are removed on [`close`][].
            log_path: File that receives the server's stdout and stderr
                (appended to, kept afterwards). By default a file in a
                temporary directory that [`close`][] removes.
            log_level: ``opencode serve --log-level``.
            cwd: Working directory of the server process; by default the
                current one.
            env: Extra environment variables for the server (e.g. provider API
                keys), applied over the inherited environment.
            startup_timeout: Seconds to wait for the server to become healthy.
            stop_timeout: Seconds [`stop`][] waits after SIGTERM before SIGKILL.
            home: A directory of the server's own that outlives it, instead of
                a temporary one: its log (unless ``log_path``), its XDG
                directories when ``isolated`` (so its sessions outlive it
                too), and with ``keep_while`` its runtime file. Never removed.
            keep_while: A lock file (see ``langgraph_opencode.tools.lockfile``):
                the server runs detached under a keeper and stops by itself
                once nobody has held this lock for ``linger`` seconds. Needs
                ``home``.
            linger: See ``keep_while``.

        Raises:
            BinaryNotFoundError: No ``opencode`` executable was found.
            ConfigurationError: An argument is invalid (port out of range,
                config not JSON-serialisable, ``env`` setting the server's
                credentials, ``OPENCODE_CONFIG_CONTENT`` or ``OPENCODE_PURE``,
                unknown log level, non-positive timeout).
        """
        self.binary: Path = find_opencode_binary(binary)
        if port is not None and not 1 <= port <= 65535:
            raise ConfigurationError(f"port must be between 1 and 65535, got {port}")
        if log_level not in ("DEBUG", "INFO", "WARN", "ERROR"):
            raise ConfigurationError(
                f"log_level must be one of DEBUG, INFO, WARN, ERROR, got {log_level!r}"
            )
        if startup_timeout <= 0 or stop_timeout <= 0 or linger <= 0:
            raise ConfigurationError("startup_timeout, stop_timeout and linger must be positive")
        if keep_while is not None and home is None:
            raise ConfigurationError("keep_while needs home (where the runtime file goes)")
        clashing = sorted(set(env or {}) & set(_AUTH_VARS))
        if clashing:
            raise ConfigurationError(
                f"env must not set {', '.join(clashing)}: pass password=... instead"
            )
        for name, instead in (
            ("OPENCODE_CONFIG_CONTENT", "pass config=... instead"),
            ("OPENCODE_PURE", "it turns off the plugin that hides the password from the agents"),
        ):
            if name in (env or {}):
                raise ConfigurationError(f"env must not set {name}: {instead}")
        try:
            json.dumps(config)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"config is not JSON-serialisable: {exc}") from exc
        self._config = None if config is None else _with_password_plugin(config, "config")
        if isinstance(password, SecretStr):
            self._password = password
        else:
            self._password = SecretStr(password or secrets.token_urlsafe(32))
        self.isolated = isolated
        self._port = port
        self._port_fixed = port is not None
        self._log_level = log_level
        self._given_log_path = Path(log_path).absolute() if log_path is not None else None
        self._cwd = Path(cwd) if cwd is not None else None
        self._extra_env = dict(env or {})
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._home = Path(home).absolute() if home is not None else None
        self._keep_while = Path(keep_while).absolute() if keep_while is not None else None
        self._linger = linger
        self._temp_root: Path | None = None
        self._process: asyncio.subprocess.Process | _Detached | None = None
        self.adopted = False
        """Whether [`adopt`][] found this server running (started by another object)."""
        # Safety nets for a server object dropped, or an interpreter leaving,
        # without close(): kill the process group, remove the temporary files.
        self._kill_at_exit: weakref.finalize[[int, signal.Signals], OpenCodeServer] | None = None
        self._remove_at_exit: weakref.finalize[..., OpenCodeServer] | None = None

    # ------------------------------------------------------------------ access

    @property
    def username(self) -> str:
        """HTTP Basic user name: always ``"opencode"``."""
        return DEFAULT_USERNAME

    @property
    def password(self) -> SecretStr:
        """HTTP Basic password; ``.get_secret_value()`` gives the string."""
        return self._password

    @property
    def port(self) -> int:
        """The loopback port.

        Raises:
            RuntimeError: No port was given and the server never started.
        """
        if self._port is None:
            raise RuntimeError("OpenCodeServer has no port yet: start it first")
        return self._port

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:<port>``.

        Raises:
            RuntimeError: No port was given and the server never started.
        """
        return f"http://{_HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id of the running server, or ``None`` when it is not running."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive (healthy or still starting)."""
        return self.pid is not None

    @property
    def log_path(self) -> Path:
        """File receiving the server's stdout and stderr.

        Raises:
            RuntimeError: No ``log_path`` was given and the server never
                started, so no temporary log file exists yet.
        """
        if self._given_log_path is not None:
            return self._given_log_path
        if self._home is not None:
            return self._home / "opencode-serve.log"
        if self._temp_root is None:
            raise RuntimeError("OpenCodeServer has no log file yet: start it first")
        return self._temp_root / "opencode-serve.log"

    @property
    def data_dir(self) -> Path | None:
        """The own ``XDG_DATA_HOME`` of an isolated server (``None`` otherwise)."""
        root = self._xdg_root
        return None if root is None else root / _XDG_DIRS["XDG_DATA_HOME"]

    @property
    def _xdg_root(self) -> Path | None:
        if not self.isolated:
            return None
        if self._home is not None:
            return self._home / "xdg"
        return None if self._temp_root is None else self._temp_root / "xdg"

    @property
    def runtime_file(self) -> Path | None:
        """Where a kept server (``keep_while``) records its URL, pid and password."""
        return None if self._home is None else self._home / _RUNTIME_FILE

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "no port yet"
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<OpenCodeServer {where} {state} isolated={self.isolated}>"

    # --------------------------------------------------------------- lifecycle

    @classmethod
    async def adopt(
        cls,
        home: str | os.PathLike[str],
        *,
        keep_while: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> Self | None:
        """The kept server whose runtime file is in ``home``, if it is alive and answers.

        A runtime file that names a dead or unanswering server is removed.

        Args:
            home: The server's ``home`` directory.
            keep_while: The lock file it is kept for.
            **kwargs: As for the constructor (``binary``, ``stop_timeout``, ...).
        """
        path = Path(home) / _RUNTIME_FILE
        try:
            record = json.loads(await asyncio.to_thread(path.read_text))
            url, pid, password = str(record["url"]), int(record["pid"]), str(record["password"])
            port = int(url.rsplit(":", 1)[1])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            await asyncio.to_thread(path.unlink, missing_ok=True)
            return None
        if not _alive(pid):
            await asyncio.to_thread(path.unlink, missing_ok=True)
            return None
        if not await _answers(url, password):
            # Alive but not answering: stop it, so that a new server never runs
            # beside it on the same data (two servers would run the same turns).
            await _stop_group(pid)
            await asyncio.to_thread(path.unlink, missing_ok=True)
            return None
        server = cls(
            home=home,
            keep_while=keep_while,
            port=port,
            password=password,
            isolated=bool(record.get("isolated")),
            **kwargs,
        )
        server._process = _Detached(pid)
        server.adopted = True
        return server

    def detach(self) -> None:
        """Let go of a kept server without stopping it: its keeper stops it later.

        Calling it when the server is not running does nothing.
        """
        if self._keep_while is None:
            raise RuntimeError("only a kept server (keep_while=...) can be left running")
        self._process = None

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the server and wait until ``GET /global/health`` answers.

        After [`stop`][] or [`kill`][] this starts it again on the same port
        with the same password. If the caller is cancelled or interrupted
        while waiting, the process is killed before the exception propagates.

        Raises:
            RuntimeError: The server is already running.
            ServerStartError: The process exited, or was not healthy within
                ``startup_timeout``; the message ends with the log's tail.
        """
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        if self._process is not None:  # it exited on its own
            self._forget(self._process)
        self._prepare_dirs()
        attempts = 1 if self._port_fixed else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._port if self._port is not None else free_port()
            try:
                await self._start_on(port)
            except ServerStartError:
                # A port we picked ourselves may have been taken in between.
                if attempt == attempts or self._port is not None or _port_is_free(port):
                    raise
                continue
            self._port = port
            return

    async def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ``stop_timeout`` seconds.

        Calling it when the server is not running does nothing. Temporary
        directories are kept for a later [`start`][]; [`close`][] removes them.
        """
        process = self._process
        if process is None:
            return
        try:
            if process.returncode is None:
                signal_group(process.pid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), self._stop_timeout)
                except TimeoutError:
                    signal_group(process.pid, signal.SIGKILL)
                    await process.wait()
        finally:
            self._forget(process)

    async def kill(self) -> None:
        """Kill the server with SIGKILL at once, as a crash would.

        Calling it when the server is not running does nothing.
        """
        process = self._process
        if process is None:
            return
        try:
            signal_group(process.pid, signal.SIGKILL)
            await process.wait()
        finally:
            self._forget(process)

    async def close(self) -> None:
        """Stop the server and remove the temporary directories it made.

        This is what leaving ``async with`` does. The object can be started
        again afterwards, with fresh temporary directories.
        """
        try:
            await self.stop()
        finally:
            if self._remove_at_exit is not None:
                self._remove_at_exit()
                self._remove_at_exit = None
            self._temp_root = None

    # ---------------------------------------------------------------- internal

    def _prepare_dirs(self) -> None:
        needs_temp = self._home is None and (self.isolated or self._given_log_path is None)
        if self._temp_root is None and needs_temp:
            self._temp_root = Path(tempfile.mkdtemp(prefix="langgraph-opencode-"))
            self._remove_at_exit = weakref.finalize(
                self, shutil.rmtree, self._temp_root, ignore_errors=True
            )
        if self._home is not None:
            self._home.mkdir(parents=True, exist_ok=True, mode=0o700)
        root = self._xdg_root
        if root is not None:
            for name in _XDG_DIRS.values():
                (root / name).mkdir(parents=True, exist_ok=True)
            provide_plugin_package(root / _XDG_DIRS["XDG_CONFIG_HOME"] / "opencode")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)

    def _environment(self, *, with_password: bool = True) -> dict[str, str]:
        env = dict(os.environ)
        for name in _NOT_INHERITED:
            env.pop(name, None)
        root = self._xdg_root
        if root is not None:
            for name in _USER_STATE_VARS:
                env.pop(name, None)
            for var, name in _XDG_DIRS.items():
                env[var] = str(root / name)
            env.update(dict.fromkeys(OFFLINE_VARS, "1"))
        config = self._config
        if config is None:
            config = _with_password_plugin(_inherited_config(env), "OPENCODE_CONFIG_CONTENT")
        env["OPENCODE_CONFIG_CONTENT"] = json.dumps(config)
        env["OPENCODE_DISABLE_AUTOUPDATE"] = "1"
        env.update(self._extra_env)
        env["OPENCODE_SERVER_USERNAME"] = DEFAULT_USERNAME
        if with_password:
            env["OPENCODE_SERVER_PASSWORD"] = self._password.get_secret_value()
        return env

    async def _spawn(self, command: list[str], log: Any) -> asyncio.subprocess.Process | _Detached:
        """Start the server: as our child, or detached under its keeper (``keep_while``)."""
        if self._keep_while is None or self.runtime_file is None:
            return await asyncio.create_subprocess_exec(
                *command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._environment(),
                cwd=self._cwd,
                start_new_session=True,
            )
        keeper = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",  # no user site, no PYTHON* variables: the keeper needs only the stdlib
            str(_KEEPER),
            "--lock",
            str(self._keep_while),
            "--linger",
            repr(self._linger),
            "--runtime",
            str(self.runtime_file),
            "--log",
            str(self.log_path),
            "--",
            *command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=self._environment(with_password=False),
            cwd=self._cwd,
            start_new_session=True,
        )
        # The password goes through a pipe, so it is in no environment but the server's.
        out, _ = await keeper.communicate((self._password.get_secret_value() + "\n").encode())
        try:
            return _Detached(int(out.decode().strip()))
        except ValueError:
            raise ServerStartError(
                f"the keeper of opencode serve exited with code {keeper.returncode} "
                f"without starting it; see {self.log_path}"
            ) from None

    def _write_runtime(self, port: int) -> None:
        path, process = self.runtime_file, self._process
        if path is None or process is None or self._keep_while is None:
            return
        record = {
            "url": f"http://{_HOST}:{port}",
            "pid": process.pid,
            "password": self._password.get_secret_value(),
            "isolated": self.isolated,
            "started": datetime.now(UTC).isoformat(),
        }
        temp = path.with_suffix(".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            json.dump(record, file)
        temp.replace(path)

    def _remove_runtime(self, pid: int) -> None:
        path = self.runtime_file
        if path is None:
            return
        try:
            if json.loads(path.read_text()).get("pid") != pid:
                return
        except (OSError, ValueError):
            return
        with contextlib.suppress(OSError):
            path.unlink()

    async def _start_on(self, port: int) -> None:
        command = [
            str(self.binary),
            "serve",
            "--hostname",
            _HOST,
            "--port",
            str(port),
            "--print-logs",
            "--log-level",
            self._log_level,
        ]
        log_path = self.log_path
        with log_path.open("ab") as log:
            log.write(
                f"--- langgraph-opencode: {datetime.now(UTC).isoformat()} starting "
                f"{' '.join(command)} ---\n".encode()
            )
            log.flush()
            log_offset = log.tell()
            # The child gets its own copy of the log descriptor; ours closes here.
            process = await self._spawn(command, log)
        self._process = process
        if self._keep_while is None:
            # A kept server is stopped by its keeper, not by our exit.
            self._kill_at_exit = weakref.finalize(self, signal_group, process.pid, signal.SIGKILL)
        try:
            await self._wait_healthy(process, port, log_offset)
            self._write_runtime(port)
        except BaseException:
            # Covers timeouts and exits, but also cancellation and Ctrl-C.
            signal_group(process.pid, signal.SIGKILL)
            try:
                await process.wait()
            finally:
                self._forget(process)
            raise

    async def _wait_healthy(
        self, process: asyncio.subprocess.Process | _Detached, port: int, log_offset: int
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._startup_timeout
        last_problem = "no answer yet"
        async with httpx.AsyncClient(
            base_url=f"http://{_HOST}:{port}",
            auth=(DEFAULT_USERNAME, self._password.get_secret_value()),
            timeout=httpx.Timeout(_HEALTH_POLL_TIMEOUT),
            limits=httpx.Limits(max_keepalive_connections=0),
            trust_env=False,
            verify=False,  # loopback HTTP: no certificates to load
        ) as client:
            while True:
                if process.returncode is not None:
                    code = (
                        ""  # not our child: its keeper logs the code
                        if isinstance(process, _Detached)
                        else f" with code {process.returncode}"
                    )
                    raise self._start_error(
                        f"exited{code} before it became healthy",
                        port,
                        log_offset,
                    )
                try:
                    response = await client.get(_HEALTH_PATH)
                    if response.status_code == 200 and response.json().get("healthy") is True:
                        return
                    last_problem = f"{_HEALTH_PATH} answered {response.status_code}"
                except (httpx.TransportError, ValueError, AttributeError) as exc:
                    last_problem = f"{_HEALTH_PATH}: {type(exc).__name__}"
                remaining = deadline - loop.time()
                if remaining <= 0:
                    signal_group(process.pid, signal.SIGKILL)
                    await process.wait()
                    raise self._start_error(
                        f"was not healthy after {self._startup_timeout:g} s ({last_problem})",
                        port,
                        log_offset,
                    )
                # Sleeps for the poll interval, but wakes at once if the process exits.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), min(_HEALTH_POLL_INTERVAL, remaining))

    def _start_error(self, what: str, port: int, log_offset: int) -> ServerStartError:
        message = f"opencode serve ({self.binary}) on {_HOST}:{port} {what}."
        if self._given_log_path is not None:
            message += f" Log: {self._given_log_path}."
        tail = self._log_tail(log_offset)
        message += f"\nLast lines of its output:\n{tail}" if tail else "\nIt printed nothing."
        return ServerStartError(message)

    def _log_tail(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(max(offset, log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
                data = log.read()
        except OSError as exc:
            return f"(could not read {self.log_path}: {exc})"
        text = data.decode("utf-8", errors="replace")
        # The password, and any value given through env= (provider keys).
        secrets_ = [self._password.get_secret_value(), *self._extra_env.values()]
        for secret in sorted(secrets_, key=len, reverse=True):
            if len(secret) >= 6:
                text = text.replace(secret, "**********")
        return "\n".join(text.strip().splitlines()[-_LOG_TAIL_LINES:])

    def _forget(self, process: asyncio.subprocess.Process | _Detached) -> None:
        # Anything the server left behind in its group goes with it.
        signal_group(process.pid, signal.SIGKILL)
        self._remove_runtime(process.pid)
        if self._process is process:
            self._process = None
            if self._kill_at_exit is not None:
                self._kill_at_exit.detach()
                self._kill_at_exit = None
