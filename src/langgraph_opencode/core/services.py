"""Live connections the nodes share: one client, event hub and toolkit per server.

These cannot live in the state (they are not data) nor in the settings (they
are not serialisable), so each process keeps a registry keyed by server URL
and event loop. Passwords come from an embedded server registered here, or
from the environment variable the settings name for that server; they are
never stored in state, settings or checkpoints.

A run may use several servers (``RunSettings.servers()``): :func:`pick_server`
chooses the least loaded one that answers, and :func:`server_lost` decides
that a server that stopped answering is gone (its sessions are then moved).
A loaded server can go minutes without answering, so that takes more than
silence: the run's embedded server is gone only when its process is (the
process registered with it here says), an external one when it has not
answered for ``server_lost_after`` seconds and its TCP port refuses
connections too. :func:`wait_for_server` rides out the silence of a server
that is not gone.
Servers are known by name: the state records a server's name, which is its
URL, except for the run's embedded server (``EMBEDDED``), whose URL changes
when it is started again for a resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from langgraph_opencode.core.settings import RunSettings
from langgraph_opencode.errors import (
    AuthenticationError,
    ConfigurationError,
    EventStreamError,
    OpenCodeConnectionError,
    OpenCodeError,
)
from langgraph_opencode.tools.opencode.client import DEFAULT_TIMEOUT, OpenCodeClient
from langgraph_opencode.tools.opencode.events import EventHub
from langgraph_opencode.tools.toolkit import OpenCodeToolkit

__all__ = [
    "UNREACHABLE",
    "Services",
    "client_for",
    "close_services",
    "least_loaded",
    "pick_server",
    "register_server",
    "server_lost",
    "services_for",
    "wait_for_server",
]

UNREACHABLE = (OpenCodeConnectionError, EventStreamError)
"""The errors that mean a server may be gone (as opposed to refusing a request)."""

_PROBE_TIMEOUT = httpx.Timeout(2.0)
_CONNECT_TIMEOUT = 60.0
"""How long a new event stream may take to open (a loaded machine is slow, not gone)."""


@dataclass
class Services:
    """The connections to one OpenCode server."""

    client: OpenCodeClient
    hub: EventHub
    tools: OpenCodeToolkit
    url: str = ""
    name: str = ""
    """What the state calls the server (see ``RunSettings.servers``)."""


_passwords: dict[str, SecretStr] = {}
_registrations: dict[str, int] = {}
_alive: dict[str, Callable[[], bool]] = {}
_services: dict[tuple[str, int, str], Services] = {}


def register_server(
    url: str, password: SecretStr | None, *, alive: Callable[[], bool] | None = None
) -> None:
    """Make an in-process server's password known to the nodes (not stored anywhere).

    ``None`` takes one registration back: runs of one process that use the same
    server each register its password, and it stays known until the last is done.
    ``alive`` says whether the server's process still runs: a server known
    that way is gone only when its process is (see :func:`server_lost`).
    """
    url = url.rstrip("/")
    if password is not None:
        _passwords[url] = password
        _registrations[url] = _registrations.get(url, 0) + 1
        if alive is not None:
            _alive[url] = alive
        return
    left = _registrations.get(url, 0) - 1
    if left > 0:
        _registrations[url] = left
    else:
        _registrations.pop(url, None)
        _passwords.pop(url, None)
        _alive.pop(url, None)


def client_for(
    settings: RunSettings,
    url: str,
    *,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    retry_attempts: int = 3,
) -> OpenCodeClient:
    """A new client of ``url`` with its password (registered, or from its environment variable)."""
    url = url.rstrip("/")
    return OpenCodeClient(
        url,
        password=_password_for(settings, url),
        timeout=timeout,
        retry_attempts=retry_attempts,
    )


def _password_for(settings: RunSettings, url: str) -> SecretStr | None:
    password = _passwords.get(url)
    env = settings.password_env_for(url)
    if password is None and os.environ.get(env):
        password = SecretStr(os.environ[env])
    return password


def _password_problem(settings: RunSettings, url: str) -> str:
    """Where ``url``'s password comes from, for an authentication error."""
    if url in _passwords:
        return "the password given for it"
    env = settings.password_env_for(url)
    if not os.environ.get(env):
        return f"its password is read from ${env}, which is not set"
    return f"its password is read from ${env}"


def _primary(settings: RunSettings) -> str:
    servers = settings.servers()
    if not servers:
        raise ConfigurationError(
            "no OpenCode server: set server_url in the run settings, or use "
            "orchestrate()/the CLI, which start an embedded server"
        )
    return servers[0]


async def services_for(settings: RunSettings, name: str | None = None) -> Services:
    """Return (opening them on first use) the connections to one of the run's servers.

    Args:
        settings: The run's settings (for the password's environment variable).
        name: The server's name (see ``RunSettings.servers``); by default the
            run's primary server.

    Raises:
        ConfigurationError: No server URL is set.
        OpenCodeConnectionError: The server cannot be reached, or is not one
            of the run's servers.
        AuthenticationError: The server refuses the password.
        EventStreamError: The server's event stream cannot be opened.
    """
    name = (name or _primary(settings)).rstrip("/")
    if name not in settings.servers():
        # A session recorded on a server the run no longer lists (a resume
        # with other servers): out of reach for this run.
        raise OpenCodeConnectionError(f"{name} is not one of the run's OpenCode servers")
    url = settings.url_of(name)
    key = _key(settings, url)
    services = _services.get(key)
    if services is None or not services.hub.connected:
        client = services.client if services is not None else client_for(settings, url)
        try:
            await client.health()  # unreachable, or the wrong password: say so at once
        except BaseException as exc:
            if services is not None:
                await _close(key)
            else:
                await client.aclose()
            if isinstance(exc, AuthenticationError):
                raise AuthenticationError(
                    f"{exc} (server {url}; {_password_problem(settings, url)})",
                    status_code=exc.status_code,
                    method=exc.method,
                    path=exc.path,
                    detail=exc.detail,
                ) from None
            raise
    if services is None:
        hub = EventHub(client)
        hub.start()
        services = Services(
            client=client, hub=hub, tools=OpenCodeToolkit(client), url=url, name=name
        )
        _services[key] = services
    try:
        await services.hub.wait_connected(timeout=_CONNECT_TIMEOUT)
    except Exception:
        await _close(key)
        raise
    return services


