"""The OpenCode configuration the orchestrator runs its servers with.

[`build_config`][] returns a plain JSON-able dict meant for the
``OPENCODE_CONFIG_CONTENT`` environment variable of ``opencode serve`` (pass it
as ``OpenCodeServer(config=...)``). That variable applies to every directory
the server serves and wins over a project's own ``opencode.json``.

The config always contains:

* two read-only primary agents, [`PLANNER_AGENT`][] and [`REVIEWER_AGENT`][]:
  their ``edit`` (which covers ``write``, ``edit`` and ``apply_patch``),
  ``bash`` and ``task`` permissions are ``deny``, so those tools are not even
  offered to the model; the worker uses OpenCode's own ``build`` agent
  ([`WORKER_AGENT`][]);
* the ``question`` tool denied for every agent: nobody is there to answer it
  and a pending question blocks a run forever;
* ``autoupdate`` off, sharing disabled, and OpenCode's snapshots (its own undo
  copies of the worktree at every model step) off: the run commits the work.

Each agent's system prompt starts with a distinctive first line
([`PLANNER_PROMPT_HEADER`][], [`REVIEWER_PROMPT_HEADER`][]) so that a scripted
model in tests can tell which agent is asking.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Literal

from langgraph_opencode.errors import ConfigurationError
from langgraph_opencode.prompts import render

__all__ = [
    "PLANNER_AGENT",
    "PLANNER_PROMPT",
    "PLANNER_PROMPT_HEADER",
    "READ_ONLY_DENIED_PERMISSIONS",
    "REVIEWER_AGENT",
    "REVIEWER_PROMPT",
    "REVIEWER_PROMPT_HEADER",
    "WORKER_AGENT",
    "PermissionAction",
    "build_config",
    "deep_merge",
    "split_model",
]

PermissionAction = Literal["allow", "ask", "deny"]
"""What OpenCode does when a tool asks for a permission."""

PLANNER_AGENT = "planner"
"""Name of the read-only agent that splits an objective into tasks."""

REVIEWER_AGENT = "reviewer"
"""Name of the read-only agent that judges a worker's result."""

WORKER_AGENT = "build"
"""Name of the agent that does the work: OpenCode's own ``build`` agent."""

PLANNER_PROMPT_HEADER = "# langgraph-opencode planner agent (read-only)"
"""First line of the planner's system prompt."""

REVIEWER_PROMPT_HEADER = "# langgraph-opencode reviewer agent (read-only)"
"""First line of the reviewer's system prompt."""

PLANNER_PROMPT = render("planner_agent")
"""System prompt of the [`PLANNER_AGENT`][] (``prompts/planner_agent.md``)."""

REVIEWER_PROMPT = render("reviewer_agent")
"""System prompt of the [`REVIEWER_AGENT`][] (``prompts/reviewer_agent.md``)."""

READ_ONLY_DENIED_PERMISSIONS: tuple[str, ...] = ("edit", "bash", "task")
"""Permissions denied to the planner and reviewer.

``edit`` covers OpenCode's ``write``, ``edit`` and ``apply_patch`` tools;
``task`` would let the agent start a sub-agent that can edit.
"""

# Tools switched off by name as well, for servers whose permission names differ.
_READ_ONLY_DISABLED_TOOLS: tuple[str, ...] = ("write", "edit", "apply_patch", "bash", "task")


