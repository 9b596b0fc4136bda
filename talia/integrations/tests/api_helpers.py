"""Shared by the integrator API tests: tokens and a client that sends `Authorization: Bearer`."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from talia.integrations.models import ApiToken


def make_token(name: str = "CRM", *, scope: str = ApiToken.Scope.READ_WRITE, personal_data: bool = False) -> str:
    token = ApiToken(name=name, scope=scope, personal_data=personal_data)
    secret = token.issue()
    token.save()
    return secret


class Api:
    """The Django test client with a bearer token and JSON bodies."""

    def __init__(self, token: str | None) -> None:
        self.client = Client(enforce_csrf_checks=True)  # proves the API needs no CSRF token
        self.headers: dict[str, Any] = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.client.get(path, params or {}, headers=self.headers)

    def send(self, method: str, path: str, body: Any = None, *, raw: str | None = None) -> Any:
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return getattr(self.client, method)(path, data=data, content_type="application/json", headers=self.headers)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.send("post", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.send("patch", path, body, **kwargs)
