"""Every exception langgraph-opencode raises.

The hierarchy separates three kinds of failure, because each asks for a
different reaction:

* the user configured something wrong: fix the input, retrying will not help;
* a remote part (the OpenCode server, the network) failed: often retryable;
* the model misbehaved: retry the model with the error (see ``PromptOutcome``,
  which reports model failures as values rather than exceptions).

```
LangGraphOpenCodeError
├── ConfigurationError ............ the caller's input or environment is wrong
│   ├── BinaryNotFoundError ....... no `opencode` executable could be found
│   ├── DirectoryNotFoundError .... a session directory that does not exist
│   ├── PlanError ................. a plan is malformed or breaks a plan rule
│   └── RunHeldError .............. another orchestrator drives the run now
├── GitError ...................... a git command failed, or git work was refused
│   ├── GitTimeoutError ........... a git command did not finish in time and was stopped
│   ├── MergeConflict ............. a merge stopped on conflicting paths
│   └── RefreshAborted ............ a refresh merge was undone before it was finished
└── OpenCodeError ................. talking to an OpenCode server failed
    ├── OpenCodeConnectionError ... the server could not be reached (retryable)
    │   └── OpenCodeTimeoutError .. it did not answer in time (retryable)
    ├── OpenCodeHTTPError ......... the server answered with an error status
    │   ├── BadRequestError ....... 400
    │   ├── AuthenticationError ... 401: wrong or missing password
    │   ├── NotFoundError ......... 404
    │   ├── ConflictError ......... 409: e.g. the session is busy
    │   └── ServerError ........... 5xx (retryable)
    ├── EventStreamError .......... the event stream could not be (re)opened
    └── ServerStartError .......... an embedded `opencode serve` did not start
```

Messages never contain secrets: passwords and provider keys are not part of
any request description kept here.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "BinaryNotFoundError",
    "ConfigurationError",
    "ConflictError",
    "DirectoryNotFoundError",
    "EventStreamError",
    "GitError",
    "GitTimeoutError",
    "LangGraphOpenCodeError",
    "MergeConflict",
    "NotFoundError",
    "OpenCodeConnectionError",
    "OpenCodeError",
    "OpenCodeHTTPError",
    "OpenCodeTimeoutError",
    "PlanError",
    "RefreshAborted",
    "RunHeldError",
    "ServerError",
    "ServerStartError",
    "error_for_status",
]


class LangGraphOpenCodeError(Exception):
    """Base class of every error raised by langgraph-opencode."""


class ConfigurationError(LangGraphOpenCodeError, ValueError):
    """The caller's input or environment is wrong; retrying will not help."""


class BinaryNotFoundError(ConfigurationError):
    """No `opencode` executable was found where it was looked for."""


class DirectoryNotFoundError(ConfigurationError):
    """A directory given for an OpenCode session does not exist."""


class GitError(LangGraphOpenCodeError):
    """A git command failed, or an operation was refused to protect work.

    Attributes:
        command: The git command line that failed or was refused (empty when
            the refusal came before any command ran).
        stderr: What git wrote to stderr, truncated; empty for a refusal.
    """

    def __init__(self, message: str, *, command: tuple[str, ...] = (), stderr: str = ""):
        super().__init__(message)
        self.command = command
        self.stderr = stderr


class GitTimeoutError(GitError):
    """A git command ran past its time limit; it and everything it started were stopped.

    Attributes:
        cwd: The directory the command ran in.
        timeout: The limit, in seconds.
    """

    def __init__(self, message: str, *, command: tuple[str, ...], cwd: str, timeout: float):
        super().__init__(message, command=command)
        self.cwd = cwd
        self.timeout = timeout


class MergeConflict(GitError):
    """A merge stopped because the same lines changed on both sides.

    Attributes:
        paths: The conflicting paths, relative to the repository root.
    """

    def __init__(
        self,
        message: str,
        *,
        paths: tuple[str, ...],
        command: tuple[str, ...] = (),
        stderr: str = "",
    ):
        super().__init__(message, command=command, stderr=stderr)
        self.paths = paths


