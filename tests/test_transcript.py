"""A turn's answers kept from its events: what ``wait_for_outcome`` judges an idle turn by.

The event shapes are those the pinned server sends for one prompt (a tool
step, then a text step); ``test_client_live`` produces them for real and
checks the judgment against the messages read back.
"""

from __future__ import annotations

from typing import Any

from langgraph_opencode.tools.opencode import Event, Message, judge_turn
from langgraph_opencode.tools.opencode.transcript import Transcript

SID = "ses_1"
USER = "msg_0001"
STEP = "msg_0002"
LAST = "msg_0003"


def info(mid: str, *, completed: bool, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": mid,
        "sessionID": SID,
        "role": "assistant",
        "parentID": USER,
        "time": {"created": 2, **({"completed": 3} if completed else {})},
        "cost": 0.25,
        "tokens": {"input": 10, "output": 2, "reasoning": 0, "cache": {"read": 0, "write": 0}},
        **extra,
    }
    if finish is not None:
        data["finish"] = finish
    return data


def updated(data: dict[str, Any]) -> Event:
    return Event(type="message.updated", properties={"sessionID": SID, "info": data})


def text(mid: str, value: str, *, ended: bool, pid: str = "prt_0001") -> Event:
    part = {
        "id": pid,
        "messageID": mid,
        "sessionID": SID,
        "type": "text",
        "text": value,
        "time": {"start": 1, **({"end": 2} if ended else {})},
    }
    return Event(type="message.part.updated", properties={"sessionID": SID, "part": part})


def turn() -> list[Event]:
    """One prompt's events: a write step, then the answer, as the server sends them."""
    return [
        updated(info(STEP, completed=False)),
        updated(info(STEP, completed=True, finish="tool-calls")),
        updated(info(LAST, completed=False)),
        text(LAST, "", ended=False),
        Event(
            type="message.part.delta",
            properties={"sessionID": SID, "messageID": LAST, "field": "text", "delta": "Done."},
        ),
        text(LAST, "Done.", ended=True),
        updated(info(LAST, completed=True, finish="stop")),
    ]


def judged(transcript: Transcript) -> Any:
    return judge_turn(SID, transcript.answers, USER, idle=False)


def test_a_turn_told_by_its_events_is_judged_with_its_text_and_whole_usage() -> None:
    transcript = Transcript(SID, USER)
    for ev in turn():
        transcript.observe(ev)

    outcome = judged(transcript)

    assert outcome is not None
    assert outcome.kind == "ok"
    assert (outcome.message_id, outcome.text, outcome.finish) == (LAST, "Done.", "stop")
    assert outcome.tokens.input == 20
    assert outcome.cost == 0.5


def test_a_turn_still_running_is_not_judged() -> None:
    transcript = Transcript(SID, USER)
    for ev in turn()[:-1]:  # the answer's text is whole, its message not completed
        transcript.observe(ev)

    assert judged(transcript) is None


def test_a_structured_answer_is_taken_from_the_message_info() -> None:
    transcript = Transcript(SID, USER)
    transcript.observe(
        updated(info(LAST, completed=True, finish="tool-calls", structured={"a": 1}))
    )

    outcome = judged(transcript)

    assert outcome is not None
    assert outcome.kind == "ok"
    assert outcome.structured == {"a": 1}


def test_an_error_ends_the_turn_with_its_kind() -> None:
    transcript = Transcript(SID, USER)
    error = {"name": "APIError", "data": {"message": "bad", "statusCode": 400}}
    transcript.observe(updated(info(LAST, completed=True, error=error)))

    outcome = judged(transcript)

    assert outcome is not None
    assert outcome.kind == "api_error"
    assert outcome.status_code == 400


def test_older_events_queued_before_a_read_back_do_not_undo_it() -> None:
    """A subscription opened before a read-back holds events older than the read-back."""
    read_back = Message.model_validate(
        {
            "info": info(LAST, completed=True, finish="stop"),
            "parts": [
                {"id": "prt_0001", "type": "text", "text": "Done.", "time": {"start": 1, "end": 2}}
            ],
        }
    )
    transcript = Transcript(SID, USER)
    transcript.seed([read_back])
    for ev in turn()[2:4]:  # the answer started, its text empty: both older than the read-back
        transcript.observe(ev)

    outcome = judged(transcript)

    assert outcome is not None
    assert outcome.kind == "ok"
    assert outcome.text == "Done."


def test_other_prompts_other_sessions_and_the_user_message_are_left_out() -> None:
    transcript = Transcript(SID, USER)
    transcript.observe(updated(info(LAST, completed=True, finish="stop", parentID="msg_other")))
    transcript.observe(
        Event(
            type="message.updated",
            properties={
                "info": {**info(LAST, completed=True, finish="stop"), "sessionID": "ses_2"}
            },
        )
    )
    transcript.observe(
        updated({"id": USER, "sessionID": SID, "role": "user", "time": {"created": 1}})
    )

    assert transcript.answers == []
    assert judged(transcript) is None
    assert transcript.usage()[0].total == 0
