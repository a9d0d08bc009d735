"""The checkpoint database grows linearly with the number of tasks, and events go to the run log.

A size property, not a timing: the same run with four times the tasks may take
at most about four times the bytes (the state's growing parts are delta
channels, and the events are not in it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bench.checkpoint_growth import run_tasks

from langgraph_opencode.core.run_log import RunLog, read_events
from langgraph_opencode.core.state import last_value, merge_by_key, replace_by_key
from langgraph_opencode.testing import ScriptedModelServer, make_repo
from langgraph_opencode.tools.git import Repo
from langgraph_opencode.tools.opencode.server import OpenCodeServer

pytestmark = [pytest.mark.opencode, pytest.mark.usefixtures("no_blocking_calls")]


async def test_checkpoint_bytes_per_task_do_not_grow_with_the_number_of_tasks(
    model: ScriptedModelServer, opencode_server: OpenCodeServer, tmp_path: Path
) -> None:
    per_task = {}
    for n in (2, 8):
        repo = make_repo(tmp_path / f"repo-{n}")
        per_task[n] = await run_tasks(n, model, opencode_server, repo) / n
        model.assert_complete()
        # Every notable event is in the run's log, none in the checkpoints.
        (run_dir,) = (
            (await Repo.open(repo)).common_dir.joinpath("langgraph-opencode/runs").iterdir()
        )
        kinds = [e["kind"] for e in read_events(run_dir)]
        assert kinds.count("merged") == n, kinds
        assert kinds[-1] == "finished", kinds
        assert (run_dir / "events.jsonl").stat().st_mode & 0o777 == 0o600
    # Quadratic growth (the whole state in every checkpoint) gave 2.4x here.
    assert per_task[8] <= 1.5 * per_task[2], per_task


def _writes() -> list[dict[str, Any]]:
    return [
        {"a": {"status": "working"}, "b": {"status": "pending"}},
        {"a": {"round": 1}},
        {"b": None},
        {"b": {"status": "working"}, "c": {"status": "pending"}},
    ]


@pytest.mark.parametrize("reducer", [merge_by_key, replace_by_key])
@pytest.mark.parametrize("cut", [0, 1, 2, 3, 4])
def test_the_keyed_reducers_give_the_same_value_however_the_writes_are_batched(
    reducer: Any, cut: int
) -> None:
    start = {"z": {"status": "merged"}}
    writes = _writes()
    assert reducer(reducer(start, writes[:cut]), writes[cut:]) == reducer(start, writes)
    assert start == {"z": {"status": "merged"}}  # nothing changed in place
    one_by_one = start
    for write in writes:
        one_by_one = reducer(one_by_one, [write])
    assert one_by_one == reducer(start, writes)


def test_merge_by_key_updates_fields_and_none_deletes() -> None:
    merged = merge_by_key({}, _writes())
    assert merged == {
        "a": {"status": "working", "round": 1},
        "b": {"status": "working"},
        "c": {"status": "pending"},
    }
    assert replace_by_key({}, _writes())["a"] == {"round": 1}
    assert last_value({"x": 1}, []) == {"x": 1}
    assert last_value(None, [{"x": 1}, None]) is None


def test_the_run_log_appends_json_lines_and_skips_a_torn_one(tmp_path: Path) -> None:
    log = RunLog(tmp_path / "run")
    log.append([{"time": 1.0, "kind": "plan", "message": "\x1b[2J odd", "path": Path("/x")}])
    log.append([])
    with log.path.open("a") as f:
        f.write('{"time": 2.0, "kind": "cut')
    log.append([{"time": 3.0, "kind": "finished", "message": "done"}])
    assert [e["kind"] for e in read_events(log.run_dir)] == ["plan", "finished"]
    assert read_events(log.run_dir)[0]["path"] == "/x"
    assert read_events(log.run_dir, last=1)[0]["kind"] == "finished"
    assert log.path.stat().st_mode & 0o777 == 0o600
    assert read_events(tmp_path / "none") == []
