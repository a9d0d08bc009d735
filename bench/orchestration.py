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
* direct: the floor, plain asyncio with the project's client and events:
  the same worktrees, sessions and worker prompts, nothing else;
* polling: like direct, but completion is found by polling
  ``GET /session/status`` every 5 s (the project's starting research).

Figures:

* wall time: from before the orchestrator connects to the server to the end
  of its run; ratios graph/direct and polling/direct from the same run;
* completion detection, per worker turn: from the moment the orchestrator's
  event hub received the session's idle signal (the first ``session.status
  idle`` or ``session.idle`` after its last busy status) to the moment the
  graph saved the monitor's update recording that turn's outcome (the
  checkpointer's ``aput_writes`` call; the next node runs after it). Both
  clocks are ``time.perf_counter()`` in the orchestrator's own process; the
  hook is the hub's ``on_event`` attribute and a checkpointer subclass, so the
  product runs unchanged;
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
    worker_writes,
)

MODES = ("direct", "graph", "polling")

DETECTION_TARGET_MS = 50.0
WALL_RATIO_TARGET = 1.3
WALL_RATIO_AT = 32
RSS_TARGET_MB = 250.0
RSS_AT = 64


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
                model.reset(*(worker_writes(t, {f"{t}.txt": f"{t}\n"}) for t in ids))
                repo = make_repo(Path(tmp) / f"{mode}-{n}")
                async with fresh_server(model, repo) as server:
                    result = await run_child(
                        mode, server=server, repo=repo, plan=plan, parallel=parallel
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
    print(f"Orchestration benchmark, {machine()}; max_parallel {parallel}, review off")
    print()
    print("Wall time of N one-file tasks (s), and ratios to the direct baseline:")
    print()
    rows = []
    for n in ns:
        direct, graph, polling = (results.get((n, m)) for m in MODES)
        row: list[Any] = [n]
        row += [f"{r['wall_s']:.2f}" if r else "-" for r in (direct, graph, polling)]
        for r in (graph, polling):
            row.append(f"{r['wall_s'] / direct['wall_s']:.2f}" if r and direct else "-")
        rows.append(row)
    table(["N", "direct", "graph", "polling 5 s", "graph/direct", "polling/direct"], rows)

    print("Completion detection (server idle -> graph records the outcome), ms:")
    print()
    rows = []
    pooled: list[float] = []
    for n in ns:
        graph = results.get((n, "graph"))
        if not graph or not graph["detection_s"]:
            continue
        samples = graph["detection_s"]
        pooled += samples
        rows.append(_detection_row(str(n), samples))
    if pooled:
        rows.append(_detection_row("all", pooled))
    table(["N", "turns", "p50", "p95", "min", "max", "mean"], rows)
    for n in ns:
        graph = results.get((n, "graph"))
        for latency, steps in (graph or {}).get("slowest_detections", []):
            print(
                f"- N={n} slow detection {latency * 1000:.0f} ms; steps saved meanwhile "
                f"(node@ms after idle): {' '.join(steps) or 'none'}"
            )
    print()

    print("Memory and checkpoints:")
    print()
    rows = []
    for n in ns:
        graph = results.get((n, "graph"))
        direct = results.get((n, "direct"))
        polling = results.get((n, "polling"))
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
            "OpenCode peak RSS MiB (graph run)",
        ],
        rows,
    )
    return _verdicts(results, pooled)


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


def _verdicts(results: dict[tuple[int, str], dict[str, Any]], pooled: list[float]) -> list[str]:
    verdicts = []
    if pooled:
        p50 = statistics.median(pooled) * 1000
        verdicts.append(
            f"detection p50 {p50:.0f} ms (target <= {DETECTION_TARGET_MS:.0f}): "
            + ("holds" if p50 <= DETECTION_TARGET_MS else "MISSED")
        )
    graph, direct = results.get((WALL_RATIO_AT, "graph")), results.get((WALL_RATIO_AT, "direct"))
    if graph and direct:
        ratio = graph["wall_s"] / direct["wall_s"]
        verdicts.append(
            f"N={WALL_RATIO_AT} wall graph/direct {ratio:.2f} (target <= {WALL_RATIO_TARGET}): "
            + ("holds" if ratio <= WALL_RATIO_TARGET else "MISSED")
        )
    graph = results.get((RSS_AT, "graph"))
    if graph:
        mb = graph["rss_kib"] * 1024 / 1e6
        verdicts.append(
            f"N={RSS_AT} orchestrator peak RSS {mb:.0f} MB (target <= {RSS_TARGET_MB:.0f}): "
            + ("holds" if mb <= RSS_TARGET_MB else "MISSED")
        )
    return verdicts


async def main(ns: Sequence[int] = (1, 8, 32, 64), parallel: int = 4) -> list[str]:
    """Measure, print the tables, and return the target verdicts."""
    return report(await measure(ns, parallel), parallel)
