"""Sign-in throttling (django-axes): a username guessed at from one address is locked out, nobody else is."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

PASSWORD = "a-long-agent-password"  # noqa: S105 (a test account)
LOGIN = "/accounts/login/"

pytestmark = pytest.mark.django_db


@pytest.fixture
def ana():
    return get_user_model().objects.create_user("ana", password=PASSWORD)


def sign_in(client: Client, password: str, address: str = "203.0.113.7", username: str = "ana"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


@override_settings(AXES_FAILURE_LIMIT=3)
def test_repeated_wrong_passwords_lock_that_user_from_that_address(ana):
    client = Client()
    for _ in range(2):
        wrong = sign_in(client, "guess")
        assert wrong.status_code == 200 and 'role="alert"' in wrong.content.decode()  # the usual "didn't match"

    locked = sign_in(client, "guess")
    right_but_locked = sign_in(client, PASSWORD)

    assert locked.status_code == 429
    body = right_but_locked.content.decode()
    assert right_but_locked.status_code == 429
    assert "15 minutos" in body and "administrador" in body  # how long, and who can unlock
    assert "_auth_user_id" not in client.session
    # The same user from another address, and another user from this one, still sign in.
    assert sign_in(Client(), PASSWORD, address="198.51.100.4").status_code == 302
    get_user_model().objects.create_user("bruno", password=PASSWORD)
    assert sign_in(Client(), PASSWORD, username="bruno").status_code == 302


@override_settings(AXES_FAILURE_LIMIT=2)
def test_an_admin_unlocks_by_deleting_the_attempt(ana):
    client = Client()
    sign_in(client, "guess")
    assert sign_in(client, "guess").status_code == 429
    staff = get_user_model().objects.create_superuser("root", password=PASSWORD)
    admin = Client()
    admin.force_login(staff)
    [attempt] = AccessAttempt.objects.filter(username="ana")

    listed = admin.get("/admin/axes/accessattempt/")
    deleted = admin.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"}, REMOTE_ADDR="192.0.2.1")

    assert listed.status_code == 200 and "ana" in listed.content.decode()
    assert deleted.status_code == 302
    assert sign_in(client, PASSWORD).status_code == 302


@override_settings(AXES_FAILURE_LIMIT=3)
def test_a_successful_sign_in_clears_the_count(ana):
    client = Client()
    sign_in(client, "guess")
    sign_in(client, "guess")
    assert sign_in(client, PASSWORD).status_code == 302
    client.logout()

    sign_in(client, "guess")
    sign_in(client, "guess")

    assert sign_in(client, PASSWORD).status_code == 302  # two more failures, not four
