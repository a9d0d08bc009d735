"""The reviewer's verdict on a worker's change.

The reviewer model answers with a [`Verdict`][] as structured output
(schema: [`verdict_schema`][]). A rejected verdict's ``feedback`` is what the
worker is asked to act on next (see the ``rework`` prompt).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from langgraph_opencode.plan import structured_output_schema

__all__ = ["Verdict", "verdict_schema"]


class Verdict(BaseModel):
    """Whether a task's change may be merged, and what must change if not."""

    model_config = ConfigDict(extra="forbid")

    approved: bool = Field(
        description="True only if the change does what the task asks, is correct and is safe "
        "to merge as it is."
    )
    findings: list[str] = Field(
        default_factory=list,
        description="Each concrete problem found, one per item, naming the file and line "
        "where possible; empty if there is none.",
    )
    feedback: str = Field(
        default="",
        description="If not approved: precisely what the worker must change. If approved: a "
        "one-line summary of the change.",
    )


def verdict_schema() -> dict[str, Any]:
    """Return the JSON schema of a [`Verdict`][] for the reviewer's structured output."""
    return structured_output_schema(Verdict)
