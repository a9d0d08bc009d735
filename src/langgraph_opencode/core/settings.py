"""Run settings: everything a run needs that is not state.

They are the graph's ``context_schema``: passed per invocation, editable in
LangGraph Studio, and never written to checkpoints. Secrets are not settings:
the server password is read from the environment variable named here (or
from the in-process registry of an embedded server), never stored.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field, fields
from typing import Any, Literal
from urllib.parse import urlsplit

from langgraph_opencode.errors import ConfigurationError
from langgraph_opencode.tools.opencode.config import split_model

__all__ = ["EMBEDDED", "PermissionDecision", "RunSettings", "permission_rule_problem"]

EMBEDDED = "embedded"
"""The name the state gives the run's embedded server: its identity is not its
port, which changes when the server is started again for a resume."""

PermissionDecision = Literal["allow", "deny", "ask"]


@dataclass(kw_only=True)
class RunSettings:
    """How one orchestration run behaves.

    Attributes:
        server_url: The run's primary OpenCode server (the planner's first
            choice). Empty: the first of ``server_urls``, or, with none, the
            ``orchestrate`` API starts an embedded server and fills this in.
        embedded: Whether ``server_url`` is the run's embedded server (set by
            the ``orchestrate`` API, not by users). The state then names it
            :data:`EMBEDDED` instead of its URL, so a resume that starts it
            again on another port finds the run's sessions on it.
        embedded_linger: Seconds the run's embedded server keeps running once
            no orchestrator holds the run (after a crash, Ctrl-C or a pause),
            so a resume soon after adopts it; then it stops by itself.
        server_urls: More OpenCode servers to spread the sessions over (see
            :meth:`servers`). Every server must see the repository at the
            same path (same machine or a shared filesystem).
        server_lost_after: Seconds an external server may go without answering
            before its sessions are taken as gone (and moved to another server),
            if its TCP port does not take connections either: a loaded server
            is slow, not gone. The run's embedded server is gone only when its
            process is.
        password_env: Name of the environment variable holding the servers'
            password (an embedded server's password is known in-process).
        password_envs: Per server URL, the environment variable holding that
            server's password, where it differs from ``password_env``.
        planner_model: ``provider/model`` for the planner; empty: the server's default.
        worker_model: ``provider/model`` for the workers; empty: the server's default.
        reviewer_model: ``provider/model`` for the reviewer; empty: the server's default.
        max_parallel: How many worker sessions run at once.
        max_rework_rounds: Rework prompts a task may get before it fails.
        max_plan_attempts: Planner prompts (first try included) before planning fails.
        approve_plan: Pause for a human to approve, edit or reject the plan.
        review: Ask the reviewer agent for a verdict (checks always run).
        verify_integration: After the merges, run every merged task's checks
            again on the integration branch, where the tasks' work meets.
        check_timeout: Seconds one acceptance check may run.
        turn_timeout: Seconds one prompt's run may take before it is aborted.
        stall_timeout: Seconds without any event from a running session before
            it is aborted and prompted to continue.
        max_stall_retries: How often a stalled session is prompted again
            before its task fails.
        task_token_budget: Tokens one task may use (0: no limit).
        run_cost_budget: Dollars the whole run may spend (0: no limit).
        allow_permissions: ``permission:pattern`` globs answered "once" without
            asking (e.g. ``"bash:git *"``).
        deny_permissions: ``permission:pattern`` globs rejected without asking.
        unmatched_permissions: What to do with a permission request that no
            rule matches: ask a human (an interrupt), allow, or deny.
        diff_chars: The most diff characters shown to the reviewer.
    """

    server_url: str = ""
    server_urls: list[str] = field(default_factory=list)
    embedded: bool = False
    embedded_linger: float = 300.0
    server_lost_after: float = 60.0
    password_env: str = "OPENCODE_SERVER_PASSWORD"
    password_envs: dict[str, str] = field(default_factory=dict)
    planner_model: str = ""
    worker_model: str = ""
    reviewer_model: str = ""
    max_parallel: int = 4
    max_rework_rounds: int = 2
    max_plan_attempts: int = 3
    approve_plan: bool = False
    review: bool = True
    verify_integration: bool = True
    check_timeout: float = 600.0
    turn_timeout: float = 3600.0
    stall_timeout: float = 600.0
    max_stall_retries: int = 1
    task_token_budget: int = 0
    run_cost_budget: float = 0.0
    allow_permissions: list[str] = field(default_factory=list)
    deny_permissions: list[str] = field(default_factory=list)
    unmatched_permissions: PermissionDecision = "ask"
    diff_chars: int = 40_000

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every setting.

        Raises:
            ConfigurationError: Listing each setting of the wrong type or out of range.
        """
        problems = _type_problems(self)
        if problems:  # the range checks below assume the types are right
            raise _invalid(problems)
        positive = {
            "max_parallel": self.max_parallel,
            "max_plan_attempts": self.max_plan_attempts,
            "check_timeout": self.check_timeout,
            "turn_timeout": self.turn_timeout,
            "stall_timeout": self.stall_timeout,
            "embedded_linger": self.embedded_linger,
            "server_lost_after": self.server_lost_after,
            "diff_chars": self.diff_chars,
        }
        problems += [
            f"{name} must be greater than 0, got {value}"
            for name, value in positive.items()
            if value <= 0
        ]
        not_negative = {
            "max_rework_rounds": self.max_rework_rounds,
            "max_stall_retries": self.max_stall_retries,
            "task_token_budget": self.task_token_budget,
            "run_cost_budget": self.run_cost_budget,
        }
        problems += [
            f"{name} must not be negative, got {value}"
            for name, value in not_negative.items()
            if value < 0
        ]
        if self.unmatched_permissions not in ("allow", "deny", "ask"):
            problems.append(
                "unmatched_permissions must be 'allow', 'deny' or 'ask', "
                f"got {self.unmatched_permissions!r}"
            )
        for name in ("planner_model", "worker_model", "reviewer_model"):
            value = getattr(self, name)
            if value:
                try:
                    split_model(value, field=name)
                except ConfigurationError as exc:
                    problems.append(str(exc))
        for name in ("allow_permissions", "deny_permissions"):
            problems += [
                f"{name}: {problem}"
                for rule in getattr(self, name)
                if (problem := permission_rule_problem(rule))
            ]
        problems += self._server_problems()
        if problems:
            raise _invalid(problems)

    def servers(self) -> list[str]:
        """The names of the run's servers, primary first: ``server_url``, then ``server_urls``.

        A server's name is its URL (trailing slash dropped), except the run's
        embedded server's, which is :data:`EMBEDDED`. Repeats are left out.
        """
        found: list[str] = []
        for url in [self.server_url, *self.server_urls]:
            url = url.rstrip("/")
            name = EMBEDDED if self.embedded and url == self.server_url.rstrip("/") else url
            if name and name not in found:
                found.append(name)
        return found

    def url_of(self, name: str) -> str:
        """The URL of the server named ``name`` (see :meth:`servers`)."""
        if name == EMBEDDED and self.embedded:
            return self.server_url.rstrip("/")
        return name.rstrip("/")

    def password_env_for(self, url: str) -> str:
        """The environment variable that holds ``url``'s password."""
        url = url.rstrip("/")
        for key, name in self.password_envs.items():
            if key.rstrip("/") == url:
                return name
        return self.password_env

    def password_env_names(self) -> set[str]:
        """Every environment variable named as holding a server's password.

        Check commands must see none of them: a model wrote them.
        """
        return {self.password_env, *self.password_envs.values()}

    def _server_problems(self) -> list[str]:
        problems: list[str] = []
        if any(not url for url in self.server_urls):
            problems.append("server_urls entries must not be empty")
        for url in [self.server_url, *self.server_urls]:
            if not url:
                continue
            try:
                parsed = urlsplit(url)
            except ValueError:
                problems.append(f"server URLs look like 'http://host:port', got {url!r}")
                continue
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                problems.append(f"server URLs look like 'http://host:port', got {url!r}")
            elif "@" in parsed.netloc:
                # Never echo the URL: its user part may hold a password.
                problems.append(
                    f"the server URL for host {parsed.hostname!r} holds credentials; give the "
                    "password through the environment variable named by password_env or "
                    "password_envs instead"
                )
        problems += [
            f"password_envs[{url!r}] must name an environment variable, got {name!r}"
            for url, name in self.password_envs.items()
            if not name or "=" in name
        ]
        if not self.password_env or "=" in self.password_env:
            problems.append(
                f"password_env must name an environment variable, got {self.password_env!r}"
            )
        return problems

    def decide_permission(self, permission: str, patterns: list[str]) -> PermissionDecision:
        """Decide a permission request by the allow and deny rules.

        Deny rules win over allow rules; a request with several patterns is
        allowed only if every pattern is allowed.
        """
        subjects = [f"{permission}:{pattern}" for pattern in patterns] or [f"{permission}:"]

        def matches(rules: list[str], subject: str) -> bool:
            return any(fnmatch.fnmatchcase(subject, rule) for rule in rules)

        if any(matches(self.deny_permissions, s) for s in subjects):
            return "deny"
        if all(matches(self.allow_permissions, s) for s in subjects):
            return "allow"
        return self.unmatched_permissions


_KINDS: dict[str, str] = {
    "str": "a string",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "list[str]": "a list of strings",
    "dict[str, str]": "a mapping of strings to strings",
    "PermissionDecision": "a string",
}
"""What each annotation of :class:`RunSettings` wants, in words."""


def permission_rule_problem(rule: str) -> str | None:
    """What is wrong with an allow or deny rule (``permission:pattern``), if anything."""
    permission, colon, pattern = rule.partition(":")
    if not colon:
        return f"{rule!r} is not PERMISSION:PATTERN (e.g. 'bash:git *' or 'edit:*')"
    if not permission.strip() or not pattern.strip():
        part = "permission" if not permission.strip() else "pattern"
        return f"{rule!r} has an empty {part}: write PERMISSION:PATTERN (e.g. 'bash:git *')"
    if _unclosed_bracket(rule):
        return (
            f"{rule!r} has a '[' without its ']': close the set (e.g. '[abc]'), or write a "
            "literal '[' as '[[]'"
        )
    return None


def _unclosed_bracket(pattern: str) -> bool:
    """Whether a ``[`` opens a set that never closes (``fnmatch`` would match it literally)."""
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] == "[":
            j = i + 1
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                return True
            i = j
        i += 1
    return False


def _invalid(problems: list[str]) -> ConfigurationError:
    if len(problems) == 1:
        return ConfigurationError(f"invalid run settings: {problems[0]}")
    return ConfigurationError("invalid run settings:\n- " + "\n- ".join(problems))


def _fits(kind: str, value: Any) -> bool:
    if kind in ("str", "PermissionDecision"):
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        )
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "list[str]":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if kind == "dict[str, str]":
        return isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        )
    raise AssertionError(f"RunSettings has a field of unchecked type {kind}")


def _type_problems(settings: RunSettings) -> list[str]:
    """One message per setting whose value is not of the field's type."""
    problems = []
    for item in fields(settings):
        kind = str(item.type)
        value = getattr(settings, item.name)
        if not _fits(kind, value):
            shown = repr(value)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            problems.append(
                f"{item.name} must be {_KINDS[kind]}, got {shown} ({type(value).__name__})"
            )
    return problems
