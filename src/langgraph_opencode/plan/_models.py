"""The plan's pydantic models and their JSON schema for structured output."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TASK_ID_PATTERN", "Plan", "Task", "plan_schema", "structured_output_schema"]

TASK_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
"""What a task id looks like: a short slug, usable in branch and file names."""

MAX_ID_LENGTH = 64
ID_RE = re.compile(TASK_ID_PATTERN)


class Task(BaseModel):
    """One unit of work, carried out by one worker session in its own worktree."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        description=(
            "Short unique slug naming the task: lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit (e.g. 'add-config-loader')."
        ),
        json_schema_extra={"pattern": TASK_ID_PATTERN, "maxLength": MAX_ID_LENGTH},
    )
    title: str = Field(description="One-line summary of the task.")
    instructions: str = Field(
        description="What the worker must do, precisely enough to do it without asking."
    )
    depends_on: list[str] = Field(
        default_factory=list,
        description="Ids of the tasks whose changes this task needs; empty if none.",
    )
    files: list[str] = Field(
        default_factory=list,
        description="Paths, relative to the repository root, the task is expected to touch.",
    )
    checks: list[str] = Field(
        default_factory=list,
        description=(
            "Shell commands run from the repository root after the work; each must exit 0 "
            "when the task is done. No network access."
        ),
    )


class Plan(BaseModel):
    """An objective and the tasks that achieve it."""

    model_config = ConfigDict(extra="forbid")

    objective: str = Field(description="The coding objective the tasks achieve together.")
    tasks: list[Task] = Field(description="The tasks, in a sensible reading order.")
    summary: str = Field(
        default="", description="Short explanation of the approach and any assumptions made."
    )

    def task(self, task_id: str) -> Task:
        """Return the task with this id.

        Raises:
            KeyError: No task has this id.
        """
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)


def structured_output_schema(model: type[BaseModel]) -> dict[str, Any]:
    """Return a model's JSON schema in the plain form models handle best.

    The schema is meant for OpenCode's ``format: {"type": "json_schema", ...}``,
    where the model sees it as a tool's parameters. Unlike
    ``model.model_json_schema()`` it has no ``$ref``/``$defs`` (everything is
    inlined), no ``title`` or ``default`` annotations, every property listed
    in ``required`` and ``additionalProperties: false`` on every object (what
    strict tool-calling providers demand). Field descriptions are kept.

    Args:
        model: A pydantic model class without recursive references.

    Returns:
        A new JSON-serialisable dict.
    """
    return copy.deepcopy(_schema_of(model))


@functools.cache
def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """A model's plain schema, made once per model (pydantic takes milliseconds to make it)."""
    raw = model.model_json_schema()
    return _inline(raw, raw.get("$defs", {}), ())


def plan_schema() -> dict[str, Any]:
    """Return the JSON schema of a [`Plan`][] for the planner's structured output."""
    return structured_output_schema(Plan)


def _inline(
    node: Mapping[str, Any], defs: Mapping[str, Any], seen: tuple[str, ...]
) -> dict[str, Any]:
    if "$ref" in node:
        name = str(node["$ref"]).rsplit("/", 1)[-1]
        if name in seen:
            raise ValueError(f"cannot inline the recursive schema reference {name!r}")
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return _inline({**defs[name], **siblings}, defs, (*seen, name))
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$defs", "title", "default"):
            continue
        if key == "properties":
            out[key] = {name: _inline(sub, defs, seen) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            out[key] = _inline(value, defs, seen)
        elif key in ("anyOf", "allOf", "oneOf", "prefixItems"):
            out[key] = [_inline(sub, defs, seen) for sub in value]
        else:
            out[key] = value
    if out.get("type") == "object" and "properties" in out:
        out["required"] = list(out["properties"])
        out.setdefault("additionalProperties", False)
    return out
