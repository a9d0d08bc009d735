"""Live connections the nodes share: one client, event hub and toolkit per server.

These cannot live in the state (they are not data) nor in the settings (they
are not serialisable), so each process keeps a registry keyed by server URL
and event loop. Passwords come from an embedded server registered here, or
from the environment variable the settings name; they are never stored in
state, settings or checkpoints.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from pydantic import SecretStr

from langgraph_opencode.errors import ConfigurationError
from langgraph_opencode.graph.settings import RunSettings
from langgraph_opencode.tools.opencode.client import OpenCodeClient
from langgraph_opencode.tools.opencode.events import EventHub
from langgraph_opencode.tools.toolkit import OpenCodeToolkit

__all__ = ["Services", "close_services", "register_server", "services_for"]


@dataclass
class Services:
    """The connections to one OpenCode server."""

    client: OpenCodeClient
    hub: EventHub
    tools: OpenCodeToolkit


_passwords: dict[str, SecretStr] = {}
_services: dict[tuple[str, int], Services] = {}


def register_server(url: str, password: SecretStr | None) -> None:
    """Make an in-process server's password known to the nodes (not stored anywhere)."""
    if password is None:
        _passwords.pop(url.rstrip("/"), None)
    else:
        _passwords[url.rstrip("/")] = password


async def services_for(settings: RunSettings) -> Services:
    """Return (opening them on first use) the connections to the run's server.

    Raises:
        ConfigurationError: No server URL is set.
        OpenCodeConnectionError: The server cannot be reached.
        AuthenticationError: The server refuses the password.
        EventStreamError: The server's event stream cannot be opened.
    """
    url = settings.server_url.rstrip("/")
    if not url:
        raise ConfigurationError(
            "no OpenCode server: set server_url in the run settings, or use "
            "orchestrate()/the CLI, which start an embedded server"
        )
    key = (url, id(asyncio.get_running_loop()))
    services = _services.get(key)
    if services is None:
        password = _passwords.get(url)
        if password is None and os.environ.get(settings.password_env):
            password = SecretStr(os.environ[settings.password_env])
        client = OpenCodeClient(url, password=password)
        try:
            await client.health()  # unreachable, or the wrong password: say so at once
        except BaseException:
            await client.aclose()
            raise
        hub = EventHub(client)
        hub.start()
        services = Services(client=client, hub=hub, tools=OpenCodeToolkit(client))
        _services[key] = services
    try:
        await services.hub.wait_connected()
    except Exception:
        await _close(key)
        raise
    return services


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