class RefreshAborted(GitError):
    """A refresh merge (integration into a task) was undone before it was committed.

    Someone ran ``git merge --abort`` (or switched branches) in the task's
    worktree while its conflicts waited to be resolved: start the refresh again.
    """


class PlanError(ConfigurationError):
    """A plan is malformed or breaks a plan rule.

    Raised for a plan file or object given by the caller, and for a planner's
    plan that is still invalid after its retries. Every problem found is
    listed, not just the first.

    Attributes:
        problems: One precise, actionable message per problem, in a stable
            order; this is the text sent back to a planner model to fix.
        source: Where the plan came from (a file path), if known.
    """

    def __init__(self, problems: list[str], *, source: str | None = None):
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        count = len(self.problems)
        header = f"invalid plan{where}: {count} problem{'' if count == 1 else 's'}"
        super().__init__("\n".join([header, *(f"- {problem}" for problem in self.problems)]))


class RunHeldError(ConfigurationError):
    """Another orchestrator process drives the run now (it holds the run's lock).

    Attributes:
        holder: What the holder says about itself (``pid``, ``host``, ``since``).
    """

    def __init__(self, message: str, holder: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.holder = dict(holder or {})


class OpenCodeError(LangGraphOpenCodeError):
    """Talking to an OpenCode server failed."""

    retryable: bool = False


class OpenCodeConnectionError(OpenCodeError):
    """The server could not be reached, or the connection broke."""

    retryable = True


class OpenCodeTimeoutError(OpenCodeConnectionError):
    """The server did not answer within the configured timeout."""


class OpenCodeHTTPError(OpenCodeError):
    """The server answered with an error status.

    Attributes:
        status_code: The HTTP status the server answered with.
        method: The request method.
        path: The request path, without the query string or credentials.
        detail: The server's own explanation, truncated.
    """

    def __init__(self, message: str, *, status_code: int, method: str, path: str, detail: str):
        super().__init__(message)
        self.status_code = status_code
        self.method = method
        self.path = path
        self.detail = detail


class BadRequestError(OpenCodeHTTPError):
    """400: the server rejected the request body or parameters."""


class AuthenticationError(OpenCodeHTTPError):
    """401: the server wants a password and the one given is wrong or missing."""


class NotFoundError(OpenCodeHTTPError):
    """404: no such session, message, permission request or route."""


class ConflictError(OpenCodeHTTPError):
    """409: the request conflicts with the server's state (e.g. session busy)."""


class ServerError(OpenCodeHTTPError):
    """5xx: the server failed; the request may be retried if it is safe to."""

    retryable = True


class EventStreamError(OpenCodeError):
    """The server's event stream could not be opened or reopened."""


class ServerStartError(OpenCodeError):
    """An embedded `opencode serve` exited or did not become healthy."""


_BY_STATUS: dict[int, type[OpenCodeHTTPError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
}

_HINTS: dict[type[OpenCodeHTTPError], str] = {
    AuthenticationError: (
        "the server requires HTTP Basic auth: pass the right password "
        "(password=... or the OPENCODE_SERVER_PASSWORD environment variable)"
    ),
}


def error_for_status(status_code: int, *, method: str, path: str, detail: str) -> OpenCodeHTTPError:
    """Return the exception that stands for an HTTP error status.

    This is the one place where status codes are mapped to exception classes.

    Args:
        status_code: The HTTP status (>= 400).
        method: The request method.
        path: The request path, without query string or credentials.
        detail: The response body or the server's message; it is truncated.
    """
    cls = ServerError if status_code >= 500 else _BY_STATUS.get(status_code, OpenCodeHTTPError)
    detail = detail.strip()
    if len(detail) > 500:
        detail = detail[:500] + "…"
    message = f"OpenCode server answered {status_code} to {method} {path}"
    hint = _HINTS.get(cls)
    if hint:
        message += f": {hint}"
    elif detail:
        message += f": {detail}"
    return cls(message, status_code=status_code, method=method, path=path, detail=detail)
