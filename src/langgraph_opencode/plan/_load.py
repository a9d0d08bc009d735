"""Reading a plan from structured output, an object, or a YAML/JSON file."""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from langgraph_opencode.errors import PlanError
from langgraph_opencode.plan._models import Plan, Task
from langgraph_opencode.plan._rules import check_plan

__all__ = ["PlanFormat", "load_plan", "parse_plan", "parse_plan_text"]

PlanFormat = Literal["json", "yaml"]
"""The text formats a plan file can be written in."""

_EXTENSIONS: dict[str, PlanFormat] = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}


def parse_plan(data: object, *, max_tasks: int | None = None, source: str | None = None) -> Plan:
    """Build a valid plan from a dict (e.g. structured output), an object or a ``Plan``.

    Objects that are not mappings are read by attribute (dataclasses, other
    models). Shape problems (missing or unknown fields, wrong types) are
    reported first; the plan rules of [`validate_plan`][] are checked once the
    shape is right.

    Args:
        data: The plan.
        max_tasks: The most tasks allowed, if there is a limit.
        source: Where the plan came from, for the error message.

    Returns:
        A valid plan (a copy when ``data`` is already a ``Plan``).

    Raises:
        PlanError: The plan is malformed or breaks a rule; ``problems`` lists
            every problem found.
    """
    return _parse(data, max_tasks=max_tasks, source=source, text=None)


def parse_plan_text(
    text: str,
    *,
    format: PlanFormat | None = None,
    max_tasks: int | None = None,
    source: str | None = None,
) -> Plan:
    """Build a valid plan from YAML or JSON text.

    Args:
        text: The document.
        format: ``"yaml"`` or ``"json"``; guessed from the content when
            ``None`` (JSON if it starts with ``{``).
        max_tasks: The most tasks allowed, if there is a limit.
        source: Where the text came from, for the error message.

    Returns:
        A valid plan.

    Raises:
        PlanError: The text does not parse, or the plan is malformed or breaks
            a rule; problems carry line numbers where they are known.
    """
    if format is None:
        format = "json" if text.lstrip().startswith("{") else "yaml"
    try:
        data = json.loads(text) if format == "json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise PlanError(
            [f"line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}"], source=source
        ) from exc
    except yaml.YAMLError as exc:
        raise PlanError([f"not valid YAML: {_yaml_problem(exc)}"], source=source) from exc
    return _parse(data, max_tasks=max_tasks, source=source, text=text)


def load_plan(path: str | os.PathLike[str], *, max_tasks: int | None = None) -> Plan:
    """Load a valid plan from a YAML or JSON file.

    The format follows the extension (``.json``, ``.yaml``, ``.yml``); any
    other extension is guessed from the content. YAML is read with
    ``yaml.safe_load``.

    Args:
        path: The plan file.
        max_tasks: The most tasks allowed, if there is a limit.

    Returns:
        A valid plan.

    Raises:
        PlanError: The file cannot be read or parsed, or the plan is malformed
            or breaks a rule; problems carry line numbers where they are known.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError([f"cannot read the plan file: {exc}"], source=str(file)) from exc
    return parse_plan_text(
        text, format=_EXTENSIONS.get(file.suffix.lower()), max_tasks=max_tasks, source=str(file)
    )


def _parse(data: object, *, max_tasks: int | None, source: str | None, text: str | None) -> Plan:
    if data is None:
        raise PlanError(["the plan is empty: give 'objective' and 'tasks'"], source=source)
    if isinstance(data, Plan):
        data = data.model_dump()
    if not isinstance(data, Mapping) and isinstance(data, str | bytes | list | tuple | int | float):
        raise PlanError(
            [f"the plan must be a mapping with 'objective' and 'tasks', got {type(data).__name__}"],
            source=source,
        )
    try:
        plan = Plan.model_validate(data, from_attributes=not isinstance(data, Mapping))
    except ValidationError as exc:
        node = _compose(text)
        problems = [_shape_problem(error, data, node) for error in exc.errors()]
        raise PlanError(problems, source=source) from exc
    return check_plan(plan, max_tasks=max_tasks, source=source)


def _compose(text: str | None) -> yaml.Node | None:
    """Return the YAML node tree of a document, to find the line of a problem."""
    if text is None:
        return None
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:  # JSON that YAML 1.1 cannot read: no line numbers, that's all
        return None


def _shape_problem(error: ErrorDetails, data: object, node: yaml.Node | None) -> str:
    loc: tuple[int | str, ...] = tuple(error["loc"])
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    path = path.lstrip(".") or "plan"
    if len(loc) >= 2 and loc[0] == "tasks" and isinstance(loc[1], int):
        task_id = _task_id_at(data, loc[1])
        if task_id:
            path = path.replace(f"tasks[{loc[1]}]", f"tasks[{loc[1]}] (id {task_id!r})", 1)
    kind = error["type"]
    if kind == "missing":
        message = "is required"
    elif kind == "extra_forbidden":
        message = "is not a known field"
        fields = list(Task.model_fields if len(loc) == 3 else Plan.model_fields)
        close = difflib.get_close_matches(str(loc[-1]), fields, n=1)
        if close:
            message += f": did you mean {close[0]!r}?"
        message += f" (known fields: {', '.join(fields)})"
    else:
        got = repr(error.get("input"))
        message = f"{error['msg'][:1].lower()}{error['msg'][1:]}, got {got[:60]}"
    line = _line_of(node, loc)
    return f"{'' if line is None else f'line {line}: '}{path}: {message}"


def _task_id_at(data: object, index: int) -> str | None:
    tasks = data.get("tasks") if isinstance(data, Mapping) else getattr(data, "tasks", None)
    if isinstance(tasks, list | tuple) and 0 <= index < len(tasks):
        task = tasks[index]
        task_id = task.get("id") if isinstance(task, Mapping) else getattr(task, "id", None)
        if isinstance(task_id, str) and task_id.strip():
            return task_id
    return None


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """Return the 1-based line of the deepest YAML node found along ``loc``."""
    if node is None:
        return None
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((value for key, value in node.value if key.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if 0 <= part < len(node.value) else None
        if child is None:
            break
        node = child
    return int(node.start_mark.line) + 1


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        # PyYAML's context reads as the start of the sentence its problem ends.
        context = f"{exc.context}, " if exc.context else ""
        return f"line {mark.line + 1}, column {mark.column + 1}: {context}{exc.problem}"
    return str(exc)
