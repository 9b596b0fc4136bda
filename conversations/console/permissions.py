"""Who is an agent and who is a supervisor: the one definition every door checks.

- A supervisor is an active, signed-in staff account (`is_staff`).
- An agent is an active, signed-in account in the group named `AGENTS_GROUP_NAME`, or a supervisor
  (supervisors may act as agents too).

Pages (`agent_required`, `supervisor_required`), the JSON APIs (`IsAgent`, `IsSupervisor`), the staff
sockets (conversations/console/consumers.py, on connect and on every `access.revoked`) and the calendar feed all
ask `is_agent` / `is_supervisor`, on every request, so a right taken away ends everywhere at once
(conversations/console/access.py). This module imports nothing of the project, so any app may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

# The auth group whose members are agents. Renaming the group in the admin takes the right away.
AGENTS_GROUP_NAME = "agents"


def is_supervisor(user: Any) -> bool:
    """An active, signed-in staff account."""
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active and user.is_staff)


def is_agent(user: Any) -> bool:
    """An active, signed-in member of the agents group, or a supervisor."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return bool(user.is_staff or user.groups.filter(name=AGENTS_GROUP_NAME).exists())


def _page_rule(
    rule: Callable[[Any], bool],
) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    def decorator(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not rule(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


# Pages: anonymous users go to the login page; signed-in users without the right get a 403.
agent_required = _page_rule(is_agent)
supervisor_required = _page_rule(is_supervisor)


class IsAgent(BasePermission):
    """DRF: agents (and supervisors) only."""

    message = "Only agents may use the console."

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_agent(request.user)


class IsSupervisor(BasePermission):
    """DRF: supervisors only (the session's user, with CSRF)."""

    message = "Only supervisors (staff) may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_supervisor(request.user)
