"""Live connections the nodes share: one client, event hub and toolkit per server.

These cannot live in the state (they are not data) nor in the settings (they
are not serialisable), so each process keeps a registry keyed by server URL
and event loop. Passwords come from an embedded server registered here, or
from the environment variable the settings name for that server; they are
never stored in state, settings or checkpoints.

A run may use several servers (``RunSettings.servers()``): :func:`pick_server`
chooses the least loaded one that answers, and :func:`server_lost` decides
that a server that stopped answering is gone (its sessions are then moved).
"""

from __future__ import annotations

import asyncio
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


@dataclass
class Services:
    """The connections to one OpenCode server."""

    client: OpenCodeClient
    hub: EventHub
    tools: OpenCodeToolkit
    url: str = ""


_passwords: dict[str, SecretStr] = {}
_services: dict[tuple[str, int], Services] = {}


def register_server(url: str, password: SecretStr | None) -> None:
    """Make an in-process server's password known to the nodes (not stored anywhere)."""
    if password is None:
        _passwords.pop(url.rstrip("/"), None)
    else:
        _passwords[url.rstrip("/")] = password


def client_for(
    settings: RunSettings,
    url: str,
    *,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    retry_attempts: int = 3,
) -> OpenCodeClient:
    """A new client of ``url`` with its password (registered, or from its environment variable)."""
    url = url.rstrip("/")
    password = _passwords.get(url)
    env = settings.password_env_for(url)
    if password is None and os.environ.get(env):
        password = SecretStr(os.environ[env])
    return OpenCodeClient(url, password=password, timeout=timeout, retry_attempts=retry_attempts)


def _primary(settings: RunSettings) -> str:
    servers = settings.servers()
    if not servers:
        raise ConfigurationError(
            "no OpenCode server: set server_url in the run settings, or use "
            "orchestrate()/the CLI, which start an embedded server"
        )
    return servers[0]


async def services_for(settings: RunSettings, url: str | None = None) -> Services:
    """Return (opening them on first use) the connections to one of the run's servers.

    Args:
        settings: The run's settings (for the password's environment variable).
        url: The server; by default the run's primary server.

    Raises:
        ConfigurationError: No server URL is set.
        OpenCodeConnectionError: The server cannot be reached, or is not one
            of the run's servers.
        AuthenticationError: The server refuses the password.
        EventStreamError: The server's event stream cannot be opened.
    """
    url = (url or _primary(settings)).rstrip("/")
    if url not in settings.servers():
        # A session recorded on a server the run no longer lists (a resume
        # with other servers): out of reach for this run.
        raise OpenCodeConnectionError(f"{url} is not one of the run's OpenCode servers")
    key = (url, id(asyncio.get_running_loop()))
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
                env = settings.password_env_for(url)
                raise AuthenticationError(
                    f"{exc} (server {url}; its password is read from ${env})",
                    status_code=exc.status_code,
                    method=exc.method,
                    path=exc.path,
                    detail=exc.detail,
                ) from None
            raise
    if services is None:
        hub = EventHub(client)
        hub.start()
        services = Services(client=client, hub=hub, tools=OpenCodeToolkit(client), url=url)
        _services[key] = services
    try:
        await services.hub.wait_connected()
    except Exception:
        await _close(key)
        raise
    return services


def least_loaded(servers: list[str], load: Mapping[str, int]) -> list[str]:
    """``servers`` ordered by how many sessions each runs (fewest first; ties: list order)."""
    return sorted(servers, key=lambda url: (load.get(url, 0), servers.index(url)))


async def pick_server(settings: RunSettings, load: Mapping[str, int]) -> Services:
    """The least loaded of the run's servers that answers.

    Args:
        settings: The run's settings.
        load: How many sessions run on each server now.

    Raises:
        OpenCodeConnectionError: None of the run's servers can be reached.
        AuthenticationError: A server refuses its password.
    """
    _primary(settings)  # no server at all: a configuration error
    problems: list[str] = []
    for url in least_loaded(settings.servers(), load):
        try:
            return await services_for(settings, url)
        except UNREACHABLE as exc:
            problems.append(f"{url}: {exc}")
    raise OpenCodeConnectionError(
        "no OpenCode server of the run can be reached; the run is checkpointed and can be "
        "resumed once one is back:\n- " + "\n- ".join(problems)
    )


async def server_lost(settings: RunSettings, url: str, *, grace: float = LOST_AFTER) -> bool:
    """Whether ``url`` is gone: not one of the run's servers, or no answer for ``grace`` s.

    A server that answers anything (even a refusal) is not gone. A gone
    server's connections are closed; :func:`services_for` opens new ones if
    it comes back.
    """
    url = url.rstrip("/")
    if url not in settings.servers():
        return True
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


async def _close(key: tuple[str, int]) -> None:
    services = _services.pop(key, None)
    if services is not None:
        await services.hub.stop()
        await services.client.aclose()


async def close_services(url: str | None = None) -> None:
    """Close the connections opened in this event loop (to ``url``, or all)."""
    loop = id(asyncio.get_running_loop())
    for key in [k for k in _services if k[1] == loop and (url is None or k[0] == url.rstrip("/"))]:
        await _close(key)
