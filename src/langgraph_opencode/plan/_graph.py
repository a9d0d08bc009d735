"""Scheduling helpers: what may run next, what a failure blocks."""

from __future__ import annotations

from collections.abc import Collection

from langgraph_opencode.plan._models import Plan, Task
from langgraph_opencode.plan._rules import check_plan, dependencies

__all__ = ["blocked_by_failure", "ready_tasks", "topological_order"]


def topological_order(plan: Plan) -> list[Task]:
    """Return the tasks so that each comes after all of its dependencies.

    Among tasks that could go next, the one earlier in the plan goes first, so
    the order is stable.

    Raises:
        PlanError: The plan is not valid (see [`check_plan`][]).
    """
    graph = dependencies(check_plan(plan))
    placed: set[str] = set()
    order: list[Task] = []
    while len(order) < len(plan.tasks):
        task = next(
            task
            for task in plan.tasks
            if task.id not in placed and all(dep in placed for dep in graph[task.id])
        )
        placed.add(task.id)
        order.append(task)
    return order


def ready_tasks(
    plan: Plan,
    done: Collection[str],
    *,
    running: Collection[str] = (),
    failed: Collection[str] = (),
) -> list[Task]:
    """Return the tasks that can start now, in plan order.

    A task is ready when every task it depends on is done (merged) and it is
    itself not done, running or failed. Tasks downstream of a failure are
    never ready (see [`blocked_by_failure`][]).

    Args:
        plan: A valid plan.
        done: Ids of the tasks whose work is merged.
        running: Ids of the tasks under way (including under review).
        failed: Ids of the tasks that failed for good.

    Raises:
        ValueError: An id in ``done``, ``running`` or ``failed`` is not a task
            of the plan.
    """
    _check_ids(plan, done=done, running=running, failed=failed)
    taken = {*done, *running, *failed}
    return [
        task
        for task in plan.tasks
        if task.id not in taken and all(dep in done for dep in task.depends_on)
    ]


def blocked_by_failure(plan: Plan, failed: Collection[str]) -> list[str]:
    """Return the ids of the tasks that can never run because a dependency failed.

    These are the transitive dependents of the failed tasks (not the failed
    tasks themselves), in plan order.

    Args:
        plan: A valid plan.
        failed: Ids of the tasks that failed for good.

    Raises:
        ValueError: An id in ``failed`` is not a task of the plan.
    """
    _check_ids(plan, failed=failed)
    blocked: set[str] = set()
    frontier = set(failed)
    while frontier:
        frontier = {
            task.id
            for task in plan.tasks
            if task.id not in blocked
            and task.id not in failed
            and any(dep in frontier for dep in task.depends_on)
        }
        blocked |= frontier
    return [task.id for task in plan.tasks if task.id in blocked]


def _check_ids(plan: Plan, **groups: Collection[str]) -> None:
    known = {task.id for task in plan.tasks}
    for name, ids in groups.items():
        unknown = sorted(set(ids) - known)
        if unknown:
            raise ValueError(
                f"{name} names tasks that are not in the plan: {', '.join(map(repr, unknown))}; "
                f"task ids: {', '.join(sorted(known))}"
            )
