"""The plan: an objective split into tasks that depend on each other.

A [`Plan`][] is what the planner model returns (as structured output, see
[`plan_schema`][]) or what a user hands in as a YAML or JSON file
([`load_plan`][]). The pydantic models check only the *shape* (types, known
fields); the *rules* (unique ids, known dependencies, no cycles, non-empty
text...) are checked by [`validate_plan`][], which reports every problem at
once, worded so that a planner model can fix them on its next attempt.

```python
plan = parse_plan(structured_output)  # raises PlanError listing every problem
for task in ready_tasks(plan, done={"models"}, running={"cli"}):
    ...
```
"""

from langgraph_opencode.plan._graph import blocked_by_failure, ready_tasks, topological_order
from langgraph_opencode.plan._load import PlanFormat, load_plan, parse_plan, parse_plan_text
from langgraph_opencode.plan._models import (
    TASK_ID_PATTERN,
    Plan,
    Task,
    plan_schema,
    structured_output_schema,
)
from langgraph_opencode.plan._rules import check_plan, validate_plan

__all__ = [
    "TASK_ID_PATTERN",
    "Plan",
    "PlanFormat",
    "Task",
    "blocked_by_failure",
    "check_plan",
    "load_plan",
    "parse_plan",
    "parse_plan_text",
    "plan_schema",
    "ready_tasks",
    "structured_output_schema",
    "topological_order",
    "validate_plan",
]
