"""`Authorization: Bearer <token>` for the integrator API: the only way in (no session, so no CSRF).

A missing, unknown or revoked token is a 401 with `WWW-Authenticate: Bearer`; the token itself is never
logged or echoed, only its visible prefix when one is needed.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from talia.integrations.models import ApiToken

REALM = 'Bearer realm="talia-api"'
MAX_TOKEN_LENGTH = 200


class ApiTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token or len(token) > MAX_TOKEN_LENGTH:
            raise exceptions.AuthenticationFailed("Send the token as `Authorization: Bearer <token>`.")
        found = ApiToken.authenticate(token)
        if found is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API token.")
        # The token acts for itself; `created_by` is who issued it, not who is calling.
        return TokenUser(found), found

    def authenticate_header(self, request: Request) -> str:
        return REALM


class TokenUser:
    """The caller behind a token: authenticated, but no staff account (it has no session or permissions)."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, token: ApiToken) -> None:
        self.token = token

    def __str__(self) -> str:
        return f"API token {self.token.prefix}"

    def get_username(self) -> str:
        return str(self)


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The token in the OpenAPI schema: an HTTP bearer scheme."""

    target_class = ApiTokenAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An integrator API token, created by staff in the admin (docs/api.md).",
        }
