"""Template helpers of the agent console."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def phone_address(identity: str | None) -> str:
    """A contact identity as a dialable +E.164 number, or "" when it is not one (a web session id)."""
    digits = (identity or "").removeprefix("+")
    return f"+{digits}" if digits.isdigit() and 6 <= len(digits) <= 15 else ""
