"""Labels on conversations: the one writer of `Conversation.labels` (an event and a staff push per change)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from conversations import events, realtime
from conversations.models import Conversation, Label


class UnknownLabelError(ValueError):
    """A label id that does not exist (deleted meanwhile, or never did)."""


def set_labels(conversation: Conversation, label_ids: Iterable[int], *, by: Any = None) -> list[Label]:
    """Give `conversation` exactly the labels `label_ids`; returns them by name. Records `labels_changed`
    with what was added and removed, and tells the staff watching, only when something changed."""
    wanted = set(label_ids)
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        labels = list(Label.objects.filter(pk__in=wanted))
        if len(labels) != len(wanted):
            missing = sorted(wanted - {label.pk for label in labels})
            raise UnknownLabelError(f"Unknown label ids: {missing}.")
        before = {label.pk: label.name for label in locked.labels.all()}
        added = [label.name for label in labels if label.pk not in before]
        removed = [name for pk, name in before.items() if pk not in wanted]
        if added or removed:
            locked.labels.set(labels)
            events.emit(
                events.LABELS_CHANGED,
                conversation=locked,
                added=added,
                removed=removed,
                **({"agent_id": by.pk} if by is not None else {}),
            )
            realtime.publish(
                [realtime.staff_group(locked.pk), realtime.MONITOR_GROUP],
                realtime.labels_changed(locked.pk, sorted(labels, key=lambda label: label.name)),
            )
    return sorted(labels, key=lambda label: label.name)
