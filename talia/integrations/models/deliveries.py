"""One row per (event, sink): what the publisher owes each sink and what became of it.

Invariants:
- Created by the publisher in the transaction that marks the event published (`Event.published_at`), one
  per sink enabled at that moment that accepts the event's type; unique per (event, sink key), so an
  event is never owed twice to one sink.
- `pending` until the sink has it (`delivered`) or it failed `TALIA_EVENTS_MAX_ATTEMPTS` times (`dead`).
  A dead delivery no longer holds back the conversation's later events; "Replay" in the admin makes it
  pending again.
- `conversation_id` is copied from the event so the publisher can keep each conversation in order per
  sink without a join.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

__all__ = ["DeliveryStatus", "EventDelivery"]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    DEAD = "dead", _("Dead")


class EventDelivery(models.Model):
    event = models.ForeignKey(
        "conversations.Event", on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("event")
    )
    sink_key = models.CharField(_("sink"), max_length=100)
    conversation_id = models.UUIDField(_("conversation"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    last_error = models.TextField(_("last error"), blank=True)
    last_status_code = models.PositiveSmallIntegerField(_("last status code"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("event delivery")
        verbose_name_plural = _("event deliveries")
        ordering = ["-event_id", "sink_key"]
        constraints = [models.UniqueConstraint(fields=["event", "sink_key"], name="event_delivery_once_per_sink")]
        indexes = [
            # The publisher's queries: a sink's pending deliveries in event order (partial: pending only).
            models.Index(
                fields=["sink_key", "event"],
                name="delivery_pending_by_sink",
                condition=models.Q(status="pending"),
            ),
            models.Index(fields=["sink_key", "-event"], name="delivery_by_sink"),
            models.Index(fields=["status", "sink_key"], name="delivery_status_sink"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.sink_key} ({self.status})"
