"""The script: steps (a matcher and a reply) and conversations (a step sequence).

Steps are tried first-match-in-order. A step is used once unless
``repeat=True``. A :class:`Conversation` binds to the first conversation (the
OpenCode session) its first step answers; its later steps then answer only
requests of that same session, in order. Parallel sessions with different
prompts therefore never take each other's steps, and two identical
conversations serve two sessions.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeAlias

from ._replies import Reply, ReplyLike, as_reply
from ._request import ChatRequest

TextMatcher: TypeAlias = str | re.Pattern[str]
"""A substring to look for, or a compiled regex to ``search`` with."""

Predicate: TypeAlias = Callable[[ChatRequest], bool]


def _text_matches(matcher: TextMatcher | None, text: str) -> bool:
    if matcher is None:
        return True
    if isinstance(matcher, re.Pattern):
        return matcher.search(text) is not None
    return matcher in text


def _describe_matcher(matcher: TextMatcher) -> str:
    return f"/{matcher.pattern}/" if isinstance(matcher, re.Pattern) else repr(matcher)


@dataclass(frozen=True, kw_only=True)
class Match:
    """Conditions on a request; every one given must hold.

    Attributes:
        system: The system prompt contains this (or the regex matches it).
            OpenCode agents have their own system prompts.
        user: The last user message contains this (or the regex matches it).
        tool: A tool of this name is offered (e.g. ``"StructuredOutput"``).
        after_tool: The last message is a tool result; a string requires a
            result of that tool, ``True`` any tool, ``False`` none.
        tool_result: A trailing tool result's content contains this (or the
            regex matches it).
        when: Any further predicate on the :class:`ChatRequest`.
    """

    system: TextMatcher | None = None
    user: TextMatcher | None = None
    tool: str | None = None
    after_tool: str | bool | None = None
    tool_result: TextMatcher | None = None
    when: Predicate | None = None

    def matches(self, request: ChatRequest) -> bool:
        """Whether ``request`` meets every condition."""
        if not _text_matches(self.system, request.system):
            return False
        if not _text_matches(self.user, request.last_user_text):
            return False
        if self.tool is not None and self.tool not in request.tools:
            return False
        results = request.tool_results
        if self.after_tool is True and not results:
            return False
        if self.after_tool is False and results:
            return False
        if isinstance(self.after_tool, str) and all(r.name != self.after_tool for r in results):
            return False
        if self.tool_result is not None and not any(
            _text_matches(self.tool_result, r.content) for r in results
        ):
            return False
        return self.when is None or bool(self.when(request))

    def describe(self) -> str:
        """Return the conditions as text."""
        parts = []
        if self.system is not None:
            parts.append(f"system~{_describe_matcher(self.system)}")
        if self.user is not None:
            parts.append(f"user~{_describe_matcher(self.user)}")
        if self.tool is not None:
            parts.append(f"tool={self.tool!r}")
        if self.after_tool is not None:
            parts.append(f"after_tool={self.after_tool!r}")
        if self.tool_result is not None:
            parts.append(f"tool_result~{_describe_matcher(self.tool_result)}")
        if self.when is not None:
            parts.append(f"when={getattr(self.when, '__name__', 'predicate')}")
        return ", ".join(parts) or "any request"


@dataclass(frozen=True, eq=False)
class Step:
    """A reply and the conditions under which it answers.

    Args:
        reply: What to answer: a :class:`Reply`, a single ``ToolCall`` or a
            string (plain text).
        system: The system prompt contains this (or the regex matches it).
        user: The last user message contains this (or the regex matches it).
        tool: A tool of this name is offered to the model.
        after_tool: The last message is a tool result (of this tool if a string;
            ``False``: it is not).
        tool_result: A trailing tool result's content contains this.
        when: Any further predicate on the :class:`ChatRequest`.
        repeat: Answer every matching request instead of only the first.
        name: Label used in records and error messages.
    """

    reply: Reply
    match: Match
    repeat: bool
    name: str | None

    def __init__(
        self,
        reply: ReplyLike | str,
        *,
        system: TextMatcher | None = None,
        user: TextMatcher | None = None,
        tool: str | None = None,
        after_tool: str | bool | None = None,
        tool_result: TextMatcher | None = None,
        when: Predicate | None = None,
        repeat: bool = False,
        name: str | None = None,
    ) -> None:
        match = Match(
            system=system,
            user=user,
            tool=tool,
            after_tool=after_tool,
            tool_result=tool_result,
            when=when,
        )
        object.__setattr__(self, "reply", as_reply(reply))
        object.__setattr__(self, "match", match)
        object.__setattr__(self, "repeat", repeat)
        object.__setattr__(self, "name", name)

    @property
    def label(self) -> str:
        """The name, or a description of the step."""
        if self.name:
            return self.name
        return f"{type(self.reply).__name__} when {self.match.describe()}"


@dataclass(frozen=True, eq=False)
class Conversation:
    """Steps answering one conversation (OpenCode session) in order.

    The first step's conditions (with the conversation's own) pick the
    session; each later step answers the next request of that session that
    meets its own conditions. A typical pair is a tool call, then final text
    once the tool result comes back.

    Args:
        *steps: Replies or :class:`Step` objects, in order. A bare reply
            answers any request of the session.
        system: The system prompt contains this (checked for every step).
        user: The last user message of the first request contains this.
        tool: A tool of this name is offered in the first request.
        when: Further predicate on the first request.
        name: Label used in records and error messages.
    """

    steps: tuple[Step, ...]
    system: TextMatcher | None
    start: Match
    name: str | None

    def __init__(
        self,
        *steps: Step | ReplyLike | str,
        system: TextMatcher | None = None,
        user: TextMatcher | None = None,
        tool: str | None = None,
        when: Predicate | None = None,
        name: str | None = None,
    ) -> None:
        if not steps:
            raise ValueError("a Conversation needs at least one step")
        normalised = tuple(s if isinstance(s, Step) else Step(s) for s in steps)
        if any(s.repeat for s in normalised):
            raise ValueError("steps of a Conversation cannot repeat")
        object.__setattr__(self, "steps", normalised)
        object.__setattr__(self, "system", system)
        object.__setattr__(self, "start", Match(system=system, user=user, tool=tool, when=when))
        object.__setattr__(self, "name", name)

    @property
    def label(self) -> str:
        """The name, or a description of the conversation's start."""
        return self.name or f"Conversation({self.start.describe()})"


