"""The plan model: rules, loading, schema and scheduling helpers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from langgraph_opencode.errors import ConfigurationError, PlanError
from langgraph_opencode.plan import (
    Plan,
    Task,
    blocked_by_failure,
    check_plan,
    load_plan,
    parse_plan,
    parse_plan_text,
    plan_schema,
    ready_tasks,
    structured_output_schema,
    topological_order,
    validate_plan,
)
from langgraph_opencode.review import Verdict, verdict_schema


def task(task_id: str, *deps: str, **fields: Any) -> Task:
    values: dict[str, Any] = {"title": f"Do {task_id}", "instructions": f"Implement {task_id}."}
    return Task(id=task_id, depends_on=list(deps), **(values | fields))


def plan(*tasks: Task) -> Plan:
    return Plan(objective="Add a CLI", tasks=list(tasks))


# A diamond: models <- (parser, cli) <- docs
DIAMOND = plan(
    task("docs", "parser", "cli"), task("models"), task("parser", "models"), task("cli", "models")
)


# --- rules ------------------------------------------------------------------------------


def test_valid_plan_has_no_problems() -> None:
    assert validate_plan(DIAMOND) == []
    assert check_plan(DIAMOND) is DIAMOND


def test_every_problem_is_reported_at_once() -> None:
    bad = Plan(
        objective=" ",
        tasks=[
            task("a", "b"),
            task("b", "b", "c", "c", title="  "),
            task("c", "a", "ghost", instructions="", checks=["pytest -q", " "]),
            task("Bad Id", files=["/etc/passwd", "../outside.py", ""]),
            task("c"),
            task(""),
        ],
    )
    assert validate_plan(bad) == [
        "objective is empty: state the coding objective the tasks achieve",
        "task 'b': title is empty",
        "task 'b': depends on itself: remove 'b' from its depends_on",
        "task 'b': depends_on lists 'c' more than once",
        "tasks[2] (id 'c'): instructions is empty",
        "tasks[2] (id 'c'): depends on 'ghost', which is not a task id in this plan "
        "(ids: 'a', 'b', 'c', 'Bad Id', '')",
        "tasks[2] (id 'c'): checks[1] is empty: give a shell command that exits 0",
        "task 'Bad Id': id 'Bad Id' is not a short slug: use at most 64 lowercase letters, "
        "digits, '-' and '_', starting with a letter or digit",
        "task 'Bad Id': files[0] '/etc/passwd' must be relative to the repository root",
        "task 'Bad Id': files[1] '../outside.py' must be relative to the repository root",
        "task 'Bad Id': files[2] is empty",
        "tasks[5]: id is empty: give a short slug such as 'add-parser'",
        "task id 'c' is used by 2 tasks (tasks[2], tasks[4]): give each task its own id",
        "dependency cycle a -> b -> c -> a ('->' means 'depends on'): tasks in a cycle can "
        "never start; remove one of these dependencies",
    ]


def test_empty_plan_and_task_limit() -> None:
    assert validate_plan(plan()) == ["the plan has no tasks: give at least one task"]
    assert validate_plan(DIAMOND, max_tasks=3) == [
        "the plan has 4 tasks, more than the limit of 3: merge closely related tasks"
    ]


def test_each_cycle_is_named_once_starting_from_the_earliest_task() -> None:
    cyclic = plan(
        task("x", "y"),
        task("a", "b"),
        task("b", "c"),
        task("c", "a", "b"),
        task("y", "x"),
        task("free", "a"),
    )
    assert [p.split(" (")[0] for p in validate_plan(cyclic)] == [
        "dependency cycle x -> y -> x",
        "dependency cycle a -> b -> c -> a",
    ]


def test_long_chain_does_not_hit_the_recursion_limit() -> None:
    n = 3000
    chain = plan(*(task(f"t{i}", f"t{i + 1}") for i in range(n)), task(f"t{n}", "t0"))
    (problem,) = validate_plan(chain)
    assert problem.startswith("dependency cycle t0 -> t1 -> t2 -> ")
    assert f"-> t{n} -> t0 (" in problem


def test_plan_error_is_a_configuration_error_listing_the_problems() -> None:
    with pytest.raises(PlanError) as caught:
        check_plan(plan(task("a", "a")), source="plan.yaml")
    assert isinstance(caught.value, ConfigurationError)
    assert caught.value.problems == ["task 'a': depends on itself: remove 'a' from its depends_on"]
    assert caught.value.source == "plan.yaml"
    assert str(caught.value) == (
        "invalid plan in plan.yaml: 1 problem\n"
        "- task 'a': depends on itself: remove 'a' from its depends_on"
    )


# --- parsing objects --------------------------------------------------------------------


def test_parse_structured_output_dict() -> None:
    data = {
        "objective": "Add a CLI",
        "tasks": [
            {
                "id": "models",
                "title": "Models",
                "instructions": "Write them.",
                "depends_on": [],
                "files": ["src/m.py"],
                "checks": ["pytest -q tests/test_m.py"],
            },
        ],
        "summary": "One step.",
    }
    parsed = parse_plan(data)
    assert parsed.task("models").checks == ["pytest -q tests/test_m.py"]
    assert parsed.summary == "One step."
    assert parse_plan(parsed) == parsed
    assert parse_plan(parsed) is not parsed
    with pytest.raises(KeyError):
        parsed.task("nope")


def test_shape_problems_name_the_field_and_the_task() -> None:
    data = {
        "objective": "x",
        "tasks": [
            {"id": "a", "title": 3, "instruction": "typo", "depends_on": "b"},
            {"title": "no id", "instructions": "i"},
        ],
        "sumary": "",
    }
    with pytest.raises(PlanError) as caught:
        parse_plan(data)
    assert caught.value.problems == [
        "tasks[0] (id 'a').title: input should be a valid string, got 3",
        "tasks[0] (id 'a').instructions: is required",
        "tasks[0] (id 'a').depends_on: input should be a valid list, got 'b'",
        "tasks[0] (id 'a').instruction: is not a known field: did you mean 'instructions'? "
        "(known fields: id, title, instructions, depends_on, files, checks)",
        "tasks[1].id: is required",
        "sumary: is not a known field: did you mean 'summary'? "
        "(known fields: objective, tasks, summary)",
    ]


@dataclass
class _TaskObject:
    id: str
    title: str = "T"
    instructions: str = "I"
    depends_on: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


@dataclass
class _PlanObject:
    objective: str
    tasks: list[_TaskObject]
    summary: str = ""


def test_parse_object_by_attributes() -> None:
    parsed = parse_plan(_PlanObject("goal", [_TaskObject("a"), _TaskObject("b", depends_on=["a"])]))
    assert [t.id for t in parsed.tasks] == ["a", "b"]
    with pytest.raises(PlanError, match="depends on 'c'"):
        parse_plan(_PlanObject("goal", [_TaskObject("a", depends_on=["c"])]))


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (None, "the plan is empty: give 'objective' and 'tasks'"),
        ([], "the plan must be a mapping with 'objective' and 'tasks', got list"),
        ("text", "the plan must be a mapping with 'objective' and 'tasks', got str"),
    ],
)
def test_parse_rejects_non_plans(data: object, problem: str) -> None:
    with pytest.raises(PlanError) as caught:
        parse_plan(data)
    assert caught.value.problems == [problem]


# --- files --------------------------------------------------------------------------------

YAML_PLAN = """\
objective: Add a CLI
summary: Two steps.
tasks:
  - id: models
    title: Models
    instructions: |
      Write the models.
    files: [src/m.py]
    checks:
      - pytest -q tests/test_m.py
  - id: cli
    title: CLI
    instructions: Write the CLI.
    depends_on: [models]
