"""Call status callbacks: applied in SequenceNumber order, idempotent; the end closes the conversation
(unless a person has it) and records `call_completed` once."""

from __future__ import annotations

import pytest

from channels_voice.models import CallStatus, VoiceCall
from channels_voice.tests.conftest import Caller, conversation_of
from conversations import state
from conversations.models import ConversationStatus, Event, HandoffRequest

pytestmark = pytest.mark.django_db


def current(caller: Caller) -> VoiceCall:
    return VoiceCall.objects.select_related("conversation").get(call_sid=caller.call_sid)


def test_completed_sets_the_end_and_duration_closes_and_records_once(caller: Caller):
    caller.dial()

    response = caller.status("completed", 2, CallDuration="42", Timestamp="Sun, 29 Nov 2026 17:54:34 +0000")

    assert response.status_code == 200 and response.json() == {"status": "applied"}
    call = current(caller)
    assert call.status == CallStatus.COMPLETED and call.duration_s == 42 and call.last_sequence_number == 2
    assert call.ended_at is not None and call.ended_at.isoformat() == "2026-11-29T17:54:34+00:00"
    assert conversation_of(caller.call_sid).status == ConversationStatus.CLOSED
    [completed] = Event.objects.filter(name="call_completed")
    assert completed.payload == {"call_sid": caller.call_sid, "status": "completed", "duration_s": 42}
    assert completed.conversation_id == call.conversation_id


def test_out_of_order_and_repeated_callbacks_never_move_the_status_back(caller: Caller):
    caller.dial()

    answered = caller.status("in-progress", 1)
    ringing_late = caller.status("ringing", 0)
    completed = caller.status("completed", 3, CallDuration="30")
    in_progress_late = caller.status("in-progress", 2)
    completed_again = caller.status("completed", 3, CallDuration="99")

    assert [r.json()["status"] for r in (answered, ringing_late, completed, in_progress_late, completed_again)] == [
        "applied",
        "ignored",
        "applied",
        "ignored",
        "ignored",
    ]
    call = current(caller)
    assert (call.status, call.last_sequence_number, call.duration_s) == (CallStatus.COMPLETED, 3, 30)
    assert Event.objects.filter(name="call_completed").count() == 1


def test_an_older_callback_of_the_same_stage_is_ignored(caller: Caller):
    caller.dial()

    newer = caller.status("in-progress", 2)
    older = caller.status("in-progress", 1)
    repeated = caller.status("in-progress", 2)

    assert [r.json()["status"] for r in (newer, older, repeated)] == ["applied", "ignored", "ignored"]
    assert current(caller).last_sequence_number == 2


def test_the_end_arriving_first_wins_over_earlier_progress(caller: Caller):
    caller.dial()

    caller.status("completed", 4, CallDuration="12")
    caller.status("ringing", 1)
    caller.status("in-progress", 2)

    call = current(caller)
    assert (call.status, call.last_sequence_number) == (CallStatus.COMPLETED, 4)


def test_a_call_handed_to_a_person_stays_in_the_queue_when_it_ends(caller: Caller):
    caller.dial()
    state.request_handoff(conversation_of(caller.call_sid), requested_by=HandoffRequest.RequestedBy.CONTACT)

    caller.status("completed", 1, CallDuration="20")

    call = current(caller)
    assert call.status == CallStatus.COMPLETED
    assert conversation_of(caller.call_sid).status == ConversationStatus.QUEUED
    assert Event.objects.filter(name="call_completed").count() == 1


def test_a_caller_who_calls_again_after_the_end_gets_a_new_conversation(client):
    first = Caller(client)
    first.dial()
    first.status("completed", 1, CallDuration="5")
    second = Caller(client)

    second.dial()

    assert current(first).conversation_id != current(second).conversation_id
    assert conversation_of(second.call_sid).contact_id == conversation_of(first.call_sid).contact_id


def test_without_duration_it_is_measured_from_the_answer(caller: Caller):
    caller.dial()

    caller.status("no-answer", 1)

    call = current(caller)
    assert call.status == CallStatus.NO_ANSWER and call.duration_s is not None and call.ended_at is not None


def test_malformed_callbacks_are_400_and_unknown_calls_404(caller: Caller, client):
    caller.dial()

    unknown_status = caller.status("exploded", 1)
    bad_sequence = caller.status("completed", None, SequenceNumber="-1")
    bad_duration = caller.status("completed", 1, CallDuration="long")
    unknown_call = Caller(client).status("completed", 1)

    assert unknown_status.status_code == 400 and "CallStatus" in unknown_status.json()["error"]["fields"]
    assert bad_sequence.status_code == 400 and "SequenceNumber" in bad_sequence.json()["error"]["fields"]
    assert bad_duration.status_code == 400 and "CallDuration" in bad_duration.json()["error"]["fields"]
    assert unknown_call.status_code == 404 and unknown_call.json()["error"]["code"] == "unknown_call"
    assert current(caller).status == CallStatus.IN_PROGRESS


def test_an_unsigned_callback_is_refused(caller: Caller):
    caller.dial()
    params = caller.params(CallStatus="completed", SequenceNumber="1")

    response = caller.post("/api/voice/status", params, signature="")

    assert response.status_code == 403
    assert current(caller).status == CallStatus.IN_PROGRESS
