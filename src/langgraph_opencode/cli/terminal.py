r"""Terminal-safe output: text from a user's file or a model never drives the terminal.

Objectives, plans, task ids and titles, reviewer feedback, failure reasons and
events may hold escape sequences (``ESC [2J`` clears the screen, ``ESC ]0;…``
sets the window title). :func:`printable` shows every control character but
newline and tab as a visible escape (``\x1b``), and :class:`TerminalConsole`
applies it to every string it renders, the cells of tables included. Rich's own
styling and cursor control are not strings and pass unchanged.
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.text import Text

__all__ = ["TerminalConsole", "printable"]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 controls but tab and newline, DEL, and the C1 controls (``\\x9b`` is a CSI too)."""


def printable(text: str) -> str:
    r"""``text`` with every control character but newline and tab shown as ``\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class TerminalConsole(Console):
    """A rich ``Console`` that renders every string through :func:`printable`."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        """Render ``text`` (markup and all) with its control characters made visible."""
        return super().render_str(printable(text), **kwargs)