def least_loaded(servers: list[str], load: Mapping[str, int]) -> list[str]:
    """``servers`` ordered by how many sessions each runs (fewest first; ties: list order)."""
    return sorted(servers, key=lambda name: (load.get(name, 0), servers.index(name)))


async def pick_server(settings: RunSettings, load: Mapping[str, int]) -> Services:
    """The least loaded of the run's servers that answers.

    Args:
        settings: The run's settings.
        load: How many sessions run on each server (by name) now.

    Raises:
        OpenCodeConnectionError: None of the run's servers can be reached.
        AuthenticationError: A server refuses its password.
    """
    _primary(settings)  # no server at all: a configuration error
    while True:
        problems: list[str] = []
        for name in least_loaded(settings.servers(), load):
            try:
                return await services_for(settings, name)
            except UNREACHABLE as exc:
                problems.append(f"{settings.url_of(name)}: {exc}")
        # None answers now: wait for the first that is silent, not gone.
        waits = [asyncio.ensure_future(wait_for_server(settings, n)) for n in settings.servers()]
        try:
            back = False
            for answered in asyncio.as_completed(waits):
                if back := await answered:
                    break
        finally:
            for waiting in waits:
                waiting.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        if not back:
            raise OpenCodeConnectionError(
                "no OpenCode server of the run can be reached; the run is checkpointed and "
                "can be resumed once one is back:\n- " + "\n- ".join(problems)
            )


async def _port_open(url: str) -> bool:
    """Whether ``url``'s TCP port takes connections (a stopped or busy server's still does)."""
    parts = httpx.URL(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.host, port), 5.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _answers(settings: RunSettings, url: str) -> bool:
    """Whether ``url`` answers a health check now (a refusal is an answer too)."""
    async with client_for(settings, url, timeout=_PROBE_TIMEOUT, retry_attempts=1) as probe:
        try:
            await probe.health()
        except OpenCodeConnectionError:
            return False
        except OpenCodeError:
            return True
    return True


async def server_lost(settings: RunSettings, name: str, *, grace: float | None = None) -> bool:
    """Whether the server ``name`` is gone, so its sessions are out of reach for good.

    Not one of the run's servers: gone. A server registered with its process
    (the run's embedded server): gone when that process is, however long it
    is silent. Any other: gone when it answers no health check for ``grace``
    seconds (``settings.server_lost_after``) and its TCP port refuses
    connections too; a server that answers anything (even a refusal) is not
    gone. A gone server's connections are closed; :func:`services_for` opens
    new ones if it comes back.
    """
    name = name.rstrip("/")
    if name not in settings.servers():
        return True
    url = settings.url_of(name)
    alive = _alive.get(url)
    if alive is not None:
        lost = not alive()
    else:
        limit = settings.server_lost_after if grace is None else grace
        deadline = time.monotonic() + limit
        while not await _answers(settings, url):
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.5)
        else:
            return False
        lost = not await _port_open(url)
    if lost:
        await close_services(url)
    return lost


async def wait_for_server(settings: RunSettings, name: str) -> bool:
    """Wait until the server ``name`` answers again: ``True``; ``False`` when it is gone.

    For a server that stopped answering without being gone (see
    :func:`server_lost`): a loaded machine, a long garbage collection, a
    stopped process.

    Raises:
        OpenCodeConnectionError: It stayed silent, yet not gone, for
            ``stall_timeout`` seconds: the run stops (checkpointed) rather
            than wait for ever; resume it once the server answers.
    """
    started = time.monotonic()
    while name.rstrip("/") in settings.servers():
        url = settings.url_of(name)
        if await _answers(settings, url):
            return True
        if await server_lost(settings, name):
            return False
        silent = time.monotonic() - started
        if silent > settings.stall_timeout:
            raise OpenCodeConnectionError(
                f"the OpenCode server {url} has not answered for {silent:.0f} s, though it is "
                "not gone; the run is checkpointed: resume it once the server answers "
                "(or restart the server)"
            )
        await asyncio.sleep(1.0)
    return False


def _key(settings: RunSettings, url: str) -> tuple[str, int, str]:
    """Connections are shared per server, event loop and password (a run uses its own)."""
    password = _password_for(settings, url)
    secret = password.get_secret_value() if password is not None else ""
    digest = hashlib.sha256(secret.encode()).hexdigest()[:16] if secret else ""
    return url, id(asyncio.get_running_loop()), digest


async def _close(key: tuple[str, int, str]) -> None:
    services = _services.pop(key, None)
    if services is not None:
        await services.hub.stop()
        await services.client.aclose()


async def close_services(url: str | None = None) -> None:
    """Close the connections opened in this event loop (to ``url``, or all)."""
    loop = id(asyncio.get_running_loop())
    for key in [k for k in _services if k[1] == loop and (url is None or k[0] == url.rstrip("/"))]:
        await _close(key)
