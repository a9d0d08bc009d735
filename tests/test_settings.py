"""Run settings: validation that lists every problem, and the permission policy."""

from __future__ import annotations

import pytest

from langgraph_opencode import ConfigurationError, RunSettings


def test_defaults_are_valid() -> None:
    settings = RunSettings()
    assert settings.max_parallel == 4
    assert settings.unmatched_permissions == "ask"


def test_every_bad_setting_is_named_at_once() -> None:
    with pytest.raises(ConfigurationError) as info:
        RunSettings(
            max_parallel=0,
            max_rework_rounds=-1,
            stall_timeout=0,
            run_cost_budget=-5,
            worker_model="just-a-name",
            allow_permissions=["bash"],
            unmatched_permissions="maybe",  # type: ignore[arg-type]
        )
    message = str(info.value)
    for name in (
        "max_parallel must be greater than 0, got 0",
        "max_rework_rounds must not be negative, got -1",
        "stall_timeout must be greater than 0",
        "run_cost_budget must not be negative",
        "worker_model must be written 'provider/model'",
        "allow_permissions: 'bash' is not PERMISSION:PATTERN",
        "unmatched_permissions must be 'allow', 'deny' or 'ask'",
    ):
        assert name in message


@pytest.mark.parametrize(
    ("permission", "patterns", "expected"),
    [
        ("bash", ["git status"], "allow"),
        ("bash", ["git push origin main"], "deny"),
        ("bash", ["rm -rf build"], "ask"),
        ("bash", ["git status", "rm -rf build"], "ask"),  # every pattern must be allowed
        ("edit", ["src/app.py"], "allow"),
        ("external_directory", ["/etc/*"], "deny"),
    ],
)
def test_permission_policy(permission: str, patterns: list[str], expected: str) -> None:
    settings = RunSettings(
        allow_permissions=["bash:git *", "edit:*"],
        deny_permissions=["bash:git push*", "external_directory:*"],
    )
    assert settings.decide_permission(permission, patterns) == expected


def test_unmatched_permissions_can_be_decided_without_a_person() -> None:
    assert RunSettings(unmatched_permissions="deny").decide_permission("bash", ["ls"]) == "deny"
    assert RunSettings(unmatched_permissions="allow").decide_permission("bash", ["ls"]) == "allow"
