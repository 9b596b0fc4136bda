"""The business's assistant profile as the rest of TalIA reads it: cached, with every blank filled in.

Invariants:
- `current()` never fails because Redis does: the cache is a shortcut to the database row, and any cache
  error falls through to the row (or to the defaults when there is no row yet).
- A saved or deleted profile is dropped from the cache when saved and again after its transaction
  commits, so every process reads the new one on its next call (at most `CACHE_S` later if the cache
  could not be reached then).
- Within `pinned()` (one assistant turn) `current()` answers the profile read on entry: one read per
  turn, and every part of the turn (its prompt version, the engine, the tools) sees the same profile.
- Opening hours are local to the profile's time zone: a weekday's ranges [["09:00", "14:00"], ...] with
  the end after the start, holidays closed all day; no hours at all means always open.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.models import WEEKDAYS, AssistantProfile

logger = logging.getLogger("talia.profile")

CACHE_KEY = "assistant-profile:v2"  # bumped with the Profile fields: old pickles never load
CACHE_S = 300
# How far ahead the next opening is looked for (a profile open one day a month still finds it).
LOOKAHEAD_DAYS = 60


@dataclass(frozen=True)
class Profile:
    business_name: str
    assistant_name: str = ""
    greetings: dict[str, str] = field(default_factory=dict)
    instructions: dict[str, str] = field(default_factory=dict)
    lead_fields: tuple[str, ...] = ()
    offer_whatsapp: bool = True
    time_zone: str = ""
    business_hours: dict[str, list[list[str]]] = field(default_factory=dict)
    holidays: tuple[str, ...] = ()
    out_of_hours: dict[str, str] = field(default_factory=dict)
    reply_minutes: int | None = None
    offer_choice: bool = False
    prechat_fields: tuple[str, ...] = ()
    prechat_required: tuple[str, ...] = ()
    tone: str = "warm"
    consent_texts: dict[str, str] = field(default_factory=dict)
    consent_version: str = ""

    @property
    def revision(self) -> str:
        """A short fingerprint of what the profile adds to the model's instructions (its own instructions,
        tone, names, consent notice): stored with each assistant run beside the prompt's version, so a run
        says which words the business had configured when it answered."""
        words = json.dumps(
            [self.business_name, self.assistant_name, self.instructions, self.tone, self.consent_texts],
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(words.encode()).hexdigest()[:10]

    @property
    def consent_text_version(self) -> str:
        """The version a contact's consent answer is stored under."""
        return self.consent_version or settings.TALIA_CONSENT_VERSION

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone or settings.TIME_ZONE)

    def is_open(self, moment: datetime | None = None) -> bool:
        """Whether the team works at `moment` (now by default)."""
        if not self.business_hours:
            return True
        local = timezone.localtime(moment or timezone.now(), self.zone)
        return any(start <= local.time() < end for start, end in self._ranges(local.date()))

    def next_opening(self, moment: datetime | None = None) -> datetime | None:
        """When the team is next at work after `moment` (`moment` itself if open then); None if never."""
        now = timezone.localtime(moment or timezone.now(), self.zone)
        if self.is_open(now):
            return now
        for offset in range(LOOKAHEAD_DAYS + 1):
            day = now.date() + timedelta(days=offset)
            for start, _end in self._ranges(day):
                opening = datetime.combine(day, start, tzinfo=self.zone)
                if opening > now:
                    return opening
        return None

    def _ranges(self, day: date) -> list[tuple[time, time]]:
        if day.isoformat() in self.holidays:
            return []
        ranges = self.business_hours.get(WEEKDAYS[day.weekday()], [])
        return sorted((time.fromisoformat(start), time.fromisoformat(end)) for start, end in ranges)


def _from_row(row: AssistantProfile | None) -> Profile:
    if row is None:
        return Profile(business_name=settings.TALIA_BUSINESS_NAME)
    return Profile(
        business_name=row.business_name or settings.TALIA_BUSINESS_NAME,
        assistant_name=row.assistant_name,
        greetings={locale: text for locale, text in (("es", row.greeting_es), ("en", row.greeting_en)) if text},
        instructions={
            locale: text for locale, text in (("es", row.instructions_es), ("en", row.instructions_en)) if text
        },
        lead_fields=tuple(row.lead_fields or ()),
        offer_whatsapp=row.offer_whatsapp,
        time_zone=row.time_zone,
        business_hours=dict(row.business_hours or {}),
        holidays=tuple(row.holidays or ()),
        out_of_hours={
            locale: text for locale, text in (("es", row.out_of_hours_es), ("en", row.out_of_hours_en)) if text
        },
        reply_minutes=row.reply_minutes,
        offer_choice=row.offer_choice,
        prechat_fields=tuple(row.prechat_fields or ()),
        prechat_required=tuple(row.prechat_required or ()),
        tone=row.tone,
        consent_texts={
            locale: text for locale, text in (("es", row.consent_text_es), ("en", row.consent_text_en)) if text
        },
        consent_version=row.consent_version,
    )


