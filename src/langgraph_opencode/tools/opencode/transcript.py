"""One turn's answers as its events and read-backs tell them.

A turn's end is judged from its last assistant message (``runs.judge_turn``).
The server's events carry everything that judgment needs: every assistant
``message.updated`` holds the message's whole ``info`` (finish, completion,
error, tokens, cost, the structured answer), and a text part's last
``message.part.updated`` holds its whole text. A :class:`Transcript` keeps
them, so a turn whose final answer its events have shown is judged without
reading its messages back at the end, when a busy server answers reads
slowest.

It is only as complete as what fed it: the events of a subscription opened
before the prompt was sent, or those of a later one plus a read-back of the
session made after that subscription was opened (:meth:`Transcript.seed`).
Events queued before a read-back can be older than it; a message the server
marked completed, or a text part it marked ended, is never replaced by an
older version of itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph_opencode.tools.opencode.models import (
    Event,
    Message,
    MessageInfo,
    Part,
    TokenUsage,
)

__all__ = ["Transcript"]


def _ended(part: Part) -> bool:
    """Whether a text part's text is whole."""
    return "end" in (part.time or {})


class Transcript:
    """The assistant messages answering one prompt, with their text parts."""

    def __init__(self, session_id: str, user_message_id: str) -> None:
        self.session_id = session_id
        self.user_message_id = user_message_id
        self._infos: dict[str, MessageInfo] = {}
        self._texts: dict[str, dict[str, Part]] = {}

    def _take_info(self, info: MessageInfo) -> None:
        if info.role != "assistant" or info.parent_id != self.user_message_id:
            return
        known = self._infos.get(info.id)
        if known is None or info.completed or not known.completed:
            self._infos[info.id] = info

    def _take_part(self, part: Part) -> None:
        if part.type != "text" or part.message_id is None:
            return
        parts = self._texts.setdefault(part.message_id, {})
        known = parts.get(part.id)
        if known is None or _ended(part) or not _ended(known):
            parts[part.id] = part

    def observe(self, ev: Event) -> None:
        """Take one of the session's events (others are left alone)."""
        if ev.session_id != self.session_id:
            return
        props: dict[str, Any] = ev.properties
        if ev.type == "message.updated" and isinstance(props.get("info"), dict):
            self._take_info(MessageInfo.model_validate(props["info"]))
        elif ev.type == "message.part.updated" and isinstance(props.get("part"), dict):
            part = props["part"]
            if part.get("type") == "text":
                self._take_part(Part.model_validate(part))

    def seed(self, messages: Sequence[Message]) -> None:
        """Take the session's messages as read back from the server."""
        for message in messages:
            self._take_info(message.info)
            if message.info.id in self._infos:
                for part in message.parts:
                    self._take_part(part.model_copy(update={"message_id": message.info.id}))

    @property
    def answers(self) -> list[Message]:
        """The assistant messages so far, oldest first (server ids sort by time)."""
        return [
            Message(
                info=self._infos[mid],
                parts=[part for _, part in sorted((self._texts.get(mid) or {}).items())],
            )
            for mid in sorted(self._infos)
        ]

    def usage(self) -> tuple[TokenUsage, float]:
        """The turn's tokens and cost as far as known."""
        tokens = TokenUsage()
        for info in self._infos.values():
            tokens = tokens + info.tokens
        return tokens, sum(info.cost for info in self._infos.values())
