"""Live connections the nodes share: one client, event hub and toolkit per server.

These cannot live in the state (they are not data) nor in the settings (they
are not serialisable), so each process keeps a registry keyed by server URL
and event loop. Passwords come from an embedded server registered here, or
from the environment variable the settings name for that server; they are
never stored in state, settings or checkpoints.

A run may use several servers (``RunSettings.servers()``): :func:`pick_server`
chooses the least loaded one that answers, and :func:`server_lost` decides
that a server that stopped answering is gone (its sessions are then moved).
Servers are known by name: the state records a server's name, which is its
URL, except for the run's embedded server (``EMBEDDED``), whose URL changes
when it is started again for a resume.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from langgraph_opencode.errors import (
    AuthenticationError,
    ConfigurationError,
    EventStreamError,
    OpenCodeConnectionError,
    OpenCodeError,
)
from langgraph_opencode.graph.settings import RunSettings
from langgraph_opencode.tools.opencode.client import DEFAULT_TIMEOUT, OpenCodeClient
from langgraph_opencode.tools.opencode.events import EventHub
from langgraph_opencode.tools.toolkit import OpenCodeToolkit

__all__ = [
    "LOST_AFTER",
    "UNREACHABLE",
    "Services",
    "client_for",
    "close_services",
    "least_loaded",
    "pick_server",
    "register_server",
    "server_lost",
    "services_for",
]

LOST_AFTER = 5.0
"""A server that answers no health check for this many seconds is taken as gone."""

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
_services: dict[tuple[str, int, str], Services] = {}


def register_server(url: str, password: SecretStr | None) -> None:
    """Make an in-process server's password known to the nodes (not stored anywhere).

    ``None`` takes one registration back: runs of one process that use the same
    server each register its password, and it stays known until the last is done.
    """
    url = url.rstrip("/")
    if password is not None:
        _passwords[url] = password
        _registrations[url] = _registrations.get(url, 0) + 1
        return
    left = _registrations.get(url, 0) - 1
    if left > 0:
        _registrations[url] = left
    else:
        _registrations.pop(url, None)
        _passwords.pop(url, None)


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
    problems: list[str] = []
    for name in least_loaded(settings.servers(), load):
        try:
            return await services_for(settings, name)
        except UNREACHABLE as exc:
            problems.append(f"{settings.url_of(name)}: {exc}")
    raise OpenCodeConnectionError(
        "no OpenCode server of the run can be reached; the run is checkpointed and can be "
        "resumed once one is back:\n- " + "\n- ".join(problems)
    )


async def server_lost(settings: RunSettings, name: str, *, grace: float = LOST_AFTER) -> bool:
    """Whether the server ``name`` is gone: not one of the run's, or no answer for ``grace`` s.

    A server that answers anything (even a refusal) is not gone. A gone
    server's connections are closed; :func:`services_for` opens new ones if
    it comes back.
    """
    name = name.rstrip("/")
    if name not in settings.servers():
        return True
    url = settings.url_of(name)
    deadline = time.monotonic() + grace
    async with client_for(settings, url, timeout=_PROBE_TIMEOUT, retry_attempts=1) as probe:
        while True:
            try:
                await probe.health()
                return False
            except OpenCodeConnectionError:
                if time.monotonic() >= deadline:
                    break
            except OpenCodeError:
                return False
            await asyncio.sleep(0.5)
    await close_services(url)
    return True


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
