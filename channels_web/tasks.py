"""Best-effort IP geolocation of visitor messages, after the reply path, cached per IP."""

from __future__ import annotations

import ipaddress
import logging
import urllib.parse
from datetime import timedelta

import httpx2
from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from channels_web import services
from conversations.models import Contact, Message

logger = logging.getLogger("talia.webchat")

TIMEOUT_S = 3
CACHE_S = 24 * 3600
KEPT_FIELDS = ("country", "country_code", "countryCode", "region", "regionName", "city", "timezone", "org")


def lookup(ip: str) -> dict[str, str] | None:
    """Ask the configured geolocation API about `ip` (cached). None for private IPs or on any failure."""
    try:
        if not ipaddress.ip_address(ip).is_global:
            return None
    except ValueError:
        return None
    key = f"geo:{ip}"
    cached = cache.get(key)
    if cached is not None:
        return cached or None
    url = settings.TALIA_GEOLOCATION_API_URL.replace("{ip}", urllib.parse.quote(ip))
    headers = {"Accept": "application/json"}
    if settings.TALIA_GEOLOCATION_API_TOKEN:
        headers["Authorization"] = f"Bearer {settings.TALIA_GEOLOCATION_API_TOKEN}"
    try:
        # httpx2 (the project's HTTP client); the URL's scheme is checked in settings.
        response = httpx2.get(url, headers=headers, timeout=TIMEOUT_S, follow_redirects=True)
        response.raise_for_status()
        data = response.json()
    except Exception as exc:
        logger.info("Geolocation of %s failed: %s", ip, exc)
        cache.set(key, {}, 300)  # do not hammer a failing service
        return None
    found = {name: str(data[name]) for name in KEPT_FIELDS if isinstance(data, dict) and data.get(name)}
    cache.set(key, found, CACHE_S)
    return found or None


@shared_task(acks_late=True, ignore_result=True)
def close_idle_sessions() -> int:
    """Beat, every 5 minutes: record an inactivity closure for each session idle past the setting."""
    return services.close_idle_sessions(timedelta(minutes=settings.TALIA_WEBCHAT_SESSION_IDLE_MIN))


@shared_task(acks_late=True, ignore_result=True)
def geolocate_message(message_id: str, ip: str) -> None:
    location = lookup(ip)
    if not location:
        return
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            return
        message.metadata["geolocation"] = location
        message.save(update_fields=["metadata"])
        contact = Contact.objects.select_for_update().get(pk=message.conversation.contact_id)
        contact.metadata["geolocation"] = location
        contact.save(update_fields=["metadata", "updated"])