"""


@pytest.mark.parametrize("name", ["plan.yaml", "plan.yml", "plan.txt", "plan"])
def test_load_yaml(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(YAML_PLAN)
    loaded = load_plan(path)
    assert [t.id for t in loaded.tasks] == ["models", "cli"]
    assert loaded.task("models").instructions == "Write the models.\n"


@pytest.mark.parametrize("name", ["plan.json", "plan.txt"])
def test_load_json(tmp_path: Path, name: str) -> None:
    expected = parse_plan_text(YAML_PLAN)
    path = tmp_path / name
    path.write_text(json.dumps(expected.model_dump(), indent=2))
    assert load_plan(path) == expected


def test_file_problems_carry_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(
        YAML_PLAN.replace("    title: CLI\n", "    title: 7\n").replace("[models]", "[model]")
    )
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    assert caught.value.source == str(path)
    assert caught.value.problems == [
        "line 12: tasks[1] (id 'cli').title: input should be a valid string, got 7"
    ]
    path.write_text(YAML_PLAN.replace("[models]", "[model]"))
    with pytest.raises(PlanError, match=r"task 'cli': depends on 'model', which is not a task id"):
        load_plan(path)


def test_json_shape_problems_carry_lines_too(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text('{\n  "objective": "x",\n  "tasks": [\n    {"id": "a"}\n  ]\n}\n')
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    assert caught.value.problems == [
        "line 4: tasks[0] (id 'a').title: is required",
        "line 4: tasks[0] (id 'a').instructions: is required",
    ]


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        (
            "p.json",
            '{"objective": "x",\n "tasks": [}',
            "line 2, column 12: not valid JSON: Expecting value",
        ),
        (
            "p.yaml",
            "objective: x\ntasks:\n - id: a\n  title: b\n",
            "not valid YAML: line 4, column 3: while parsing a block collection, "
            "expected <block end>, but found '<block mapping start>'",
        ),
        (
            "p.yaml",
            "objective: x\n---\nobjective: y\n",
            "not valid YAML: line 2, column 1: expected a single document in the stream, "
            "but found another document",
        ),
        ("p.yaml", "", "the plan is empty: give 'objective' and 'tasks'"),
        (
            "p.yaml",
            "- a\n- b\n",
            "the plan must be a mapping with 'objective' and 'tasks', got list",
        ),
    ],
)
def test_malformed_files(tmp_path: Path, name: str, text: str, problem: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    assert caught.value.problems == [problem]
    assert str(path) in str(caught.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"cannot read the plan file: .*No such file"):
        load_plan(tmp_path / "missing.yaml")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PlanError, match="cannot read the plan file"):
        load_plan(tmp_path / "binary.yaml")


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text("objective: !!python/object/apply:os.system ['true']\ntasks: []\n")
    with pytest.raises(PlanError, match=r"not valid YAML: .*could not determine a constructor"):
        load_plan(path)


# --- schemas ------------------------------------------------------------------------------


def _walk(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        return [node, *(n for value in node.values() for n in _walk(value))]
    if isinstance(node, list):
        return [n for value in node for n in _walk(value)]
    return []


def test_plan_schema_is_plain_and_strict() -> None:
    schema = plan_schema()
    json.dumps(schema)
    text = json.dumps(schema)
    assert "$ref" not in text
    assert "$defs" not in text
    for node in _walk(schema):
        assert "default" not in node
        if node.get("type") == "object":
            assert node["additionalProperties"] is False
            assert node["required"] == list(node["properties"])
    task_schema = schema["properties"]["tasks"]["items"]
    assert list(task_schema["properties"]) == [
        "id",
        "title",
        "instructions",
        "depends_on",
        "files",
        "checks",
    ]
    # A field named "title" is kept; only the annotation titles go.
    assert task_schema["properties"]["title"] == {
        "description": "One-line summary of the task.",
        "type": "string",
    }
    assert task_schema["properties"]["id"]["pattern"] == "^[a-z0-9][a-z0-9_-]*$"
    assert schema["required"] == ["objective", "tasks", "summary"]
    assert plan_schema() is not plan_schema()


def test_verdict_schema_and_model() -> None:
    schema = verdict_schema()
    assert schema["required"] == ["approved", "findings", "feedback"]
    assert schema["properties"]["approved"]["type"] == "boolean"
    assert schema["additionalProperties"] is False
    verdict = Verdict.model_validate(
        {"approved": False, "findings": ["a.py:3: bug"], "feedback": "Fix it."}
    )
    assert not verdict.approved
    assert Verdict(approved=True).findings == []


def test_recursive_models_are_refused() -> None:
    from pydantic import BaseModel

    class Node(BaseModel):
        children: list[Node]

    with pytest.raises(ValueError, match="recursive"):
        structured_output_schema(Node)


# --- scheduling ---------------------------------------------------------------------------


def test_topological_order_is_stable() -> None:
    assert [t.id for t in topological_order(DIAMOND)] == ["models", "parser", "cli", "docs"]
    with pytest.raises(PlanError, match="dependency cycle a -> b -> a"):
        topological_order(plan(task("a", "b"), task("b", "a")))


def test_ready_tasks() -> None:
    assert [t.id for t in ready_tasks(DIAMOND, set())] == ["models"]
    assert [t.id for t in ready_tasks(DIAMOND, {"models"})] == ["parser", "cli"]
    assert [t.id for t in ready_tasks(DIAMOND, {"models"}, running={"cli"})] == ["parser"]
    assert [t.id for t in ready_tasks(DIAMOND, {"models", "cli"}, failed={"parser"})] == []
    assert [t.id for t in ready_tasks(DIAMOND, {"models", "cli", "parser"})] == ["docs"]
    assert ready_tasks(DIAMOND, {"models", "cli", "parser", "docs"}) == []
    with pytest.raises(ValueError, match="running names tasks that are not in the plan: 'nope'"):
        ready_tasks(DIAMOND, set(), running={"nope"})


def test_blocked_by_failure_is_transitive() -> None:
    assert blocked_by_failure(DIAMOND, set()) == []
    assert blocked_by_failure(DIAMOND, {"parser"}) == ["docs"]
    assert blocked_by_failure(DIAMOND, {"models"}) == ["docs", "parser", "cli"]
    assert blocked_by_failure(DIAMOND, {"models", "parser"}) == ["docs", "cli"]
    with pytest.raises(ValueError, match="failed names tasks that are not in the plan"):
        blocked_by_failure(DIAMOND, {"ghost"})
