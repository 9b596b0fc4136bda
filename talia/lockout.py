"""The page a locked-out sign-in gets (django-axes calls `lockout_response`; see AXES_* in settings)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

logger = logging.getLogger("talia.security")


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """429 with how long the lockout lasts and how to get unlocked, in the page's language."""
    username = str((credentials or {}).get("username") or request.POST.get("username") or "")[:150]
    logger.warning("Sign-in locked out for %r from %s", username, request.META.get("REMOTE_ADDR", "?"))
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    return render(request, "registration/locked_out.html", {"lockout_minutes": minutes}, status=429)
