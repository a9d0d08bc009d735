"""Where runs are checkpointed: a repository's SQLite file, or a database named by URL.

By default each repository keeps its runs in
``.git/langgraph-opencode/checkpoints.sqlite``. A URL (argument, or the
``LANGGRAPH_OPENCODE_CHECKPOINTS`` environment variable) selects another store:

- ``postgresql://user:password@host:port/db`` (or ``postgres://``): PostgreSQL,
  through ``langgraph-checkpoint-postgres`` (``pip install
  'langgraph-opencode[postgres]'``); its tables are created on first use.
- ``sqlite:///path/to/file.sqlite`` or a plain path: that SQLite file.

A URL may hold a password, so it is never shown: errors name the store with
the password removed.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from langgraph_opencode.errors import ConfigurationError
from langgraph_opencode.tools.git import Repo

__all__ = [
    "CHECKPOINTS_ENV_VAR",
    "PAGE_SIZE",
    "RunSqliteSaver",
    "checkpoint_path",
    "describe_store",
    "is_shared_store",
    "open_checkpointer",
    "run_ids",
]

CHECKPOINTS_ENV_VAR = "LANGGRAPH_OPENCODE_CHECKPOINTS"
"""Environment variable with the checkpoint store's URL (default: the repository's file)."""

_POSTGRES_SCHEMES = ("postgresql", "postgres")


PAGE_SIZE = 2048
"""The page size of a new checkpoint file. A checkpoint row (about 2 KB here) in
SQLite's default 4 KiB pages leaves most of a page empty when the next row
does not fit; in 2 KiB pages (its overflow filling whole pages) the file is
about 15 % smaller."""


class RunSqliteSaver(AsyncSqliteSaver):
    """The SQLite saver, with shorter channel versions.

    LangGraph's SQLite saver makes each version a counter of 32 digits and a
    random fraction (``00…042.0.5183…``, 50 characters). Every checkpoint holds
    one per channel and one per channel each node has seen: about 2.7 KB a
    step for this graph. The fraction keeps forks apart where versions key
    stored values (PostgreSQL's blobs); this file has no such table, so the
    counter alone is written. It keeps its 32 digits, so that versions sort as
    LangGraph's do: a run goes on under either saver (a LangGraph user's
    ``AsyncSqliteSaver`` on the same file, or an earlier version of this
    package) and every version still compares right.
    """

    @classmethod
    @contextlib.asynccontextmanager
    async def from_conn_string(cls, conn_string: str) -> AsyncIterator[AsyncSqliteSaver]:
        """Open the file; a new one gets pages of :data:`PAGE_SIZE` bytes."""
        async with super().from_conn_string(conn_string) as saver:
            # Only a file without tables yet takes a page size (and before WAL).
            await saver.conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            yield saver

    def get_next_version(self, current: str | int | None, channel: None) -> str:
        """The version after ``current``: the next count, 32 digits, without the fraction."""
        if current is None:
            count = 0
        elif isinstance(current, int):
            count = current
        else:
            count = int(current.split(".")[0])
        return f"{count + 1:032}"


def checkpoint_path(repo: Repo) -> Path:
    """Where a repository's runs are checkpointed by default."""
    return repo.common_dir / "langgraph-opencode" / "checkpoints.sqlite"


def describe_store(url: str) -> str:
    """``url`` with any password removed, fit for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:***@{host}" if parts.username else f"***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def _store_url(url: str | None) -> str:
    return (url if url is not None else os.environ.get(CHECKPOINTS_ENV_VAR, "")).strip()


def is_shared_store(url: str | None) -> bool:
    """Whether ``url`` (or the environment's) names a store other than the repository's file."""
    return bool(_store_url(url))


@contextlib.asynccontextmanager
async def open_checkpointer(
    repo: Repo, url: str | None = None
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """Open the checkpoint store: ``url``, else ``$LANGGRAPH_OPENCODE_CHECKPOINTS``, else the file.

    Raises:
        ConfigurationError: The URL's scheme is unknown, its driver is not
            installed, or the database cannot be reached (password not shown).
    """
    url = _store_url(url)
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme in _POSTGRES_SCHEMES:
        async with _postgres(url) as saver:
            yield saver
        return
    if scheme not in ("", "sqlite"):
        raise ConfigurationError(
            f"unknown checkpoint store {describe_store(url)!r}: use postgresql://…, "
            "sqlite:///path, or a file path"
        )
    path = _sqlite_path(repo, url)
    async with contextlib.AsyncExitStack() as stack:
        try:
            sqlite: AsyncSqliteSaver = await stack.enter_async_context(
                RunSqliteSaver.from_conn_string(str(path))
            )
            await sqlite.setup()
        except sqlite3.Error as exc:
            raise _unusable(path, str(exc)) from None
        yield sqlite


def _unusable(path: Path, reason: str) -> ConfigurationError:
    return ConfigurationError(
        f"cannot write the checkpoint file {path}: {reason}; name a file in a writable "
        f"directory (in {CHECKPOINTS_ENV_VAR}, or unset it to use the repository's "
        ".git/langgraph-opencode/)"
    )


def _sqlite_path(repo: Repo, url: str) -> Path:
    """The SQLite file to open, checked: it can be created or written.

    The default file's directory (in the git directory) is made; a directory
    the user named must exist.
    """
    if not url:
        path = checkpoint_path(repo)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _unusable(path, exc.strerror or type(exc).__name__) from None
    elif url.lower().startswith("sqlite://"):
        path = Path(urlsplit(url).path)
    else:
        path = Path(url).expanduser()
    path = path.absolute()
    if path.is_dir():
        raise _unusable(path, "it is a directory")
    if not path.parent.is_dir():
        raise _unusable(path, f"the directory {path.parent} does not exist")
    if not os.access(path if path.exists() else path.parent, os.W_OK):
        where = "the file" if path.exists() else f"the directory {path.parent}"
        raise _unusable(path, f"{where} is not writable")
    return path


@contextlib.asynccontextmanager
async def _postgres(url: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    try:
        import psycopg
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    except ImportError:
        raise ConfigurationError(
            "PostgreSQL checkpoints need the postgres extra: "
            "pip install 'langgraph-opencode[postgres]'"
        ) from None
    password = urlsplit(url).password
    async with contextlib.AsyncExitStack() as stack:
        try:
            saver = await stack.enter_async_context(AsyncPostgresSaver.from_conn_string(url))
            await saver.setup()  # creates or migrates the tables
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            if password:
                reason = reason.replace(password, "***")
            raise ConfigurationError(
                f"cannot use the checkpoint database {describe_store(url)}: {reason}"
            ) from None
        yield saver


async def run_ids(saver: BaseCheckpointSaver[Any]) -> list[str]:
    """The run ids with a top-level checkpoint in a store that :func:`open_checkpointer` opened."""
    query = "SELECT DISTINCT thread_id FROM checkpoints WHERE checkpoint_ns = ''"
    if isinstance(saver, AsyncSqliteSaver):
        async with saver.conn.execute(query) as cursor:
            return [str(row[0]) async for row in cursor]
    # The only other store open_checkpointer opens: AsyncPostgresSaver (rows are dicts).
    async with saver.conn.cursor() as cursor:  # type: ignore[attr-defined]
        await cursor.execute(query)
        return [str(row["thread_id"]) for row in await cursor.fetchall()]
