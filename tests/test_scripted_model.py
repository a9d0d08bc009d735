"""The scripted OpenAI-compatible model server, exercised over plain HTTP."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from langgraph_opencode.testing import (
    ChatRequest,
    Conversation,
    DropConnection,
    ErrorResponse,
    Hang,
    MalformedChunk,
    ScriptedModelServer,
    Step,
    StructuredOutput,
    Text,
    ToolCall,
    ToolCalls,
    Usage,
)

TITLE_SYSTEM = "You are a title generator. You output ONLY a thread title. Nothing else."
BUILD_SYSTEM = "You are opencode, an interactive CLI tool."


def chat_body(
    prompt: str = "hello",
    *,
    system: str = BUILD_SYSTEM,
    tools: tuple[str, ...] = ("bash", "write"),
    history: list[dict[str, Any]] | None = None,
    stream: bool = True,
) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system},
        {"role": "user", "content": prompt},
        *(history or []),
    ]
    body: dict[str, Any] = {
        "model": "scripted",
        "messages": messages,
        "tools": [{"type": "function", "function": {"name": t, "parameters": {}}} for t in tools],
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def tool_turn(name: str, result: str, call_id: str = "call_1") -> list[dict[str, Any]]:
    """History entries for one tool call and its result, as OpenCode sends them."""
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}
    return [
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call_id, "content": result},
    ]


def sse_chunks(response: httpx.Response) -> list[dict[str, Any]]:
    chunks = []
    for line in response.text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            chunks.append(json.loads(line.removeprefix("data: ")))
    return chunks


def streamed_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")
    )


def streamed_tool_calls(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    for chunk in chunks:
        for choice in chunk.get("choices", []):
            calls.extend(choice["delta"].get("tool_calls") or [])
    return calls


def finish_reason(chunks: list[dict[str, Any]]) -> str | None:
    reasons = [c["choices"][0]["finish_reason"] for c in chunks if c.get("choices")]
    return next((r for r in reasons if r), None)


WAIT = 60.0
"""Bound of every wait in this file: a guard against hangs, not a measure of speed."""


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture
def client(model: ScriptedModelServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=model.base_url, timeout=httpx.Timeout(WAIT)) as http:
        yield http


def post(client: httpx.Client, body: dict[str, Any], session: str | None = None) -> httpx.Response:
    headers = {"x-session-id": session} if session else {}
    return client.post("/chat/completions", json=body, headers=headers)


# -- lifecycle and config ---------------------------------------------------


def test_binds_loopback_free_port_and_serves_models() -> None:
    server = ScriptedModelServer(model_id="m1", provider_id="fake")
    assert not server.running
    server.start()
    try:
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert server.model_ref == "fake/m1"
        models = httpx.get(f"{server.base_url}/models").json()
        assert [m["id"] for m in models["data"]] == ["m1"]
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
    finally:
        server.stop()
    assert not server.running
    server.stop()  # idempotent


def test_provider_config_points_opencode_at_the_server(model: ScriptedModelServer) -> None:
    config = model.provider_config()
    assert config["model"] == config["small_model"] == "scripted/scripted"
    provider = config["provider"]["scripted"]
    assert provider["npm"] == "@ai-sdk/openai-compatible"
    assert provider["options"]["baseURL"] == model.base_url
    assert "scripted" in provider["models"]
    assert model.provider_config("other")["model"] == "other/scripted"


async def test_async_context_manager() -> None:
    async with ScriptedModelServer(Step("hi")) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            response = await http.post("/chat/completions", json=chat_body())
        assert streamed_text(sse_chunks(response)) == "hi"
    assert not server.running
    server.assert_complete()


def test_rejects_unknown_auxiliary_kind() -> None:
    with pytest.raises(ValueError, match="valid:"):
        ScriptedModelServer(auxiliary_replies={"nonsense": "x"})  # type: ignore[dict-item]


# -- replies ----------------------------------------------------------------


def test_streamed_text_in_chunks_with_usage(
    model: ScriptedModelServer, client: httpx.Client
) -> None:
    usage = Usage(prompt_tokens=123, completion_tokens=45)
    model.script(Step(Text("hello world", chunk_size=3, usage=usage)))
    response = post(client, chat_body())
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.text.rstrip().endswith("data: [DONE]")
    chunks = sse_chunks(response)
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks if c.get("choices")]
    assert [p for p in pieces if p] == ["hel", "lo ", "wor", "ld"]
    assert finish_reason(chunks) == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 123,
        "completion_tokens": 45,
        "total_tokens": 168,
    }
    model.assert_complete()


def test_chunk_delay_spaces_the_chunks(model: ScriptedModelServer, client: httpx.Client) -> None:
    model.script(Step(Text("abcd", chunk_size=1, chunk_delay=0.1)))
    started = time.monotonic()
    assert streamed_text(sse_chunks(post(client, chat_body()))) == "abcd"
    assert time.monotonic() - started >= 0.3


def test_no_usage_chunk_unless_asked(model: ScriptedModelServer, client: httpx.Client) -> None:
    model.script(Step("plain"))
    body = chat_body()
    del body["stream_options"]
    chunks = sse_chunks(post(client, body))
    assert all("usage" not in c for c in chunks)


def test_non_streaming_text_and_default_usage() -> None:
    with ScriptedModelServer(Step("answer"), default_usage=Usage(prompt_tokens=7)) as server:
        response = httpx.post(f"{server.base_url}/chat/completions", json=chat_body(stream=False))
    completion = response.json()
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"] == {"role": "assistant", "content": "answer"}
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert completion["usage"]["prompt_tokens"] == 7


def test_tool_calls_streamed(model: ScriptedModelServer, client: httpx.Client) -> None:
    model.script(
        Step(
            ToolCalls(
                ToolCall.write("/tmp/a.txt", "A\n"),
                ToolCall.bash("ls -la", description="list"),
                ToolCall("custom", '{"raw": true}', id="my-id"),
                text="Working on it.",
            )
        )
    )
    chunks = sse_chunks(post(client, chat_body()))
    assert streamed_text(chunks) == "Working on it."
    assert finish_reason(chunks) == "tool_calls"
    calls = streamed_tool_calls(chunks)
    assert [c["index"] for c in calls] == [0, 1, 2]
    assert [c["function"]["name"] for c in calls] == ["write", "bash", "custom"]
    assert json.loads(calls[0]["function"]["arguments"]) == {
        "filePath": "/tmp/a.txt",
        "content": "A\n",
    }
    assert json.loads(calls[1]["function"]["arguments"]) == {
        "command": "ls -la",
        "description": "list",
    }
    assert calls[2]["id"] == "my-id"
    assert calls[0]["id"] != calls[1]["id"]


def test_single_tool_call_and_edit_helper_non_streaming(
    model: ScriptedModelServer, client: httpx.Client
) -> None:
    model.script(Step(ToolCall.edit("f.py", "a", "b", replace_all=True)))
    message = post(client, chat_body(stream=False)).json()["choices"][0]["message"]
    (call,) = message["tool_calls"]
    assert call["function"]["name"] == "edit"
    assert json.loads(call["function"]["arguments"]) == {
        "filePath": "f.py",
        "oldString": "a",
        "newString": "b",
        "replaceAll": True,
    }


def test_structured_output_is_a_structured_output_tool_call(
    model: ScriptedModelServer, client: httpx.Client
) -> None:
    model.script(
        Step(StructuredOutput({"verdict": "approve", "score": 3}), tool="StructuredOutput")
    )
    assert post(client, chat_body()).status_code == 400  # no StructuredOutput tool offered
    chunks = sse_chunks(post(client, chat_body(tools=("bash", "StructuredOutput"))))
    (call,) = streamed_tool_calls(chunks)
    assert call["function"]["name"] == "StructuredOutput"
    assert json.loads(call["function"]["arguments"]) == {"verdict": "approve", "score": 3}
    assert finish_reason(chunks) == "tool_calls"


# -- faults -----------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 429, 500])
def test_error_status(model: ScriptedModelServer, client: httpx.Client, status: int) -> None:
    model.script(Step(ErrorResponse(status, "overloaded", retry_after=2)))
    response = post(client, chat_body())
    assert response.status_code == status
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"]["message"] == "overloaded"
    model.assert_complete()


def test_error_with_raw_body(model: ScriptedModelServer, client: httpx.Client) -> None:
    model.script(Step(ErrorResponse(503, body="upstream down")))
    response = post(client, chat_body())
    assert (response.status_code, response.text) == (503, "upstream down")
    assert "retry-after" not in response.headers


def test_error_status_must_be_an_error() -> None:
    with pytest.raises(ValueError, match="400-599"):
        ErrorResponse(200)


def test_delay_before_answering(model: ScriptedModelServer, client: httpx.Client) -> None:
    model.script(Step(Text("late", delay=0.3)))
    started = time.monotonic()
    assert streamed_text(sse_chunks(post(client, chat_body()))) == "late"
    assert time.monotonic() - started >= 0.3


def test_hang_until_released(model: ScriptedModelServer, client: httpx.Client) -> None:
    hang = Hang(then=Text("finally"))
    model.script(Step(hang))
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(post, client, chat_body())
        assert hang.wait_until_hanging(WAIT)
        assert not future.done()
        hang.release()
        assert streamed_text(sse_chunks(future.result(timeout=WAIT))) == "finally"


def test_hang_until_a_path_exists(
    model: ScriptedModelServer, client: httpx.Client, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    hang = Hang(then=Text("it started"), until=marker)
    model.script(Step(hang))
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(post, client, chat_body())
        assert hang.wait_until_hanging(WAIT)
        time.sleep(0.3)  # several polls: nothing is there yet
        assert not future.done()
        assert not hang.released
        marker.write_text("")
        assert streamed_text(sse_chunks(future.result(timeout=WAIT))) == "it started"
    assert hang.released


def test_hang_until_a_condition_holds(model: ScriptedModelServer, client: httpx.Client) -> None:
    happened = threading.Event()
    hang = Hang(then=Text("it happened"), until=happened.is_set)
    model.script(Step(hang))
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(post, client, chat_body())
        assert hang.wait_until_hanging(WAIT)
        assert not future.done()
        happened.set()
        assert streamed_text(sse_chunks(future.result(timeout=WAIT))) == "it happened"


def test_stop_ends_a_hang_promptly() -> None:
    hang = Hang()
    server = ScriptedModelServer(Step(hang)).start()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.post(f"{server.base_url}/chat/completions", json=chat_body(), timeout=WAIT)
        except httpx.HTTPError as error:
            errors.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    assert hang.wait_until_hanging(WAIT)
    server.stop()
    # By the time stop() returns, the hang has ended because of it (it was never released).
    assert server.requests[0].error == "server stopped while hanging"
    assert not hang.released
    caller.join(WAIT)
    assert not caller.is_alive()
    assert len(errors) == 1


def test_drop_connection_mid_stream(model: ScriptedModelServer, client: httpx.Client) -> None:
    model.script(Step(DropConnection(Text("abcdefgh", chunk_size=2), after_chunks=3)))
    received: list[str] = []

    def read_stream() -> None:
        with client.stream("POST", "/chat/completions", json=chat_body()) as response:
            received.extend(response.iter_lines())

    with pytest.raises(httpx.RemoteProtocolError):
        read_stream()
    data = [line for line in received if line.startswith("data: ")]
    assert len(data) == 3  # role chunk + "ab" + "cd", then the connection closed
    assert "[DONE]" not in "".join(received)
    assert model.requests[0].error == "connection dropped after 3 chunks"


def test_drop_connection_non_streaming(model: ScriptedModelServer, client: httpx.Client) -> None:
    model.script(Step(DropConnection()))
    with pytest.raises(httpx.RemoteProtocolError):
        post(client, chat_body(stream=False))


def test_malformed_chunk(model: ScriptedModelServer, client: httpx.Client) -> None:
    model.script(Step(MalformedChunk(Text("ok"), after_chunks=1, data="{broken")))
    response = post(client, chat_body())
    lines = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[1] == "data: {broken"
    assert lines[-1] == "data: [DONE]"
    with pytest.raises(json.JSONDecodeError):
        sse_chunks(response)


# -- matching ---------------------------------------------------------------


def test_matchers_select_by_system_user_tool_and_predicate(
    model: ScriptedModelServer, client: httpx.Client
) -> None:
    model.script(
        Step("planner", system="You are the planner", name="planner"),
        Step("regex", user=re.compile(r"^fix bug #\d+$"), name="regex"),
        Step("has-tool", tool="webfetch", name="tool"),
        Step("predicate", when=lambda r: r.body.get("temperature") == 0.5, name="when"),
    )
    planner = chat_body("anything", system="You are the planner. Plan.")
    regex = chat_body("fix bug #12")
    tool = chat_body("x", tools=("webfetch",))
    predicate = {**chat_body("y"), "temperature": 0.5}
    answers = [
        streamed_text(sse_chunks(post(client, b))) for b in (predicate, tool, regex, planner)
    ]
    assert answers == ["predicate", "has-tool", "regex", "planner"]
    assert [r.step for r in model.requests] == ["when", "tool", "regex", "planner"]
    model.assert_complete()


def test_first_match_in_order_and_repeat(model: ScriptedModelServer, client: httpx.Client) -> None:
    model.script(Step("first", user="go"), Step("again", user="go", repeat=True))
    answers = [streamed_text(sse_chunks(post(client, chat_body("go")))) for _ in range(3)]
    assert answers == ["first", "again", "again"]
    model.assert_complete()


def test_tool_result_matchers(model: ScriptedModelServer, client: httpx.Client) -> None:
    model.script(
        Step("not after tool", after_tool=False),
        Step("after bash failed", after_tool="bash", tool_result=re.compile("exit code [1-9]")),
        Step("after write", after_tool="write", tool_result="Wrote file"),
    )
    write = chat_body(history=tool_turn("write", "Wrote file successfully."))
    bash = chat_body(history=tool_turn("bash", "boom\nexit code 2"))
    assert streamed_text(sse_chunks(post(client, write))) == "after write"
    assert streamed_text(sse_chunks(post(client, bash))) == "after bash failed"
    assert streamed_text(sse_chunks(post(client, chat_body()))) == "not after tool"


def test_chat_request_view() -> None:
    body = chat_body("second", history=tool_turn("write", "ok", "c9"))
    body["messages"].insert(1, {"role": "user", "content": [{"type": "text", "text": "first"}]})
    request = ChatRequest(body, {"x-session-id": "ses_1"})
    assert request.user_texts == ("first", "second")
    assert (request.first_user_text, request.last_user_text) == ("first", "second")
    assert request.tool_results[0].name == "write"
    assert request.tool_results[0].call_id == "c9"
    assert request.conversation_key == "ses_1"
    assert not request.wants_structured_output
    assert ChatRequest(body, {}).conversation_key.startswith("digest:")


# -- conversations ----------------------------------------------------------


def test_conversation_tool_call_then_text(model: ScriptedModelServer, client: httpx.Client) -> None:
    model.script(
        Conversation(
            ToolCall.write("a.txt", "A"),
            Step("done", after_tool="write"),
            user="make a.txt",
            name="make-a",
        )
    )
    first = sse_chunks(post(client, chat_body("make a.txt"), session="ses_A"))
    assert streamed_tool_calls(first)[0]["function"]["name"] == "write"
    follow_up = chat_body("make a.txt", history=tool_turn("write", "Wrote file successfully."))
    assert streamed_text(sse_chunks(post(client, follow_up, session="ses_A"))) == "done"
    assert [r.step for r in model.requests] == ["make-a step 1/2", "make-a step 2/2"]
    model.assert_complete()


def test_parallel_conversations_do_not_steal_steps(
    model: ScriptedModelServer, client: httpx.Client
) -> None:
    model.script(
        Conversation(ToolCall.bash("echo a"), Step("a done", after_tool="bash"), user="task a"),
        Conversation(ToolCall.bash("echo b"), Step("b done", after_tool="bash"), user="task b"),
    )
    post(client, chat_body("task a"), session="ses_a")
    post(client, chat_body("task b"), session="ses_b")
    # b's follow-up first: a's second step must not answer it.
    b_done = post(client, chat_body("task b", history=tool_turn("bash", "b")), session="ses_b")
    a_done = post(client, chat_body("task a", history=tool_turn("bash", "a")), session="ses_a")
    assert streamed_text(sse_chunks(b_done)) == "b done"
    assert streamed_text(sse_chunks(a_done)) == "a done"
    model.assert_complete()


def test_identical_conversations_serve_one_session_each(
    model: ScriptedModelServer, client: httpx.Client
) -> None:
    model.script(
        *(Conversation(ToolCall.read(f"f{i}"), Step(f"done {i}"), user="same") for i in range(2))
    )
    post(client, chat_body("same"), session="ses_1")
    post(client, chat_body("same"), session="ses_2")
    follow = chat_body("same", history=tool_turn("read", "contents"))
    assert streamed_text(sse_chunks(post(client, follow, session="ses_2"))) == "done 1"
    assert streamed_text(sse_chunks(post(client, follow, session="ses_1"))) == "done 0"
    # The session is bound: a third session finds nothing left.
    assert post(client, follow, session="ses_3").status_code == 400


def test_conversation_without_session_header_uses_a_digest(
    model: ScriptedModelServer, client: httpx.Client
) -> None:
    model.script(Conversation(ToolCall.read("x"), "read it", user="look"))
    post(client, chat_body("look"))
    other = chat_body("other prompt", history=tool_turn("read", "x"))
    assert post(client, other).status_code == 400
    same = chat_body("look", history=tool_turn("read", "x"))
    assert streamed_text(sse_chunks(post(client, same))) == "read it"


def test_conversation_rejects_repeat_and_empty() -> None:
    with pytest.raises(ValueError, match="cannot repeat"):
        Conversation(Step("x", repeat=True))
    with pytest.raises(ValueError, match="at least one"):
        Conversation()


# -- auxiliary calls --------------------------------------------------------


def test_title_requests_are_answered_without_using_steps(
    model: ScriptedModelServer, client: httpx.Client
) -> None:
    model.script(Step("real answer", user="hello"))
    title = chat_body("hello", system=TITLE_SYSTEM, tools=())
    assert streamed_text(sse_chunks(post(client, title, session="ses_t"))) == "Scripted session"
    assert streamed_text(sse_chunks(post(client, chat_body("hello"), session="ses_t"))) == (
        "real answer"
    )
    assert [(r.outcome, r.auxiliary) for r in model.requests] == [
        ("auxiliary", "title"),
        ("step", None),
    ]
    assert len(model.chat_requests()) == 1
    assert len(model.chat_requests(auxiliary=True)) == 2
    model.assert_complete()


def test_auxiliary_calls_can_be_scripted_instead() -> None:
    with ScriptedModelServer(
        Step("My Title", system="title generator"),
        auxiliary_replies={"summary": "custom summary"},
    ) as server:
        url = f"{server.base_url}/chat/completions"
        title = httpx.post(url, json=chat_body(system=TITLE_SYSTEM, tools=()))
        summary_system = "Summarize what was done in this conversation. Write like a PR."
        summary = httpx.post(url, json=chat_body(system=summary_system, tools=()))
    assert streamed_text(sse_chunks(title)) == "My Title"
    assert streamed_text(sse_chunks(summary)) == "custom summary"
    assert [r.auxiliary for r in server.requests] == ["title", "summary"]
    assert [r.outcome for r in server.requests] == ["step", "auxiliary"]


# -- unmatched requests and assert_complete ---------------------------------


def test_unmatched_request_is_a_quick_400(model: ScriptedModelServer, client: httpx.Client) -> None:
    model.script(Step("x", user="something else", name="waiting-step"))
    response = post(client, chat_body("surprise"), session="ses_u")
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "no scripted step matches" in message
    assert "surprise" in message
    assert "waiting-step" in message
    assert model.unmatched[0].request.session_id == "ses_u"
    with pytest.raises(AssertionError) as failure:
        model.assert_complete()
    report = str(failure.value)
    assert "1 scripted step(s) never used" in report
    assert "waiting-step" in report
    assert "1 request(s) matched no step" in report
    assert "surprise" in report


def test_unmatched_error_never_looks_retryable_to_opencode(
    model: ScriptedModelServer, client: httpx.Client
) -> None:
    # OpenCode retries even a 400 whose text contains e.g. "500" or "timeout".
    response = post(client, chat_body("server error: timeout"), session="ses_df500abc")
    assert response.status_code == 400
    assert "no scripted step matches" in response.text
    assert "500" not in response.text
    assert "timeout" not in response.text


def test_assert_complete_lists_unfinished_conversations(model: ScriptedModelServer) -> None:
    model.script(Conversation(ToolCall.bash("x"), "done", user="go", name="convo"))
    with pytest.raises(AssertionError, match=r"convo: 2 of 2 steps left \(never started\)"):
        model.assert_complete()


def test_invalid_requests_are_recorded(model: ScriptedModelServer, client: httpx.Client) -> None:
    response = client.post("/chat/completions", content=b"not json")
    assert response.status_code == 400
    assert client.post("/embeddings", json={}).status_code == 400
    assert client.get("/nowhere").status_code == 404
    assert [r.outcome for r in model.requests] == ["invalid", "invalid"]
    with pytest.raises(AssertionError, match="2 request"):
        model.assert_complete()


def test_reset_and_script_replace_steps(model: ScriptedModelServer, client: httpx.Client) -> None:
    model.script(Step("old"))
    model.script(Step("new"))
    assert streamed_text(sse_chunks(post(client, chat_body()))) == "new"
    model.add(Step("added"))
    assert streamed_text(sse_chunks(post(client, chat_body()))) == "added"
    post(client, chat_body())  # unmatched
    model.reset(Step("fresh", name="fresh"))
    assert model.requests == []
    assert model.pending_steps() == ["fresh"]


# -- records ----------------------------------------------------------------


def test_records_and_prompts_per_conversation(
    model: ScriptedModelServer, client: httpx.Client
) -> None:
    model.script(Step("ok", repeat=True))
    post(client, chat_body("one"), session="ses_1")
    history = [{"role": "assistant", "content": "ok"}, {"role": "user", "content": "two"}]
    post(client, chat_body("one", history=history), session="ses_1")
    post(client, chat_body("three"), session="ses_2")
    post(client, chat_body("one", system=TITLE_SYSTEM, tools=()), session="ses_1")
    record = model.requests[0]
    assert record.headers["x-session-id"] == "ses_1"
    assert record.body is not None
    assert record.body["stream"] is True
    assert record.time <= model.requests[1].time
    assert model.prompts() == {"ses_1": ["one", "two"], "ses_2": ["three"]}
    assert sorted(model.all_prompts()) == ["one", "three", "two"]
    assert list(model.conversations()) == ["ses_1", "ses_2"]


def test_wait_for_requests(model: ScriptedModelServer, client: httpx.Client) -> None:
    model.script(Step("ok", repeat=True))
    with pytest.raises(TimeoutError):
        model.wait_for_requests(1, timeout=0.05)
    later = threading.Timer(0.1, post, (client, chat_body()))
    later.start()
    records = model.wait_for_requests(1, where=lambda r: r.outcome == "step", timeout=5)
    later.join(5)
    assert records[0].step is not None


# -- concurrency ------------------------------------------------------------


def test_many_parallel_sessions(model: ScriptedModelServer) -> None:
    sessions = 24
    # Every first answer waits until all 24 first requests are in: they were served at once.
    first_turns = [
        Hang(then=Text(f"thinking {i}", chunk_size=3, chunk_delay=0.005)) for i in range(sessions)
    ]
    model.script(
        *(
            Conversation(
                first_turns[i],
                Step(Text(f"answer {i}"), user="again"),
                user=re.compile(rf"^prompt {i}$"),
            )
            for i in range(sessions)
        )
    )

    def converse(i: int) -> tuple[str, str]:
        with httpx.Client(base_url=model.base_url, timeout=WAIT) as http:
            first = streamed_text(sse_chunks(post(http, chat_body(f"prompt {i}"), f"ses_{i}")))
            history = [
                {"role": "assistant", "content": first},
                {"role": "user", "content": "again"},
            ]
            body = chat_body(f"prompt {i}", history=history)
            return first, streamed_text(sse_chunks(post(http, body, f"ses_{i}")))

    with ThreadPoolExecutor(sessions) as pool:
        conversations = pool.map(converse, range(sessions))
        try:
            assert all(hang.wait_until_hanging(WAIT) for hang in first_turns)
        finally:
            for hang in first_turns:
                hang.release()
        results = list(conversations)
    assert results == [(f"thinking {i}", f"answer {i}") for i in range(sessions)]
    model.assert_complete()


async def test_parallel_async_requests(model: ScriptedModelServer) -> None:
    hold = Hang(then=Text("pong"))
    model.script(Step(hold, repeat=True))
    async with httpx.AsyncClient(base_url=model.base_url, timeout=WAIT) as http:
        calls = asyncio.gather(
            *(http.post("/chat/completions", json=chat_body(stream=False)) for _ in range(20))
        )
        try:
            # All twenty are in before any is answered: served concurrently, not one by one.
            await asyncio.to_thread(model.wait_for_requests, 20, timeout=WAIT)
        finally:
            hold.release()
        responses = await calls
    assert {r.json()["choices"][0]["message"]["content"] for r in responses} == {"pong"}
