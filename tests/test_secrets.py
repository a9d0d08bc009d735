"""Secrets given to a run appear nowhere: not in checkpoints, reports, logs or errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from langgraph_opencode import aorchestrate
from langgraph_opencode.api import checkpoint_path
from langgraph_opencode.testing import (
    ScriptedModelServer,
    one_task_plan,
    reviewer_says,
    worker_writes,
)
from langgraph_opencode.tools.git import Repo

pytestmark = pytest.mark.opencode

PROVIDER_KEY = "sk-test-provider-key-5e1f9a"

PLAN = one_task_plan()


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def test_password_and_provider_key_never_reach_checkpoints_reports_or_logs(
    model: ScriptedModelServer, git_repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model.script(worker_writes("one", {"one.txt": "1\n"}), reviewer_says(True, task_id="one"))
    # An embedded server: its random password and a provider key in its config.
    config = model.provider_config()
    config["provider"]["scripted"]["options"]["apiKey"] = PROVIDER_KEY
    passwords: list[str] = []

    def remember(event: dict[str, object]) -> None:
        from langgraph_opencode.core import services

        passwords.extend(p.get_secret_value() for p in services._passwords.values())

    caplog.set_level(logging.DEBUG)
    report = await aorchestrate(
        "one file",
        repo=git_repo,
        plan=PLAN,
        isolated=True,
        opencode_config=config,
        on_event=remember,
    )
    assert report.status == "completed", report.to_markdown()
    assert passwords, "the embedded server's password was not seen"
    # The provider really got the key (so the test is not vacuous) ...
    seen_keys = {r.headers.get("authorization") for r in model.requests}
    assert f"Bearer {PROVIDER_KEY}" in seen_keys
    # ... and neither secret is in anything the run wrote or logged.
    run_dir = checkpoint_path(await Repo.open(git_repo)).parent
    written = _files_under(run_dir)
    assert any(p.name == "checkpoints.sqlite" for p in written)
    assert any(p.name == "report.json" for p in written)
    for secret in {*passwords, PROVIDER_KEY}:
        needle = secret.encode()
        for path in written:
            assert needle not in path.read_bytes(), f"a secret is in {path}"
        assert secret not in report.model_dump_json()
        assert secret not in caplog.text
