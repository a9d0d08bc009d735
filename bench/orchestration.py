"""Orchestration cost: completion detection, wall time against two baselines, memory.

For each N (default 1, 8, 32, 64) one-file tasks, three orchestrators do the
same work on a fresh ``opencode serve`` (warmed up in the repository first)
against the scripted model, which answers at once, so that what is measured
is what orchestration adds. Each orchestrator runs in a child process
(``bench._child``), with the same concurrency limit (``--parallel``):

* graph: the real graph (``aorchestrate`` with the plan given, review off,
  no acceptance checks), with its SQLite checkpointer; it also commits each
  task's work and merges it into the integration branch, which the
  baselines do not do;
* graph, review on: the same, and each task's work is reviewed by a reviewer
  session (which approves) before its merge (completion detection and
  checkpoints only; no baseline does this);
* direct: the floor, plain asyncio with the project's client and events:
  the same worktrees, sessions and worker prompts, nothing else;
* polling: like direct, but completion is found by polling
  ``GET /session/status`` every 5 s (the project's starting research).

Figures:

* wall time: from before the orchestrator connects to the server to the end
  of its run; ratios graph/direct and polling/direct from the same run;
* completion detection, per turn (worker and reviewer): from the moment the
  orchestrator's event hub received the session's idle signal (the first
  ``session.status idle`` or ``session.idle`` after its last busy status) to
  the moment the run's supervisor recorded the turn's outcome
  (``Supervisor.on_outcome``; from then on it is acted on: no watchdog fires
  on it, its cost counts, and the graph's next monitor step takes it without
  a read-back);
* to checkpoint, per turn: from the same idle signal to the moment the graph
  saved the monitor's update recording that outcome (the checkpointer's
  ``aput_writes`` call). A turn that ends while the graph is in another step
  (reviewing, merging, dispatching or sending for other tasks) is saved
  after that step; the three slowest are shown with the steps saved
  meanwhile. Both clocks are ``time.perf_counter()`` in the orchestrator's
  own process; the hooks are the hub's ``on_event`` attribute, the
  supervisor's ``on_outcome`` class attribute and a checkpointer subclass, so
  the product runs unchanged;
* peak RSS of the orchestrator process (``ru_maxrss``), OpenCode's peak RSS
  (``VmHWM`` of the server process, which served only that run), and the
  checkpoint database's bytes (with its WAL files) after the run.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._harness import fresh_server, machine, percentile, run_child, table
from langgraph_opencode.testing import (
    ScriptedModelServer,
    independent_plan,
    make_repo,
    reviewer_says,
    worker_writes,
)

MODES = ("direct", "graph", "polling", "review")
"""``review``: the graph with review on."""

GRAPHS = (("graph", "review off"), ("review", "review on"))

DETECTION_P50_TARGET_MS = 50.0
DETECTION_P95_TARGET_MS = 250.0
DETECTION_AT = (8, 32, 64)
WALL_RATIO_TARGET = 1.10
WALL_RATIO_AT = 32
RSS_TARGET_MB = 250.0
RSS_AT = 64
DB_PER_TASK_TARGET_KIB = 30.0
DB_SPREAD_TARGET = 0.25
"""Bytes per task at every N from 8 to 64 within this fraction of their mean."""


def task_ids(count: int) -> list[str]:
    """``t01`` … ``tNN``."""
    return [f"t{i:02d}" for i in range(1, count + 1)]


async def measure(
    ns: Sequence[int], parallel: int, modes: Sequence[str] = MODES
) -> dict[tuple[int, str], dict[str, Any]]:
    """Run each orchestrator for each N; return their figures by (N, mode)."""
    results: dict[tuple[int, str], dict[str, Any]] = {}
    with ScriptedModelServer() as model, tempfile.TemporaryDirectory() as tmp:
        for n in ns:
            ids = task_ids(n)
            plan = independent_plan(ids)
            for mode in modes:
                review = mode == "review"
                script = [worker_writes(t, {f"{t}.txt": f"{t}\n"}) for t in ids]
                if review:
                    script.append(reviewer_says(True, repeat=True))
                model.reset(*script)
                repo = make_repo(Path(tmp) / f"{mode}-{n}")
                async with fresh_server(model, repo) as server:
                    result = await run_child(
                        "graph" if review else mode,
                        server=server,
                        repo=repo,
                        plan=plan,
                        parallel=parallel,
                        review=review,
                    )
                if result["ok"] != n:
                    raise RuntimeError(
                        f"{mode} N={n}: only {result['ok']} tasks succeeded: {result}"
                    )
                model.assert_complete()
                results[(n, mode)] = result
                print(f"  {mode:>7} N={n:<3} {result['wall_s']:7.2f} s", flush=True)
    return results


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


def report(results: dict[tuple[int, str], dict[str, Any]], parallel: int) -> list[str]:
    """Print the tables; return the target verdicts."""
    ns = sorted({n for n, _ in results})
    print(f"Orchestration benchmark, {machine()}; max_parallel {parallel}")
    print()
    print("Wall time of N one-file tasks (s), and ratios to the direct baseline (review off):")
    print()
    rows = []
    for n in ns:
        direct, graph, polling = (results.get((n, m)) for m in ("direct", "graph", "polling"))
        row: list[Any] = [n]
        row += [f"{r['wall_s']:.2f}" if r else "-" for r in (direct, graph, polling)]
        for r in (graph, polling):
            row.append(f"{r['wall_s'] / direct['wall_s']:.2f}" if r and direct else "-")
        review = results.get((n, "review"))
        row.append(f"{review['wall_s']:.2f}" if review else "-")
        rows.append(row)
    table(
        [
            "N",
            "direct",
            "graph",
            "polling 5 s",
            "graph/direct",
            "polling/direct",
            "graph review on",
        ],
        rows,
    )
    for figure, title in (
        ("detection_s", "Completion detection (server idle -> the supervisor records the outcome)"),
        ("checkpoint_s", "Idle to checkpoint (server idle -> the graph saves the outcome)"),
    ):
        print(f"{title}, ms:")
        print()
        rows = []
        for mode, label in GRAPHS:
            for n in ns:
                graph = results.get((n, mode))
                if graph and graph[figure]:
                    rows.append([label, *_detection_row(str(n), graph[figure])])
        table(["review", "N", "turns", "p50", "p95", "min", "max", "mean"], rows)
    for mode, label in GRAPHS:
        for n in ns:
            graph = results.get((n, mode))
            for latency, steps in (graph or {}).get("slowest_checkpoints", []):
                print(
                    f"- {label}, N={n}: saved {latency * 1000:.0f} ms after idle; steps saved "
                    f"meanwhile (node@ms after idle): {' '.join(steps) or 'none'}"
                )
    print()

    print("Memory and checkpoints:")
    print()
    rows = []
    for n in ns:
        graph = results.get((n, "graph"))
        direct = results.get((n, "direct"))
        polling = results.get((n, "polling"))
        review = results.get((n, "review"))
        rows.append(
            [
                n,
                _mib(graph["rss_kib"]) if graph else "-",
                _mib(graph["rss_start_kib"]) if graph else "-",
                f"{graph['cpu_s']:.1f}" if graph else "-",
                _mib(direct["rss_kib"]) if direct else "-",
                _mib(polling["rss_kib"]) if polling else "-",
                f"{graph['db_bytes'] / 1024:.0f}" if graph else "-",
                f"{graph['db_bytes'] / 1024 / n:.0f}" if graph else "-",
                f"{review['db_bytes'] / 1024 / n:.0f}" if review else "-",
                _mib(graph["opencode_rss_kib"]) if graph else "-",
            ]
        )
    table(
        [
            "N",
            "graph peak RSS MiB",
            "graph RSS after imports MiB",
            "graph CPU s",
            "direct peak RSS MiB",
            "polling peak RSS MiB",
            "checkpoint DB KiB",
            "DB KiB per task",
            "DB KiB per task, review on",
            "OpenCode peak RSS MiB (graph run)",
        ],
        rows,
    )
    return _verdicts(results)


def _detection_row(label: str, samples: list[float]) -> list[str]:
    return [
        label,
        str(len(samples)),
        _ms(statistics.median(samples)),
        _ms(percentile(samples, 95)),
        _ms(min(samples)),
        _ms(max(samples)),
        _ms(statistics.fmean(samples)),
    ]


def _holds(ok: bool) -> str:
    return "holds" if ok else "MISSED"


def _verdicts(results: dict[tuple[int, str], dict[str, Any]]) -> list[str]:
    verdicts = []
    for mode, label in GRAPHS:
        for n in DETECTION_AT:
            graph = results.get((n, mode))
            if not graph or not graph["detection_s"]:
                continue
            p50 = statistics.median(graph["detection_s"]) * 1000
            p95 = percentile(graph["detection_s"], 95) * 1000
            verdicts.append(
                f"detection, {label}, N={n}: p50 {p50:.0f} ms (target <= "
                f"{DETECTION_P50_TARGET_MS:.0f}), p95 {p95:.0f} ms (target <= "
                f"{DETECTION_P95_TARGET_MS:.0f}): "
                + _holds(p50 <= DETECTION_P50_TARGET_MS and p95 <= DETECTION_P95_TARGET_MS)
            )
    for mode, label in GRAPHS:
        per_task = {
            n: results[(n, mode)]["db_bytes"] / 1024 / n
            for n in DETECTION_AT
            if (n, mode) in results
        }
        if len(per_task) >= 2:
            mean = statistics.fmean(per_task.values())
            spread = max(abs(v - mean) / mean for v in per_task.values())
            worst = max(per_task.values())
            figures = ", ".join(f"N={n} {v:.1f}" for n, v in per_task.items())
            verdicts.append(
                f"checkpoint KiB per task, {label} ({figures}): within {spread:.0%} of their mean "
                f"(target <= {DB_SPREAD_TARGET:.0%}), at most {worst:.1f} "
                f"(target <= {DB_PER_TASK_TARGET_KIB:.0f}): "
                + _holds(spread <= DB_SPREAD_TARGET and worst <= DB_PER_TASK_TARGET_KIB)
            )
    graph, direct = results.get((WALL_RATIO_AT, "graph")), results.get((WALL_RATIO_AT, "direct"))
    if graph and direct:
        ratio = graph["wall_s"] / direct["wall_s"]
        verdicts.append(
            f"N={WALL_RATIO_AT} wall graph/direct {ratio:.2f} (target <= {WALL_RATIO_TARGET}): "
            + _holds(ratio <= WALL_RATIO_TARGET)
        )
    graph = results.get((RSS_AT, "graph"))
    if graph:
        mb = graph["rss_kib"] * 1024 / 1e6
        verdicts.append(
            f"N={RSS_AT} orchestrator peak RSS {mb:.0f} MB (target <= {RSS_TARGET_MB:.0f}): "
            + _holds(mb <= RSS_TARGET_MB)
        )
    return verdicts


async def main(ns: Sequence[int] = (1, 8, 32, 64), parallel: int = 4) -> list[str]:
    """Measure, print the tables, and return the target verdicts."""
    return report(await measure(ns, parallel), parallel)
