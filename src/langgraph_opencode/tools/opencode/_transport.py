"""Plumbing of the OpenCode client: auth, timeouts, retries, errors, directories.

:class:`ClientTransport` is the base of :class:`~langgraph_opencode.tools.opencode.OpenCodeClient`;
every API method goes through :meth:`ClientTransport.request`, the one place
where transport failures and HTTP statuses become exceptions.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic import SecretStr
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from langgraph_opencode.errors import (
    DirectoryNotFoundError,
    OpenCodeConnectionError,
    OpenCodeError,
    OpenCodeTimeoutError,
    error_for_status,
)

__all__ = ["DEFAULT_TIMEOUT", "ClientTransport"]

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0, pool=10.0)
"""Timeouts for ordinary calls; waiting prompts use no read timeout."""

_PASSWORD_ENV = "OPENCODE_SERVER_PASSWORD"
_USERNAME_ENV = "OPENCODE_SERVER_USERNAME"


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, OpenCodeError) and exc.retryable


class ClientTransport:
    """Connection, auth, retries and error mapping for one server (see ``OpenCodeClient``)."""

    def __init__(
        self,
        base_url: str,
        *,
        password: str | SecretStr | None = None,
        username: str | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry_attempts: int = 3,
        check_directories: bool = True,
        trust_env: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if retry_attempts < 1:
            raise ValueError(f"retry_attempts must be at least 1, got {retry_attempts}")
        url = httpx.URL(base_url)
        if url.userinfo:
            # Credentials in the URL would show in reprs and error messages.
            if password is None and url.password:
                password = url.password
            username = username or url.username or None
            url = url.copy_with(username=None, password=None)
        if password is None:
            env_password = os.environ.get(_PASSWORD_ENV)
            password = SecretStr(env_password) if env_password else None
        elif isinstance(password, str):
            password = SecretStr(password)
        self.base_url = str(url).rstrip("/")
        self.username = username or os.environ.get(_USERNAME_ENV) or "opencode"
        self._password = password
        self._retry_attempts = retry_attempts
        self._check_directories = check_directories
        auth = (
            httpx.BasicAuth(self.username, password.get_secret_value())
            if password is not None
            else None
        )
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=auth,
            timeout=timeout,
            transport=transport,
            trust_env=trust_env,
            # Plain HTTP (a local server) needs no certificates: loading them costs
            # about 50 ms of CPU per client. HTTPS verifies as always.
            verify=url.scheme == "https",
        )

    def __repr__(self) -> str:
        auth = "password set" if self._password is not None else "no password"
        return f"OpenCodeClient({self.base_url!r}, {auth})"

    @property
    def http(self) -> httpx.AsyncClient:
        """The underlying client (authenticated), e.g. for the event stream."""
        return self._http

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    # -- plumbing -----------------------------------------------------------------

    def directory(self, directory: str | os.PathLike[str]) -> str:
        """Return ``directory`` as the absolute path the server expects.

        Raises:
            DirectoryNotFoundError: It does not exist (and checking is on).
        """
        path = Path(directory).expanduser()
        if not path.is_absolute():
            path = path.resolve()
        if self._check_directories and not path.is_dir():
            raise DirectoryNotFoundError(
                f"directory {str(path)!r} does not exist or is not a directory; OpenCode "
                "would accept it silently and work nowhere. Pass an existing directory."
            )
        return str(path)

    async def request(
        self,
        method: str,
        path: str,
        *,
        directory: str | os.PathLike[str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = False,
        timeout: httpx.Timeout | None = None,
    ) -> Any:
        """Send one request and return the decoded JSON body (``None`` if empty).

        Args:
            method: HTTP method.
            path: Route, e.g. ``/session``.
            directory: The project directory the call belongs to.
            params: Extra query parameters.
            json: The JSON body.
            idempotent: Whether the call is safe to repeat; only such calls are
                retried on connection errors and 5xx answers.
            timeout: Overrides the client's timeouts for this call.

        Raises:
            OpenCodeError: A subclass that says what went wrong.
        """
        response = await self.send(
            method,
            path,
            directory=directory,
            params=params,
            json=json,
            idempotent=idempotent,
            timeout=timeout,
        )
        return response.json() if response.content else None

    async def send(
        self,
        method: str,
        path: str,
        *,
        directory: str | os.PathLike[str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = False,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        """Send one request and return the successful response (see :meth:`request`).

        Raises:
            OpenCodeError: A subclass that says what went wrong.
        """
        query: dict[str, Any] = dict(params or {})
        if directory is not None:
            # A stat, in a thread: the event loop never waits on the disk.
            query["directory"] = await asyncio.to_thread(self.directory, directory)
        attempts = self._retry_attempts if idempotent else 1
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=0.2, max=2.0),
            retry=retry_if_exception(_retryable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._send(method, path, query, json, timeout)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self,
        method: str,
        path: str,
        query: dict[str, Any],
        body: Any,
        timeout: httpx.Timeout | None,
    ) -> httpx.Response:
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        try:
            response = await self._http.request(method, path, params=query, json=body, **extra)
        except httpx.TimeoutException as exc:
            raise OpenCodeTimeoutError(
                f"OpenCode server at {self.base_url} did not answer {method} {path} in time "
                f"({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            raise OpenCodeConnectionError(
                f"could not reach the OpenCode server at {self.base_url} for {method} {path}: "
                f"{type(exc).__name__}. Is `opencode serve` running there?"
            ) from None
        if response.status_code >= 400:
            raise error_for_status(
                response.status_code, method=method, path=path, detail=response.text
            )
        return response
