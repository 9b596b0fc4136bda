"""A visitor's web chat session: where they came from and how it ended (visitor and conversion metrics)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations.models import Contact


class WebchatSession(models.Model):
    session_id = models.CharField(_("session id"), max_length=128, unique=True)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="webchat_sessions")
    started_at = models.DateTimeField(_("started at"), default=timezone.now, db_index=True)
    last_seen_at = models.DateTimeField(_("last seen at"), default=timezone.now)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=400, blank=True)
    origin = models.CharField(_("origin"), max_length=200, blank=True)
    locale = models.CharField(_("locale"), max_length=8, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    close_reason = models.CharField(_("close reason"), max_length=200, blank=True)
    # Filled when the visitor ends the chat.
    message_count = models.PositiveIntegerField(_("messages"), default=0)
    lead_captured = models.BooleanField(_("lead captured"), default=False)

    class Meta:
        verbose_name = _("web chat session")
        verbose_name_plural = _("web chat sessions")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return self.session_id

    @property
    def duration(self) -> object:
        return (self.closed_at or self.last_seen_at) - self.started_at
