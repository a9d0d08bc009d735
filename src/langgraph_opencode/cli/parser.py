"""The command line's arguments: ``run``, ``resume``, ``status``, ``runs``, ``demo``."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import NoReturn

from langgraph_opencode import __version__
from langgraph_opencode.core.settings import permission_rule_problem

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PAUSED",
    "EXIT_USAGE",
    "SETTING_FLAGS",
    "build_parser",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PAUSED = 3
EXIT_INTERRUPTED = 130

EPILOG = """\
exit codes:
  0    the run finished and every task was merged
  1    some tasks failed or were blocked, or the run failed
  2    usage or configuration error (nothing was started)
  3    the run is paused, waiting for an answer (plan approval, a permission request):
       answer with `langgraph-opencode resume RUN_ID --answer ...`
  130  interrupted (Ctrl-C); continue with `langgraph-opencode resume RUN_ID`

The OpenCode servers' passwords are read from the environment variables named by
--password-env (default OPENCODE_SERVER_PASSWORD) and --server-password-env, never
from the command line.
Without --server, an embedded `opencode serve` is started with your own OpenCode
config and provider credentials.
"""

SETTING_FLAGS = (
    "server",
    "password_env",
    "server_password_env",
    "model",
    "embedded_linger",
    "server_lost_after",
    "planner_model",
    "worker_model",
    "reviewer_model",
    "max_parallel",
    "max_rework_rounds",
    "check_timeout",
    "turn_timeout",
    "stall_timeout",
    "task_token_budget",
    "run_cost_budget",
    "allow",
    "deny",
    "unmatched",
    "approve_plan",
)
"""Flags that are not checkpointed (run settings): a resume needs them again."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error of the command line."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


def _number(
    convert: Callable[[str], float], *, what: str, positive: bool
) -> Callable[[str], float]:
    """An argparse type: a finite number, greater than 0 or at least 0."""
    bound = "greater than 0" if positive else "0 or more (0: no limit)"

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            value = math.nan
        if math.isnan(value) or math.isinf(value) or value < 0 or (positive and value == 0):
            raise argparse.ArgumentTypeError(f"wants {what} {bound}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


_SECONDS = _number(float, what="seconds", positive=True)
_TOKENS = _number(int, what="a whole number of tokens", positive=False)
_DOLLARS = _number(float, what="dollars", positive=False)


def _permission_rule(value: str) -> str:
    problem = permission_rule_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def _server_password_env(value: str) -> str:
    url, _, name = value.rpartition("=")
    if not url or not name:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not URL=NAME (e.g. 'http://host2:4096=HOST2_PASSWORD')"
        )
    return value


def _connection_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("server and models")
    group.add_argument(
        "--repo", default=".", help="the git repository (any directory inside it; default: .)"
    )
    group.add_argument(
        "--server",
        metavar="URL",
        action="append",
        help="an OpenCode server to use; repeat it to spread the sessions over several "
        "(the first is the primary; all must see the repository at the same path) "
        "(default: start an embedded `opencode serve`)",
    )
    group.add_argument(
        "--password-env",
        metavar="NAME",
        default="OPENCODE_SERVER_PASSWORD",
        help="environment variable holding the servers' password (default: %(default)s)",
    )
    group.add_argument(
        "--server-password-env",
        metavar="URL=NAME",
        action="append",
        default=[],
        type=_server_password_env,
        help="environment variable holding one server's password, if not --password-env "
        "(repeatable)",
    )
    group.add_argument(
        "--model",
        metavar="PROVIDER/MODEL",
        help="the embedded server's default model",
    )
    group.add_argument(
        "--embedded-linger",
        type=float,
        metavar="SECONDS",
        help="how long the embedded server keeps running once no command drives the run "
        "(after Ctrl-C, a crash or a pause), so a resume finds its turns (default: 300)",
    )
    group.add_argument(
        "--server-lost-after",
        type=_SECONDS,
        metavar="SECONDS",
        help="how long a --server may go without answering, its port closed too, before its "
        "sessions are moved to another server (default: 60; the embedded server is gone only "
        "when its process is)",
    )
    for role in ("planner", "worker", "reviewer"):
        group.add_argument(f"--{role}-model", metavar="PROVIDER/MODEL", help=f"the {role}'s model")


