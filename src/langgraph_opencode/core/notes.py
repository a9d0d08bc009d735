"""Notable events of a run: one record shape for every part that makes them."""

from __future__ import annotations

import time
from typing import Any

__all__ = ["note"]


def note(kind: str, message: str, **data: Any) -> dict[str, Any]:
    """An event record: ``{time, kind, message, ...}`` (``task``, ``server``, ... as given)."""
    return {"time": time.time(), "kind": kind, "message": message, **data}
