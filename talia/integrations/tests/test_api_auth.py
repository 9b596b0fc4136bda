"""Integrator API tokens: hashed at rest, scoped, revocable, with their last use recorded; bearer only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from conversations import inbox
from conversations.models import Channel, Contact
from talia.integrations.models import ApiAuditEntry, ApiToken
from talia.integrations.models.api import digest_of
from talia.integrations.tests.api_helpers import Api, make_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def contact():
    return inbox.receive(Channel.WEB, "api-auth-session-01", "Hola", assistant_turn=False).contact


def test_the_token_is_stored_only_as_its_hash(contact):
    secret = make_token("CRM")
    token = ApiToken.objects.get()

    assert secret.startswith(token.prefix + "_") and token.prefix.startswith("talia_") and len(token.prefix) == 14
    assert token.digest == digest_of(secret)
    with connection.cursor() as cursor:
        table = ApiToken._meta.db_table
        cursor.execute(f"SELECT count(*) FROM {table} AS t WHERE t::text LIKE %s", [f"%{secret}%"])  # noqa: S608
        assert cursor.fetchone()[0] == 0
        secret_part = secret.removeprefix(token.prefix + "_")  # the random part may itself hold "_"
        cursor.execute(f"SELECT t::text FROM {table} AS t")  # noqa: S608
        assert secret_part not in cursor.fetchone()[0]
    assert Api(secret).get("/api/v1/contacts").status_code == 200


def test_no_token_an_unknown_one_or_another_scheme_is_a_401_json_asking_for_a_bearer(contact):
    make_token()
    for api in (Api(None), Api("talia_00000000_nope")):
        answer = api.get("/api/v1/contacts")
        assert answer.status_code == 401
        assert answer["WWW-Authenticate"].startswith("Bearer")
        assert answer.json()["error"]["code"] == "invalid_token"
    basic = Api(None).client.get("/api/v1/contacts", HTTP_AUTHORIZATION="Basic YTpi")
    assert basic.status_code == 401
    assert "Bearer" in basic.json()["error"]["message"]


def test_a_signed_in_supervisor_without_a_token_is_refused(contact, admin_client):
    answer = admin_client.get("/api/v1/contacts")
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_token"


def test_a_read_token_reads_and_cannot_write(contact):
    api = Api(make_token(scope=ApiToken.Scope.READ))

    assert api.get(f"/api/v1/contacts/{contact.pk}").status_code == 200
    refused = api.patch(f"/api/v1/contacts/{contact.pk}", {"company": "Textiles Gómez"})
    assert refused.status_code == 403
    assert refused.json()["error"] == {
        "code": "forbidden",
        "message": "This token may only read: writes need a read_write token.",
    }
    assert Contact.objects.get(pk=contact.pk).company == ""
    assert not ApiAuditEntry.objects.exists()


def test_a_revoked_token_is_refused_from_then_on(contact):
    secret = make_token()
    api = Api(secret)
    assert api.get("/api/v1/contacts").status_code == 200

    assert ApiToken.objects.get().revoke() is True
    answer = api.get("/api/v1/contacts")

    assert answer.status_code == 401 and answer.json()["error"]["message"] == "Unknown or revoked API token."
    assert ApiToken.objects.get().revoke() is False


def test_last_use_is_recorded_at_most_once_a_minute(contact):
    api = Api(make_token())
    assert ApiToken.objects.get().last_used_at is None

    api.get("/api/v1/contacts")
    first = ApiToken.objects.get().last_used_at
    api.get("/api/v1/contacts")
    assert first is not None and ApiToken.objects.get().last_used_at == first

    ApiToken.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    api.get("/api/v1/contacts")
    refreshed = ApiToken.objects.get().last_used_at
    assert refreshed is not None and refreshed > first


def test_the_admin_shows_the_token_once_and_revokes_it(admin_client):
    created = admin_client.post("/admin/integrations/apitoken/add/", {"name": "ERP", "scope": "read"}, follow=True)
    token = ApiToken.objects.get()
    shown = [str(message) for message in created.context["messages"]]
    secret = next(word for message in shown for word in message.split() if word.startswith(token.prefix + "_"))

    assert token.created_by is not None and token.created_by.is_superuser and token.scope == "read"
    assert Api(secret).get("/api/v1/contacts").status_code == 200
    page = admin_client.get(f"/admin/integrations/apitoken/{token.pk}/change/").content.decode()
    assert token.prefix in page and secret not in page

    admin_client.post(
        "/admin/integrations/apitoken/", {"action": "revoke", "_selected_action": [token.pk]}, follow=True
    )
    assert ApiToken.objects.get().revoked_at is not None
    assert Api(secret).get("/api/v1/contacts").status_code == 401
