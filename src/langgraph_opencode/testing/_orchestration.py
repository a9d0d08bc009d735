"""Script pieces for the orchestrator's agents: planner, workers, reviewer.

Each agent is told apart by its prompt: the planner and reviewer agents'
system prompts start with their headers, and every worker prompt starts with
``# Task `<id>` `` (rework: ``# Task `<id>` needs more work``, conflicts:
``# Task `<id>` has merge conflicts`` and so on, from ``prompts/*.md``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from langgraph_opencode.testing._replies import StructuredOutput, Text, ToolCall
from langgraph_opencode.testing._script import Conversation, Step, TextMatcher
from langgraph_opencode.tools.opencode.config import PLANNER_PROMPT_HEADER, REVIEWER_PROMPT_HEADER

__all__ = [
    "clashing_notes_plan",
    "fan_in_plan",
    "independent_plan",
    "one_task_plan",
    "planner_returns",
    "reviewer_says",
    "task_prompt",
    "worker_writes",
]


def _task(task_id: str, depends_on: list[str], check: str | None, file: str) -> dict[str, Any]:
    return {
        "id": task_id,
        "title": f"Write {task_id}",
        "instructions": f"Create {file}",
        "depends_on": depends_on,
        "files": [file],
        "checks": [check] if check else [],
    }


def one_task_plan(
    task_id: str = "one", *, file: str = "one.txt", check: str | None = None
) -> dict[str, Any]:
    """A plan of one task that writes ``file``; its check defaults to ``test -f <file>``."""
    return {
        "objective": "one file",
        "summary": "",
        "tasks": [_task(task_id, [], check or f"test -f {file}", file)],
    }


def clashing_notes_plan() -> dict[str, Any]:
    """Two independent tasks whose work passes its checks alone and fails them together.

    Task ``a`` writes ``notes/a.txt``, task ``b`` writes ``notes/b.txt``; each
    check wants its own note to be the only one. Script them with
    ``worker_writes("a", {"notes/a.txt": ...})`` and the same for ``b``.
    """
    only_one = "test $(ls notes | wc -l) -eq 1"
    return {
        "objective": "two notes",
        "summary": "",
        "tasks": [
            _task(t, [], f"test -f notes/{t}.txt && {only_one}", f"notes/{t}.txt")
            for t in ("a", "b")
        ],
    }


def independent_plan(task_ids: Iterable[str], *, checks: bool = False) -> dict[str, Any]:
    """A plan of independent tasks: each writes ``<id>.txt``.

    Args:
        task_ids: The tasks' ids.
        checks: Give each task the check ``test -f <id>.txt`` (else no checks).
    """
    tasks = [_task(t, [], f"test -f {t}.txt" if checks else None, f"{t}.txt") for t in task_ids]
    return {"objective": f"{len(tasks)} files", "summary": "independent tasks", "tasks": tasks}


def fan_in_plan(first: str = "a", second: str = "b", last: str = "c") -> dict[str, Any]:
    """A plan of three tasks: two independent ones, then one that needs both.

    Each task writes ``<id>.txt``; the last one's check also wants the other two files.
    """

    def task(task_id: str, depends_on: list[str], check: str) -> dict[str, Any]:
        return _task(task_id, depends_on, check, f"{task_id}.txt")

    return {
        "objective": "three files",
        "summary": f"{first} and {second} in parallel, then {last}",
        "tasks": [
            task(first, [], f"test -f {first}.txt"),
            task(second, [], f"test -f {second}.txt"),
            task(
                last,
                [first, second],
                f"test -f {first}.txt && test -f {second}.txt && test -f {last}.txt",
            ),
        ],
    }


def task_prompt(task_id: str) -> str:
    """The text every prompt about ``task_id`` starts with (after ``# ``)."""
    return f"Task `{task_id}`"


def planner_returns(plan: Mapping[str, Any], *, user: TextMatcher | None = None) -> Step:
    """The planner answers with ``plan`` (structured output)."""
    return Step(
        StructuredOutput(dict(plan)),
        system=PLANNER_PROMPT_HEADER,
        user=user,
        tool="StructuredOutput",
        name=f"planner: {len(plan.get('tasks', []))} tasks",
    )


def worker_writes(
    task_id: str,
    files: Mapping[str, str],
    *,
    user: TextMatcher | None = None,
    answer: str | None = None,
) -> Conversation:
    """A worker session writes ``files`` (path -> content), then says it is done.

    Args:
        task_id: The task; the conversation starts on a prompt about it.
        files: What to write.
        user: What the prompt must contain, if not just the task's header
            (e.g. ``"needs more work"`` for a rework round).
        answer: The final text.
    """
    calls: list[Step] = []
    for index, (path, content) in enumerate(files.items()):
        calls.append(
            Step(ToolCall.write(path, content), after_tool=None if index == 0 else "write")
        )
    done = Step(Text(answer or f"Task {task_id} done."), after_tool="write")
    first, *rest = calls
    return Conversation(
        first.reply,
        *rest,
        done,
        user=user if user is not None else task_prompt(task_id),
        name=f"worker {task_id}: write {', '.join(files)}",
    )


def reviewer_says(
    approved: bool = True,
    *,
    task_id: str | None = None,
    feedback: str = "",
    findings: Iterable[str] = (),
    repeat: bool = False,
) -> Step:
    """The reviewer's verdict (for one task, or any)."""
    verdict = {
        "approved": approved,
        "findings": list(findings),
        "feedback": feedback or ("Looks good." if approved else "Please fix it."),
    }
    return Step(
        StructuredOutput(verdict),
        system=REVIEWER_PROMPT_HEADER,
        user=f"Review task `{task_id}`" if task_id else None,
        tool="StructuredOutput",
        repeat=repeat,
        name=f"reviewer{' ' + task_id if task_id else ''}: {'approve' if approved else 'reject'}",
    )
