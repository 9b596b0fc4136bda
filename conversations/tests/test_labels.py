"""Labels on conversations: set from the console through one writer, shown on rows, filterable."""

from __future__ import annotations

import pytest

from conversations import events, inbox, state
from conversations.models import Event, Label
from conversations.tests.console_helpers import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued():
    conversation = inbox.receive("web", "labels-session-01", "Quiero una factura", assistant_turn=False).conversation
    state.request_handoff(conversation, requested_by="contact")
    return conversation


def put_labels(client, conversation, ids):
    return client.put(
        f"/console/api/conversations/{conversation.pk}/labels", {"labels": ids}, content_type="application/json"
    )


def test_an_agent_labels_a_conversation_and_the_change_is_recorded_and_pushed(
    queued, make_agent, listen, django_capture_on_commit_callbacks
):
    vip, billing = Label.objects.create(name="VIP", colour="#b91c1c"), Label.objects.create(name="Facturación")
    ana = make_agent("ana")
    staff = listen(f"staff.{queued.pk}")

    with django_capture_on_commit_callbacks(execute=True):
        first = put_labels(signed_in(ana), queued, [vip.pk, billing.pk])
    again = put_labels(signed_in(ana), queued, [vip.pk, billing.pk])  # nothing changes: no event
    second = put_labels(signed_in(ana), queued, [billing.pk])

    assert first.status_code == 200
    assert [label["name"] for label in first.json()["labels"]] == ["Facturación", "VIP"]
    assert again.status_code == 200 and second.json()["labels"] == [
        {"id": billing.pk, "name": "Facturación", "colour": "#64748b"}
    ]
    recorded = [
        e.payload for e in Event.objects.filter(conversation=queued, name=events.LABELS_CHANGED.name).order_by("pk")
    ]
    assert [(sorted(p["added"]), p["removed"], p["agent_id"]) for p in recorded] == [
        (["Facturación", "VIP"], [], ana.pk),
        ([], ["VIP"], ana.pk),
    ]
    pushed = staff.receive()
    assert pushed is not None and pushed["type"] == "labels.changed"
    assert {label["name"] for label in pushed["labels"]} == {"VIP", "Facturación"}


def test_bad_label_requests_are_refused_and_change_nothing(queued, make_agent):
    client = signed_in(make_agent("ana"))
    vip = Label.objects.create(name="VIP")

    unknown = put_labels(client, queued, [vip.pk, 99999])
    malformed = put_labels(client, queued, ["VIP"])
    missing = client.put(f"/console/api/conversations/{queued.pk}/labels", {}, content_type="application/json")

    assert unknown.status_code == 409 and unknown.json()["error"]["code"] == "unknown_label"
    assert malformed.status_code == 400 and missing.status_code == 400
    assert not queued.labels.exists()


def test_someone_elses_conversation_cannot_be_labelled(queued, make_agent):
    state.claim_conversation(queued, make_agent("bruno"))
    vip = Label.objects.create(name="VIP")

    refused = put_labels(signed_in(make_agent("ana")), queued, [vip.pk])

    assert refused.status_code == 403
    assert not queued.labels.exists()


def test_the_queue_shows_labels_and_filters_by_one(queued, make_agent):
    vip = Label.objects.create(name="VIP", colour="#b91c1c")
    queued.labels.add(vip)
    other = inbox.receive("web", "labels-session-02", "Otra consulta distinta", assistant_turn=False).conversation
    state.request_handoff(other, requested_by="contact")
    client = signed_in(make_agent("ana"))

    everything = client.get("/console/").content.decode()
    only_vip = client.get(f"/console/?label={vip.pk}").content.decode()
    nonsense = client.get("/console/?label=abc")

    assert 'data-colour="#b91c1c"' in everything and "Otra consulta distinta" in everything
    assert "Quiero una factura" in only_vip and "Otra consulta distinta" not in only_vip
    assert nonsense.status_code == 200 and "Otra consulta distinta" in nonsense.content.decode()


def test_a_colour_must_be_a_hex_colour():
    label = Label(name="Queja", colour="red")

    with pytest.raises(Exception, match="#rrggbb"):
        label.full_clean()
