"""Integrator API tokens and the audit of what they wrote (docs/api.md).

Invariants:
- A token's secret is never stored: only its SHA-256 (`digest`) and a visible `prefix` ("talia_" and 8
  characters) that names it in the admin and in logs. The full token is shown once, when it is created.
- A revoked token (`revoked_at`) never authenticates again; rows are kept for the audit trail.
- `last_used_at` is written at most once per USE_RESOLUTION, so reads do not turn into writes.
- Every write through the API leaves one ApiAuditEntry, in the same transaction as the change.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

__all__ = ["ApiAuditEntry", "ApiToken"]

PREFIX = "talia_"
USE_RESOLUTION = timedelta(minutes=1)


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(models.Model):
    class Scope(models.TextChoices):
        READ = "read", _("Read")
        READ_WRITE = "read_write", _("Read and write")

    name = models.CharField(_("name"), max_length=100, help_text=_("Who or what uses it, e.g. “CRM sync”."))
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    digest = models.CharField(_("hash"), max_length=64, unique=True, editable=False)
    scope = models.CharField(_("scope"), max_length=16, choices=Scope.choices, default=Scope.READ)
    personal_data = models.BooleanField(
        _("personal data in events"),
        default=False,
        help_text=_("The events feed includes names, email addresses, phone numbers and message texts."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="api_tokens",
        verbose_name=_("created by"),
    )
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def can_write(self) -> bool:
        return self.scope == self.Scope.READ_WRITE

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def issue(self) -> str:
        """A new secret for this (unsaved) token; returns the full token, which is not kept anywhere."""
        visible = secrets.token_hex(4)
        token = f"{PREFIX}{visible}_{secrets.token_urlsafe(32)}"
        self.prefix = f"{PREFIX}{visible}"
        self.digest = digest_of(token)
        return token

    @classmethod
    def authenticate(cls, token: str) -> ApiToken | None:
        """The active token whose hash matches, with `last_used_at` refreshed (at most once a minute)."""
        found = cls.objects.filter(digest=digest_of(token), revoked_at__isnull=True).first()
        if found is None:
            return None
        now = timezone.now()
        if found.last_used_at is None or now - found.last_used_at >= USE_RESOLUTION:
            # Conditional, so concurrent requests write it once.
            cls.objects.filter(pk=found.pk).filter(
                Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - USE_RESOLUTION)
            ).update(last_used_at=now)
            found.last_used_at = now
        return found

    def revoke(self) -> bool:
        """Revoke the token; False when it already was."""
        now = timezone.now()
        changed = ApiToken.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=now)
        if changed:
            self.revoked_at = now
        return bool(changed)


class ApiAuditEntry(models.Model):
    """One write made through the integrator API: which token, what request, on what, and what it did."""

    token = models.ForeignKey(ApiToken, on_delete=models.PROTECT, related_name="audit_entries")
    method = models.CharField(_("method"), max_length=8)
    path = models.CharField(_("path"), max_length=300)
    object_type = models.CharField(_("object type"), max_length=40)
    object_id = models.CharField(_("object id"), max_length=64)
    action = models.CharField(_("action"), max_length=40)
    summary = models.TextField(_("summary"), blank=True)
    at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("API audit entry")
        verbose_name_plural = _("API audit entries")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.method} {self.path} · {self.action}"