def _setting_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("run settings")
    group.add_argument(
        "--max-parallel", type=int, metavar="N", help="worker sessions at once (default: 4)"
    )
    group.add_argument(
        "--max-rework-rounds",
        type=int,
        metavar="N",
        help="rework prompts a task may get before it fails (default: 2)",
    )
    group.add_argument(
        "--check-timeout",
        type=_SECONDS,
        metavar="SECONDS",
        help="how long one acceptance check may run (default: 600)",
    )
    group.add_argument(
        "--turn-timeout",
        type=_SECONDS,
        metavar="SECONDS",
        help="how long one prompt's run may take before it is aborted (default: 3600)",
    )
    group.add_argument(
        "--stall-timeout",
        type=_SECONDS,
        metavar="SECONDS",
        help="how long a running session may go without any event before it is aborted "
        "and prompted to continue (default: 600)",
    )
    group.add_argument(
        "--task-token-budget",
        type=_TOKENS,
        metavar="TOKENS",
        help="tokens one task may use (default: 0, no limit)",
    )
    group.add_argument(
        "--run-cost-budget",
        type=_DOLLARS,
        metavar="DOLLARS",
        help="dollars the whole run may spend (default: 0, no limit)",
    )
    group.add_argument(
        "--allow",
        action="append",
        default=[],
        type=_permission_rule,
        metavar="PERM:PATTERN",
        help="answer matching permission requests 'once' (repeatable), e.g. 'bash:git *'",
    )
    group.add_argument(
        "--deny",
        action="append",
        default=[],
        type=_permission_rule,
        metavar="PERM:PATTERN",
        help="reject matching permission requests (repeatable; wins over --allow)",
    )
    group.add_argument(
        "--unmatched",
        choices=("ask", "allow", "deny"),
        help="permission requests no rule matches: ask (default), allow or deny "
        "(with --yes: deny unless given)",
    )
    group.add_argument(
        "--approve-plan", action="store_true", help="pause for you to approve the plan"
    )
    group.add_argument(
        "--yes",
        action="store_true",
        help="unattended: approve the plan, decide unmatched permissions by --unmatched",
    )
    group.add_argument(
        "--json",
        action="store_true",
        help="print only the final report as JSON on stdout (progress goes to stderr)",
    )
    group.add_argument(
        "--abort-on-interrupt",
        action="store_true",
        help="on Ctrl-C, abort the run's running sessions (default: leave them to finish)",
    )


def _output_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output for scripts")
    group.add_argument(
        "--events",
        metavar="FILE",
        help="write each progress event as a JSON line to FILE as it happens ('-': stderr; "
        "with --json the progress lines are then left out)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``langgraph-opencode`` argument parser."""
    parser = _Parser(
        prog="langgraph-opencode",
        description="Run coding objectives through OpenCode sessions under a LangGraph graph.",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run an objective: plan, work in parallel, review, merge",
        description="Run an objective on a repository. Your branch, index and working tree "
        "are never touched: the work lands on the run's integration branch.",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    run.add_argument(
        "objective",
        metavar="OBJECTIVE",
        nargs="?",
        help="what the run should achieve (or give --objective-file)",
    )
    run.add_argument(
        "--objective-file",
        metavar="PATH",
        help="read the objective from a UTF-8 file ('-': from stdin), for objectives too long "
        "for the command line",
    )
    _connection_flags(run)
    _setting_flags(run)
    _output_flags(run)
    plan = run.add_argument_group("plan")
    plan.add_argument(
        "--plan", metavar="FILE", help="a YAML or JSON plan to use (skips the planner)"
    )
    plan.add_argument("--run-id", metavar="ID", help="the run's id (default: a new one)")

    resume = commands.add_parser(
        "resume",
        help="continue a run after a crash, Ctrl-C or a pause",
        description="Continue a run from its last checkpoint. Run settings are not "
        "checkpointed: give the same server, model and setting flags as the run.",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    resume.add_argument("run_id", metavar="RUN_ID")
    _connection_flags(resume)
    _setting_flags(resume)
    _output_flags(resume)
    resume.add_argument(
        "--answer",
        metavar="JSON_OR_WORD",
        help="the answer to the pause: plan approval 'approve', "
        '\'{"action": "reject", "feedback": "..."}\'; permissions \'once\', \'always\', '
        "'reject' or a JSON object per request id",
    )

    status = commands.add_parser(
        "status",
        help="show a run: its report if finished, else its tasks",
        description="Show a run's report if it finished, else its checkpointed tasks.",
    )
    status.add_argument("run_id", metavar="RUN_ID", nargs="?", help="default: the latest run")
    status.add_argument("--repo", default=".", help="the git repository (default: .)")
    status.add_argument("--json", action="store_true", help="print the report as JSON")

    runs = commands.add_parser(
        "runs",
        help="list the runs of a repository",
        description="List the runs checkpointed in a repository, newest first.",
    )
    runs.add_argument("--repo", default=".", help="the git repository (default: .)")

    commands.add_parser(
        "demo",
        help="offline demo: a real orchestration with a scripted model, no provider key needed",
        description=(
            "Make a sample repository in a temporary directory and run a real orchestration "
            "on it, with an embedded `opencode serve` backed by the scripted model: planning, "
            "parallel workers in their own worktrees, a rework round, review and merging."
        ),
    )
    return parser
