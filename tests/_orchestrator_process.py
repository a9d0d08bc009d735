"""The orchestrator as its own process, for tests that kill it (``test_graph_resume``).

Usage::

    python tests/_orchestrator_process.py start  REPO RUN_ID SERVER_URL OBJECTIVE
    python tests/_orchestrator_process.py resume REPO RUN_ID SERVER_URL

The server password comes from the environment variable ``PASSWORD_ENV``
(never from the command line); ``SETTINGS_ENV`` may hold ``RunSettings``
fields as JSON. Each event is printed as a JSON line; the last
line is ``REPORT <json>``. Checkpoints go to the default SQLite file in the
repository's ``.git``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from langgraph_opencode.api import aorchestrate, aresume
from langgraph_opencode.core.settings import RunSettings

PASSWORD_ENV = "LGOC_TEST_OPENCODE_PASSWORD"
SETTINGS_ENV = "LGOC_TEST_SETTINGS"


def _print_event(event: dict[str, Any]) -> None:
    print("EVENT " + json.dumps(event, default=str), flush=True)


async def main(argv: list[str]) -> int:
    mode, repo, run_id, server_url, *rest = argv
    fields = {"max_parallel": 4, **json.loads(os.environ.get(SETTINGS_ENV) or "{}")}
    settings = RunSettings(password_env=PASSWORD_ENV, **fields)
    if mode == "start":
        report = await aorchestrate(
            rest[0],
            repo=repo,
            run_id=run_id,
            server_url=server_url,
            settings=settings,
            on_event=_print_event,
        )
    elif mode == "resume":
        report = await aresume(
            run_id, repo=repo, server_url=server_url, settings=settings, on_event=_print_event
        )
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print("REPORT " + report.model_dump_json(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