def build_config(
    *,
    model: str | None = None,
    small_model: str | None = None,
    providers: Mapping[str, Mapping[str, Any]] | None = None,
    agent_models: Mapping[str, str] | None = None,
    permission: Mapping[str, PermissionAction | Mapping[str, PermissionAction]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the OpenCode config of the orchestrator's servers.

    Args:
        model: Default model of every agent, as ``"provider/model"``
            (e.g. ``"anthropic/claude-sonnet-4-5"``). ``None`` keeps OpenCode's
            own choice (the user's config, or the first provider available).
        small_model: Model for titles and summaries, as ``"provider/model"``.
        providers: Provider blocks, keyed by provider id, exactly as in an
            ``opencode.json`` ``provider`` section (e.g. an
            ``@ai-sdk/openai-compatible`` provider with ``options.baseURL``).
        agent_models: Per-agent model overrides, agent name to
            ``"provider/model"``, e.g. ``{PLANNER_AGENT: "openai/gpt-5"}``.
        permission: Extra permission rules for every agent, as in an
            ``opencode.json`` ``permission`` section: a permission name mapped
            to an action, or to ``{pattern: action}`` where the last matching
            pattern wins (``{"bash": {"*": "ask", "git *": "allow"}}``). They
            cannot lift the planner's and reviewer's read-only denials, nor
            re-enable ``question``.
        extra: Any other config, deep-merged last: mappings are merged key by
            key, every other value replaces what was there. This can override
            anything above, including the read-only agents.

    Returns:
        A new JSON-serialisable dict; the inputs are not modified.

    Raises:
        ConfigurationError: A model is not written ``provider/model``, or a
            permission action is not one of ``allow``, ``ask``, ``deny``.
    """
    config: dict[str, Any] = {
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": False,
        "share": "disabled",
        # OpenCode's own undo history: a copy of the worktree in its object store
        # before and after every model step. The run commits the work itself, and the
        # copies cost a `git add` of the whole worktree per step.
        "snapshot": False,
        "permission": {"question": "deny"},
        "tools": {"question": False},
        "agent": {
            PLANNER_AGENT: _read_only_agent(
                "Read-only planner: turns an objective into independent tasks.", PLANNER_PROMPT
            ),
            REVIEWER_AGENT: _read_only_agent(
                "Read-only reviewer: judges a worker's change.", REVIEWER_PROMPT
            ),
        },
    }
    if model is not None:
        config["model"] = _check_model("model", model)
    if small_model is not None:
        config["small_model"] = _check_model("small_model", small_model)
    if providers:
        config["provider"] = {name: copy.deepcopy(dict(block)) for name, block in providers.items()}
    if permission:
        rules = _check_permission(permission)
        # Last matching rule wins, so `question` must come after any wildcard.
        rules.pop("question", None)
        config["permission"] = {**rules, "question": "deny"}
    for agent, agent_model in (agent_models or {}).items():
        config["agent"].setdefault(agent, {})["model"] = _check_model(
            f"agent_models[{agent!r}]", agent_model
        )
    if extra:
        config = deep_merge(config, extra)
    return config


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated by ``override``, merging nested mappings.

    Mappings present on both sides are merged recursively; any other value in
    ``override`` (lists included) replaces the one in ``base``. Neither input is
    modified.

    Args:
        base: The starting mapping.
        override: The mapping whose values win.

    Returns:
        A new dict.
    """
    merged: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read_only_agent(description: str, prompt: str) -> dict[str, Any]:
    return {
        "mode": "primary",
        "description": description,
        "prompt": prompt,
        "permission": dict.fromkeys(READ_ONLY_DENIED_PERMISSIONS, "deny"),
        "tools": dict.fromkeys(_READ_ONLY_DISABLED_TOOLS, False),
    }


def split_model(value: str, *, field: str = "model") -> tuple[str, str]:
    """Split ``"provider/model"`` into its provider id and model id.

    Raises:
        ConfigurationError: ``value`` is not written ``provider/model``.
    """
    provider, sep, model_id = value.partition("/")
    if not (sep and provider.strip() and model_id.strip()):
        raise ConfigurationError(
            f"{field} must be written 'provider/model' (e.g. 'anthropic/claude-sonnet-4-5'), "
            f"got {value!r}"
        )
    return provider, model_id


def _check_model(field: str, value: str) -> str:
    split_model(value, field=field)
    return value


_ACTIONS: tuple[str, ...] = ("allow", "ask", "deny")


def _check_permission(
    permission: Mapping[str, PermissionAction | Mapping[str, PermissionAction]],
) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for name, rule in permission.items():
        actions = rule.values() if isinstance(rule, Mapping) else [rule]
        for action in actions:
            if action not in _ACTIONS:
                raise ConfigurationError(
                    f"permission[{name!r}]: unknown action {action!r}; valid actions: "
                    + ", ".join(_ACTIONS)
                )
        checked[name] = dict(rule) if isinstance(rule, Mapping) else rule
    return checked
