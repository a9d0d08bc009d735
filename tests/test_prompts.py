"""Prompt templates: strict rendering, and every rendered prompt pinned by a golden file.

Regenerate the golden files after a deliberate prompt change with
``UPDATE_GOLDEN=1 pytest tests/test_prompts.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from langgraph_opencode import prompts
from langgraph_opencode.plan import Plan, Task
from langgraph_opencode.prompts import bullet_list, code_block, placeholders, render
from langgraph_opencode.tools.opencode import config

GOLDEN = Path(__file__).parent / "golden"

TASK = Task(
    id="add-parser",
    title="Parse the config file",
    instructions=(
        "Add `load_config(path)` to `src/app/config.py`: read the TOML file and return a\n"
        "`Config`. Raise `ConfigError` naming the file and key on a bad value."
    ),
    files=["src/app/config.py", "tests/test_config.py"],
    checks=["python -m pytest tests/test_config.py -q", "ruff check src/app/config.py"],
)
OBJECTIVE = "Let users configure the app with a TOML file (prices in $USD, keys like {name})."
CHECK_OUTPUT = "`python -m pytest tests/test_config.py -q` (exit 1)\n\n" + code_block(
    "F.\nFAILED tests/test_config.py::test_bad_value - ConfigError not raised"
)
DIFF = code_block(
    "--- a/src/app/config.py\n+++ b/src/app/config.py\n@@ -1 +1,3 @@\n+def load_config(path):\n"
    '+    """Read it, see ```toml``` docs."""\n',
    "diff",
)
PREVIOUS_PLAN = Plan(
    objective=OBJECTIVE,
    tasks=[TASK.model_copy(update={"depends_on": ["add-parser"]})],
)

CASES: dict[str, dict[str, str]] = {
    "planner": {
        "objective": OBJECTIVE,
        "repo_summary": bullet_list(["pyproject.toml", "src/app/__init__.py", "tests/"]),
    },
    "planner_retry": {
        "problems": bullet_list(
            ["task 'add-parser': depends on itself: remove 'add-parser' from its depends_on"]
        ),
        "previous_plan": code_block(PREVIOUS_PLAN.model_dump_json(indent=2), "json"),
    },
    "worker": {
        "objective": OBJECTIVE,
        "task_id": TASK.id,
        "title": TASK.title,
        "instructions": TASK.instructions,
        "files": bullet_list(TASK.files),
        "checks": bullet_list(f"`{check}`" for check in TASK.checks),
        "other_tasks": bullet_list(["`docs`: Document the config file (files: README.md)"]),
    },
    "resume": {
        "task_id": TASK.id,
        "title": TASK.title,
        "reason": "stalled: no activity for 600 s",
    },
    "rework": {
        "task_id": TASK.id,
        "title": TASK.title,
        "feedback": "Raise ConfigError for a negative price, as the instructions ask.",
        "findings": bullet_list(["src/app/config.py:12: negative prices are accepted"]),
        "check_output": CHECK_OUTPUT,
    },
    "rework_checks": {
        "task_id": TASK.id,
        "title": TASK.title,
        "failing": bullet_list(["`python -m pytest tests/test_config.py -q`"]),
        "check_output": CHECK_OUTPUT,
    },
    "conflict": {
        "task_id": TASK.id,
        "title": TASK.title,
        "integration_branch": "lgoc/integration",
        "paths": bullet_list(["src/app/config.py"]),
        "checks": bullet_list(f"`{check}`" for check in TASK.checks),
    },
    "reviewer": {
        "objective": OBJECTIVE,
        "task_id": TASK.id,
        "title": TASK.title,
        "instructions": TASK.instructions,
        "files": bullet_list(TASK.files),
        "check_results": CHECK_OUTPUT,
        "diff": DIFF,
    },
    "planner_agent": {},
    "reviewer_agent": {},
}


def test_every_template_has_a_golden_case() -> None:
    assert sorted(CASES) == prompts.template_names()


@pytest.mark.parametrize("name", sorted(CASES))
def test_rendered_prompt_matches_golden_file(name: str) -> None:
    assert placeholders(name) == set(CASES[name])
    rendered = render(name, **CASES[name])
    golden = GOLDEN / f"{name}.md"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(rendered, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}: run with UPDATE_GOLDEN=1"
    assert rendered == golden.read_text(encoding="utf-8"), (
        f"prompt {name!r} changed: if on purpose, run UPDATE_GOLDEN=1 pytest {__file__}"
    )


def test_rendered_prompts_have_no_leftovers() -> None:
    for name, values in CASES.items():
        rendered = render(name, **values)
        assert "<!--" not in rendered
        assert "$" not in rendered.replace("$USD", "")
        assert rendered.endswith("\n")
        assert not rendered.endswith("\n\n")


def test_agent_prompts_start_with_the_headers_that_identify_them() -> None:
    # The scripted model tells the agents apart by these first lines.
    planner = render("planner_agent")
    reviewer = render("reviewer_agent")
    assert planner.splitlines()[0] == config.PLANNER_PROMPT_HEADER
    assert reviewer.splitlines()[0] == config.REVIEWER_PROMPT_HEADER


def test_missing_placeholder_is_an_error() -> None:
    values = dict(CASES["planner"])
    del values["repo_summary"]
    with pytest.raises(
        TypeError,
        match=r"prompt template 'planner': missing values for repo_summary "
        r"\(placeholders: objective, repo_summary\)",
    ):
        render("planner", **values)


def test_extra_placeholder_is_an_error() -> None:
    with pytest.raises(TypeError, match="unexpected values for tone"):
        render("planner", **CASES["planner"], tone="friendly")
    with pytest.raises(TypeError, match=r"unexpected values for x \(placeholders: none\)"):
        render("planner_agent", x="1")


def test_values_must_be_strings() -> None:
    with pytest.raises(TypeError, match="values must be strings: objective"):
        render("planner", objective=["a list"], repo_summary="")  # type: ignore[arg-type]


def test_unknown_template_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match=r"no prompt template named 'plan'; templates: conflict, "):
        render("plan")


def test_values_are_inserted_verbatim() -> None:
    rendered = render("planner", objective="Costs $objective and ${x} {y}", repo_summary="$$")
    assert "Costs $objective and ${x} {y}" in rendered
    assert "\n$$\n" in rendered


def test_bullet_list_and_code_block() -> None:
    assert bullet_list([]) == "(none)"
    assert bullet_list([], empty="(all checks passed)") == "(all checks passed)"
    assert bullet_list(["a", "b\nc"]) == "- a\n- b\n  c"
    assert code_block("x = 1\n", "python") == "```python\nx = 1\n```"
    assert code_block("see ````four```` here") == "`````\nsee ````four```` here\n`````"
    # The JSON shown to the planner round-trips.
    block = code_block(PREVIOUS_PLAN.model_dump_json(indent=2), "json")
    assert (
        Plan.model_validate(json.loads(block.split("\n", 1)[1].rsplit("\n", 1)[0])) == PREVIOUS_PLAN
    )


def test_stray_dollar_in_a_template_is_reported() -> None:
    from string import Template

    from langgraph_opencode.prompts import _stray_dollar

    assert _stray_dollar(Template("ok\ncosts 5$ here")) == (
        "line 2 has a `$` that starts no placeholder (write `$$` for a dollar)"
    )
