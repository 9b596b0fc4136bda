"""What the console shows beside a voice conversation (registered as its ChannelSpec's `details`): its
latest call's status and duration, and how many calls it had when more than one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from channels_voice.models import CallStatus, VoiceCall
from conversations.models import Conversation

if TYPE_CHECKING:
    from django.utils.functional import _StrOrPromise


def duration(seconds: int) -> str:
    """45 s, 2 min 5 s."""
    minutes, rest = divmod(seconds, 60)
    if minutes:
        return _("%(minutes)s min %(seconds)s s") % {"minutes": minutes, "seconds": rest}
    return _("%(seconds)s s") % {"seconds": rest}


def call_details(conversation: Conversation) -> list[tuple[_StrOrPromise, str]]:
    calls = list(
        VoiceCall.objects.filter(conversation=conversation).order_by("-started_at").values("status", "duration_s")[:2]
    )
    if not calls:
        return []
    latest = calls[0]
    details: list[tuple[_StrOrPromise, str]] = [(gettext_lazy("Call"), str(CallStatus(latest["status"]).label))]
    if latest["duration_s"] is not None:
        details.append((gettext_lazy("Duration"), duration(latest["duration_s"])))
    if len(calls) > 1:
        count = VoiceCall.objects.filter(conversation=conversation).count()
        details.append((gettext_lazy("Calls"), str(count)))
    return details