ScriptEntry: TypeAlias = Step | Conversation


@dataclass
class _StepState:
    step: Step
    uses: int = 0


@dataclass
class _ConversationState:
    conversation: Conversation
    key: str | None = None
    position: int = 0

    @property
    def done(self) -> bool:
        return self.position >= len(self.conversation.steps)


@dataclass(frozen=True)
class Selection:
    """The step chosen for a request, and its label for records."""

    step: Step
    label: str


@dataclass
class Script:
    """Thread-safe progress through a list of script entries."""

    _entries: list[_StepState | _ConversationState] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def replace(self, entries: Iterable[ScriptEntry]) -> None:
        """Replace the whole script."""
        with self._lock:
            self._entries = [self._state(e) for e in entries]

    def extend(self, entries: Iterable[ScriptEntry]) -> None:
        """Append entries."""
        with self._lock:
            self._entries.extend(self._state(e) for e in entries)

    @staticmethod
    def _state(entry: ScriptEntry) -> _StepState | _ConversationState:
        if isinstance(entry, Step):
            return _StepState(entry)
        if isinstance(entry, Conversation):
            return _ConversationState(entry)
        raise TypeError(f"script entries are Step or Conversation, got {type(entry).__name__}")

    def select(self, request: ChatRequest) -> Selection | None:
        """Pick and consume the first entry that matches ``request``."""
        with self._lock:
            for state in self._entries:
                if isinstance(state, _StepState):
                    if (state.step.repeat or state.uses == 0) and state.step.match.matches(request):
                        state.uses += 1
                        return Selection(state.step, state.step.label)
                    continue
                selection = self._select_in_conversation(state, request)
                if selection is not None:
                    return selection
            return None

    @staticmethod
    def _select_in_conversation(
        state: _ConversationState, request: ChatRequest
    ) -> Selection | None:
        if state.done:
            return None
        conversation = state.conversation
        if state.key is None:
            if not conversation.start.matches(request):
                return None
        elif state.key != request.conversation_key or not _text_matches(
            conversation.system, request.system
        ):
            return None
        step = conversation.steps[state.position]
        if not step.match.matches(request):
            return None
        state.key = request.conversation_key
        state.position += 1
        label = f"{conversation.label} step {state.position}/{len(conversation.steps)}"
        if step.name:
            label += f" ({step.name})"
        return Selection(step, label)

    def pending(self) -> list[str]:
        """Describe every entry still waiting for a request."""
        with self._lock:
            waiting: list[str] = []
            for state in self._entries:
                if isinstance(state, _StepState):
                    if not state.step.repeat and state.uses == 0:
                        waiting.append(state.step.label)
                elif not state.done:
                    conversation = state.conversation
                    bound = f"bound to {state.key}" if state.key else "never started"
                    waiting.append(
                        f"{conversation.label}: {len(conversation.steps) - state.position} "
                        f"of {len(conversation.steps)} steps left ({bound}); next: "
                        f"{conversation.steps[state.position].label}"
                    )
            return waiting