# The profile of the turn running in this context (see pinned()).
_pinned: ContextVar[Profile | None] = ContextVar("assistant_profile", default=None)


@contextmanager
def pinned() -> Iterator[Profile]:
    """Within the block, `current()` answers the profile it read on entry."""
    token = _pinned.set(current())
    try:
        yield current()
    finally:
        _pinned.reset(token)


def current() -> Profile:
    """The profile, from the cache or the database (or the one pinned for this turn)."""
    if (pinned_now := _pinned.get()) is not None:
        return pinned_now
    try:
        cached = cache.get(CACHE_KEY)
    except Exception:  # noqa: BLE001 (any cache failure: read the row instead)
        logger.warning("Assistant profile cache unavailable; reading the database", exc_info=True)
        cached = None
    if isinstance(cached, Profile):
        return cached
    profile = _from_row(AssistantProfile.objects.order_by("pk").first())
    try:
        cache.set(CACHE_KEY, profile, CACHE_S)
    except Exception:  # noqa: BLE001
        logger.warning("Assistant profile not cached", exc_info=True)
    return profile


def forget(**kwargs: Any) -> None:
    """Drop the cached profile now and again once the change has committed (a reader between the two may
    have cached the old row)."""
    _drop()
    transaction.on_commit(_drop)


def _drop() -> None:
    try:
        cache.delete(CACHE_KEY)
    except Exception:  # noqa: BLE001
        logger.warning("Assistant profile cache not cleared; it expires within %s s", CACHE_S, exc_info=True)


post_save.connect(forget, sender=AssistantProfile, dispatch_uid="assistant-profile-forget-saved")
post_delete.connect(forget, sender=AssistantProfile, dispatch_uid="assistant-profile-forget-deleted")


def hours_problems(time_zone: str, hours: Any, holidays: Any) -> dict[str, str]:
    """What is wrong with a profile's time zone, hours and holidays, per field (empty when all is well)."""
    problems: dict[str, str] = {}
    if time_zone:
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            problems["time_zone"] = _("Unknown time zone %(zone)r (use a name like Europe/Madrid).") % {
                "zone": time_zone
            }
    if not isinstance(hours, dict) or not all(_valid_day(day, ranges) for day, ranges in hours.items()):
        problems["business_hours"] = _(
            'Per weekday (%(days)s), a list of ["HH:MM", "HH:MM"] ranges, each ending after it starts.'
        ) % {"days": ", ".join(WEEKDAYS)}
    if not isinstance(holidays, list) or not all(_valid_date(day) for day in holidays):
        problems["holidays"] = _('A list of dates like "2026-12-25".')
    return problems


# What a pre-chat form may ask for: a name and a way to reach the person.
PRECHAT_FIELDS = ("full_name", "email", "phone")


def prechat_problems(fields: Any, required: Any) -> dict[str, str]:
    """What is wrong with a profile's pre-chat form: known fields, each once, the required ones among them."""
    problems: dict[str, str] = {}
    if (
        not isinstance(fields, list)
        or any(name not in PRECHAT_FIELDS for name in fields)
        or len(set(fields)) != len(fields)
    ):
        problems["prechat_fields"] = _("A list of: %(fields)s, each at most once.") % {
            "fields": ", ".join(PRECHAT_FIELDS)
        }
    elif not isinstance(required, list) or any(name not in fields for name in required):
        problems["prechat_required"] = _("A list of details the form asks for.")
    return problems


def _valid_day(day: Any, ranges: Any) -> bool:
    if day not in WEEKDAYS or not isinstance(ranges, list):
        return False
    for pair in ranges:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(value, str) for value in pair)):
            return False
        try:
            start, end = time.fromisoformat(pair[0]), time.fromisoformat(pair[1])
        except ValueError:
            return False
        if end <= start:
            return False
    return True


def _valid_date(value: Any) -> bool:
    try:
        date.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True
