"""What a token may do: read with any active token, write only with a `read_write` one."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from conversations.console.permissions import is_supervisor
from talia.integrations.models import ApiToken


class HasApiToken(BasePermission):
    message = "This token may only read: writes need a read_write token."

    def has_permission(self, request: Request, view: Any) -> bool:
        if getattr(view, "swagger_fake_view", False):
            # Listing the operations in /api/schema/ and /api/docs/: shown to supervisors, who issue tokens.
            return is_supervisor(request.user)
        token = request.auth
        if not isinstance(token, ApiToken):
            return False
        return request.method in SAFE_METHODS or token.can_write
