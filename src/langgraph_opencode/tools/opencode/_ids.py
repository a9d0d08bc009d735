"""Identifiers in OpenCode's own ascending format.

OpenCode orders messages by id. Its ids are a prefix, 12 hex digits of
``milliseconds * 4096 + counter`` (the low 48 bits) and 14 random base62
characters. Making our own ids in the same format lets the orchestrator decide
a prompt's message id *before* sending it, so a resumed run can ask the server
whether that exact prompt already arrived instead of sending it twice.
"""

from __future__ import annotations

import secrets
import string
import threading
import time

_ALPHABET = string.digits + string.ascii_letters
_lock = threading.Lock()
_last_ms = 0
_counter = 0


def ascending_id(prefix: str) -> str:
    """Return a new id such as ``msg_20af4e8d2001t00dC6khNNzVaq``.

    Args:
        prefix: The kind of object, e.g. ``"msg"``.
    """
    global _last_ms, _counter
    with _lock:
        now = int(time.time() * 1000)
        if now != _last_ms:
            _last_ms, _counter = now, 0
        _counter += 1
        value = now * 0x1000 + _counter
    stamp = f"{value & 0xFFFFFFFFFFFF:012x}"
    tail = "".join(secrets.choice(_ALPHABET) for _ in range(14))
    return f"{prefix}_{stamp}{tail}"
