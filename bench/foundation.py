"""Foundation figures: OpenCode server start, and one prompt's round trip.

The scripted model answers at once, so the round trip is what OpenCode and
this client add: prompt_async, the run, the events, and reading the outcome.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench._harness import machine, percentile, warm_up
from langgraph_opencode.testing import (
    Conversation,
    ScriptedModelServer,
    Step,
    Text,
    ToolCall,
    make_repo,
)
from langgraph_opencode.tools.opencode import (
    WORKER_AGENT,
    EventHub,
    OpenCodeClient,
    OpenCodeServer,
    build_config,
    send_and_wait,
)


def _row(name: str, values: list[float]) -> str:
    return (
        f"| {name} | {len(values)} | {statistics.median(values) * 1000:.0f} "
        f"| {percentile(values, 95) * 1000:.0f} | {min(values) * 1000:.0f} "
        f"| {max(values) * 1000:.0f} |"
    )


async def main(starts: int = 5, prompts: int = 20) -> None:
    """Measure and print the table."""
    with ScriptedModelServer() as model, tempfile.TemporaryDirectory() as tmp:
        config = build_config(extra=model.provider_config())
        start_times: list[float] = []
        for _ in range(starts):
            began = time.perf_counter()
            async with OpenCodeServer(isolated=True, config=config):
                start_times.append(time.perf_counter() - began)

        repo = make_repo(Path(tmp) / "repo")
        text_trips: list[float] = []
        write_trips: list[float] = []
        async with (
            OpenCodeServer(isolated=True, config=config) as server,
            OpenCodeClient(server.url, password=server.password) as client,
            EventHub(client) as hub,
        ):
            await warm_up(client, hub, model, repo)
            for i in range(prompts):
                session = await client.create_session(repo, title=f"bench {i}")
                model.script(Step(Text("pong"), user=f"ping {i}"))
                began = time.perf_counter()
                outcome = await send_and_wait(
                    client, hub, session.id, repo, f"ping {i}", agent=WORKER_AGENT
                )
                text_trips.append(time.perf_counter() - began)
                assert outcome.ok, outcome

                model.script(
                    Conversation(
                        ToolCall.write(f"file{i}.txt", "x\n"),
                        Step(Text("written"), after_tool="write"),
                        user=f"write {i}",
                    )
                )
                began = time.perf_counter()
                outcome = await send_and_wait(
                    client, hub, session.id, repo, f"write {i}", agent=WORKER_AGENT
                )
                write_trips.append(time.perf_counter() - began)
                assert outcome.ok, outcome

    print(f"Foundation benchmark, {machine()}")
    print()
    print("| figure | n | median ms | p95 ms | min ms | max ms |")
    print("|---|---|---|---|---|---|")
    print(_row("opencode serve cold start to healthy", start_times))
    print(_row("prompt round trip, text answer (new session)", text_trips))
    print(_row("prompt round trip, write tool + answer", write_trips))
