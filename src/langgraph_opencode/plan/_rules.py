"""The plan rules: every problem of a plan, worded for a model to fix."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from langgraph_opencode.errors import PlanError
from langgraph_opencode.plan._models import ID_RE, MAX_ID_LENGTH, Plan, Task
from langgraph_opencode.tools.git import RESERVED_TASK_IDS

__all__ = ["check_plan", "dependencies", "validate_plan"]


def validate_plan(plan: Plan, *, max_tasks: int | None = None) -> list[str]:
    """Check a plan against the plan rules and return every problem found.

    Args:
        plan: The plan to check.
        max_tasks: The most tasks allowed, if there is a limit.

    Returns:
        One precise, actionable message per problem, in a stable order (plan
        order, then cycles); empty when the plan is valid.
    """
    problems: list[str] = []
    if not plan.objective.strip():
        problems.append("objective is empty: state the coding objective the tasks achieve")
    if not plan.tasks:
        problems.append("the plan has no tasks: give at least one task")
    if max_tasks is not None and len(plan.tasks) > max_tasks:
        problems.append(
            f"the plan has {len(plan.tasks)} tasks, more than the limit of {max_tasks}: "
            "merge closely related tasks"
        )
    positions: dict[str, list[int]] = {}
    for index, task in enumerate(plan.tasks):
        positions.setdefault(task.id, []).append(index)
    known = ", ".join(repr(task_id) for task_id in positions) or "(none)"
    for index, task in enumerate(plan.tasks):
        label = _label(task, index, unique=len(positions[task.id]) == 1)
        problems.extend(_task_problems(task, label, positions, known))
    for task_id, where in positions.items():
        if len(where) > 1 and task_id.strip():
            places = ", ".join(f"tasks[{index}]" for index in where)
            problems.append(
                f"task id {task_id!r} is used by {len(where)} tasks ({places}): "
                "give each task its own id"
            )
    problems.extend(
        f"dependency cycle {' -> '.join(cycle)} ('->' means 'depends on'): tasks in a cycle "
        "can never start; remove one of these dependencies"
        for cycle in _cycles(plan)
    )
    return problems


def check_plan(plan: Plan, *, max_tasks: int | None = None, source: str | None = None) -> Plan:
    """Return the plan if it is valid, else raise.

    Args:
        plan: The plan to check.
        max_tasks: The most tasks allowed, if there is a limit.
        source: Where the plan came from, for the error message.

    Raises:
        PlanError: The plan breaks a rule; ``problems`` lists them all.
    """
    problems = validate_plan(plan, max_tasks=max_tasks)
    if problems:
        raise PlanError(problems, source=source)
    return plan


def _label(task: Task, index: int, *, unique: bool) -> str:
    if task.id.strip() and unique:
        return f"task {task.id!r}"
    return f"tasks[{index}] (id {task.id!r})" if task.id.strip() else f"tasks[{index}]"


def _task_problems(
    task: Task, label: str, positions: Mapping[str, list[int]], known: str
) -> Iterable[str]:
    if not task.id.strip():
        yield f"{label}: id is empty: give a short slug such as 'add-parser'"
    elif not ID_RE.match(task.id) or len(task.id) > MAX_ID_LENGTH:
        yield (
            f"{label}: id {task.id!r} is not a short slug: use at most {MAX_ID_LENGTH} "
            "lowercase letters, digits, '-' and '_', starting with a letter or digit"
        )
    elif task.id in RESERVED_TASK_IDS:
        yield (
            f"{label}: id {task.id!r} is reserved for the run's own branch "
            f"(lgoc/<run>/{task.id}): choose another id"
        )
    for field in ("title", "instructions"):
        if not getattr(task, field).strip():
            yield f"{label}: {field} is empty"
    seen: set[str] = set()
    for dep in task.depends_on:
        if dep in seen:
            yield f"{label}: depends_on lists {dep!r} more than once"
        elif dep == task.id:
            yield f"{label}: depends on itself: remove {dep!r} from its depends_on"
        elif dep not in positions:
            yield f"{label}: depends on {dep!r}, which is not a task id in this plan (ids: {known})"
        seen.add(dep)
    for position, path in enumerate(task.files):
        if not path.strip():
            yield f"{label}: files[{position}] is empty"
        elif Path(path).is_absolute() or ".." in Path(path).parts:
            yield f"{label}: files[{position}] {path!r} must be relative to the repository root"
    for position, command in enumerate(task.checks):
        if not command.strip():
            yield f"{label}: checks[{position}] is empty: give a shell command that exits 0"


def dependencies(plan: Plan) -> dict[str, list[str]]:
    """Map each task id to its known dependencies (unknown ids and self-loops left out)."""
    graph: dict[str, list[str]] = {task.id: [] for task in plan.tasks}
    for task in plan.tasks:
        for dep in task.depends_on:
            if dep in graph and dep != task.id and dep not in graph[task.id]:
                graph[task.id].append(dep)
    return graph


def _cycles(plan: Plan) -> list[list[str]]:
    """Return one cycle per strongly connected component, in plan order."""
    graph = dependencies(plan)
    # Tarjan's algorithm, iterative: plans are small but recursion limits are not.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if child < len(graph[node]):
                work.append((node, child + 1))
                nxt = graph[node][child]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    order = {task_id: position for position, task_id in enumerate(graph)}
    cycles = [_cycle_in(graph, set(component), order) for component in components]
    return sorted(cycles, key=lambda cycle: order[cycle[0]])


def _cycle_in(
    graph: Mapping[str, list[str]], members: set[str], order: Mapping[str, int]
) -> list[str]:
    """Return a shortest cycle through the first member (in plan order) of a component."""
    start = min(members, key=order.__getitem__)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for nxt in graph[node]:
                if nxt not in members:
                    continue
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError("a strongly connected component always has a cycle")
