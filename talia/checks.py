"""System checks for configuration mistakes the settings helpers cannot see on their own."""

from __future__ import annotations

import difflib
import os
from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register

from talia.env import KNOWN_VARIABLES


@register(Tags.compatibility)
def check_unknown_talia_variables(app_configs: Any, **kwargs: Any) -> list[Warning]:
    """talia.W001: a TALIA_* variable TalIA never reads is almost always a typo."""
    known = sorted(name for name in KNOWN_VARIABLES if name.startswith("TALIA_"))
    warnings = []
    for name in sorted(os.environ):
        if name.startswith("TALIA_") and name not in KNOWN_VARIABLES:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"Did you mean {close[0]}?" if close else "See the configuration table in README.md."
            warnings.append(
                Warning(f"The environment variable {name} is not used by TalIA.", hint=hint, id="talia.W001")
            )
    return warnings


@register(Tags.security, deploy=True)
def check_debug_hosts(app_configs: Any, **kwargs: Any) -> list[Warning]:
    """talia.W002: a wildcard host with DEBUG off accepts any Host header."""
    if not settings.DEBUG and "*" in settings.ALLOWED_HOSTS:
        return [
            Warning(
                "ALLOWED_HOSTS contains '*' with DEBUG off.",
                hint="List the public host names of this deployment in ALLOWED_HOSTS.",
                id="talia.W002",
            )
        ]
    return []


@register(Tags.staticfiles, deploy=True)
def check_static_files_collected(app_configs: Any, **kwargs: Any) -> list[Warning]:
    """With hashed names (TALIA_STATIC_MANIFEST) a page naming a file the manifest lacks fails with a 500."""
    if not settings.TALIA_STATIC_MANIFEST or (settings.STATIC_ROOT / "staticfiles.json").exists():
        return []
    return [
        Warning(
            f"Static files have not been collected into {settings.STATIC_ROOT}: every page will fail.",
            hint="Run `python manage.py collectstatic --noinput` on every release, before starting web processes.",
            id="talia.W003",
        )
    ]
