"""How the client maps transport failures and HTTP statuses to its exceptions.

These use httpx's MockTransport to produce exact failures; the behaviour
against a real server is covered in test_client_live.py.
"""

from __future__ import annotations

import base64
import socket
from pathlib import Path

import httpx
import pytest

from langgraph_opencode.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    DirectoryNotFoundError,
    NotFoundError,
    OpenCodeConnectionError,
    OpenCodeHTTPError,
    OpenCodeTimeoutError,
    ServerError,
)
from langgraph_opencode.tools.opencode import OpenCodeClient

SECRET = "s3cr3t-password-do-not-leak"


def client_for(handler: httpx.MockTransport, **kwargs: object) -> OpenCodeClient:
    return OpenCodeClient("http://opencode.test", transport=handler, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (409, ConflictError),
        (418, OpenCodeHTTPError),
        (500, ServerError),
        (503, ServerError),
    ],
)
async def test_status_codes_map_to_exception_classes(
    status: int, exc_type: type[Exception], tmp_path: Path
) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, text="nope"))
    async with client_for(transport, retry_attempts=1) as oc:
        with pytest.raises(exc_type) as info:
            await oc.get_session("ses_x", tmp_path)
    err = info.value
    assert isinstance(err, OpenCodeHTTPError)
    assert err.status_code == status
    assert err.path == "/session/ses_x"
    assert str(status) in str(err)


async def test_auth_error_says_what_to_do_and_never_shows_the_password(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization", ""))
        return httpx.Response(401, json={"_tag": "UnauthorizedError", "message": "Unauthorized"})

    async with client_for(httpx.MockTransport(handler), password=SECRET) as oc:
        with pytest.raises(AuthenticationError) as info:
            await oc.list_sessions(tmp_path)
        assert SECRET not in repr(oc)
    expected = "Basic " + base64.b64encode(f"opencode:{SECRET}".encode()).decode()
    assert seen == [expected]
    message = str(info.value)
    assert "password" in message
    assert "OPENCODE_SERVER_PASSWORD" in message
    assert SECRET not in message
    assert SECRET not in repr(info.value.args)


async def test_password_and_username_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENCODE_SERVER_PASSWORD", SECRET)
    monkeypatch.setenv("OPENCODE_SERVER_USERNAME", "robot")
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={"healthy": True, "version": "x"})

    async with client_for(httpx.MockTransport(handler)) as oc:
        assert await oc.health() == {"healthy": True, "version": "x"}
    assert seen == ["Basic " + base64.b64encode(f"robot:{SECRET}".encode()).decode()]


async def test_safe_calls_are_retried_on_5xx_then_succeed(tmp_path: Path) -> None:
    answers = iter([httpx.Response(502), httpx.Response(500), httpx.Response(200, json={})])
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return next(answers)

    async with client_for(httpx.MockTransport(handler), retry_attempts=3) as oc:
        assert await oc.status(tmp_path) == {}
    assert calls == ["GET", "GET", "GET"]


async def test_unsafe_calls_are_never_retried(tmp_path: Path) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(500)

    async with client_for(httpx.MockTransport(handler), retry_attempts=5) as oc:
        with pytest.raises(ServerError):
            await oc.create_session(tmp_path, title="t")
        with pytest.raises(ServerError):
            await oc.prompt_async("ses_1", tmp_path, "hi", agent="build")
    assert calls == ["/session", "/session/ses_1/prompt_async"]


async def test_client_errors_are_not_retried(tmp_path: Path) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(404, json={"name": "NotFoundError", "data": {"message": "gone"}})

    async with client_for(httpx.MockTransport(handler), retry_attempts=5) as oc:
        with pytest.raises(NotFoundError, match="gone"):
            await oc.get_session("ses_gone", tmp_path)
    assert len(calls) == 1


async def test_connection_failures_are_retryable_connection_errors(tmp_path: Path) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("connection refused", request=request)

    async with client_for(httpx.MockTransport(handler), retry_attempts=2) as oc:
        with pytest.raises(OpenCodeConnectionError) as info:
            await oc.status(tmp_path)
    assert info.value.retryable
    assert calls == 2
    assert "opencode serve" in str(info.value)


async def test_timeouts_are_reported_as_timeouts(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    async with client_for(httpx.MockTransport(handler), retry_attempts=1) as oc:
        with pytest.raises(OpenCodeTimeoutError, match="did not answer"):
            await oc.messages("ses_1", tmp_path)


async def test_every_instance_call_sends_the_directory(tmp_path: Path) -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params.get("directory"))
        return httpx.Response(200, json=[])

    async with client_for(httpx.MockTransport(handler)) as oc:
        await oc.list_sessions(tmp_path)
        await oc.permissions(tmp_path)
        await oc.questions(tmp_path)
        await oc.children("ses_1", tmp_path)
        await oc.todo("ses_1", tmp_path)
    assert seen == [str(tmp_path)] * 5


async def test_nonexistent_directory_is_refused_before_any_request(tmp_path: Path) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, json={})

    missing = tmp_path / "no-such-dir"
    async with client_for(httpx.MockTransport(handler)) as oc:
        with pytest.raises(DirectoryNotFoundError, match="does not exist") as info:
            await oc.create_session(missing, title="x")
        with pytest.raises(DirectoryNotFoundError):
            await oc.status(tmp_path / "a-file.txt")
    assert calls == 0
    assert str(missing) in str(info.value)


def test_model_must_be_provider_slash_model() -> None:
    with pytest.raises(ValueError, match="provider/model"):
        OpenCodeClient.prompt_body("hi", agent="build", model="just-a-model")
    body = OpenCodeClient.prompt_body(
        "hi", agent="build", model="anthropic/claude", schema={"type": "object"}, message_id="m"
    )
    assert body["model"] == {"providerID": "anthropic", "modelID": "claude"}
    assert body["format"] == {"type": "json_schema", "schema": {"type": "object"}}
    assert body["messageID"] == "m"


def test_new_message_ids_ascend_in_the_servers_format() -> None:
    ids = [OpenCodeClient.new_message_id() for _ in range(200)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 200
    assert all(i.startswith("msg_") and len(i) == len("msg_") + 26 for i in ids)


async def test_credentials_in_the_url_become_auth_and_are_not_shown(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(503)

    url = f"http://robot:{SECRET}@opencode.test"
    async with OpenCodeClient(url, transport=httpx.MockTransport(handler), retry_attempts=1) as oc:
        assert SECRET not in repr(oc)
        assert SECRET not in oc.base_url
        with pytest.raises(ServerError) as info:
            await oc.status(tmp_path)
    assert SECRET not in str(info.value)
    assert seen == ["Basic " + base64.b64encode(f"robot:{SECRET}".encode()).decode()]


async def test_proxy_settings_are_ignored_unless_asked_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A proxy would see the Basic-auth password, and httpx does not exempt loopback.
    proxy = socket.socket()
    proxy.bind(("127.0.0.1", 0))
    proxy.listen()
    proxy.settimeout(2)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.getsockname()[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    try:
        async with OpenCodeClient(url, password=SECRET, retry_attempts=1) as oc:
            with pytest.raises(OpenCodeConnectionError):
                await oc.status(tmp_path)
        proxy.setblocking(False)
        with pytest.raises(BlockingIOError):
            proxy.accept()  # nothing went through the proxy
    finally:
        proxy.close()
        closed.close()
