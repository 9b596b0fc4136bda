"""Celery tasks of the WhatsApp channel. Thin: they take ids and call a service."""

from __future__ import annotations

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from channels_whatsapp import services
from channels_whatsapp.twilio_client import TwilioError
from conversations import delivery


@shared_task(bind=True, acks_late=True, max_retries=6)
def download_media(self: Task, message_id: str) -> int:
    """Store the media of an inbound WhatsApp message; temporary failures are retried with backoff."""
    try:
        return services.download_media(message_id)
    except TwilioError as error:
        if error.permanent:
            services.logger.warning("Media of message %s could not be downloaded: %s", message_id, error)
            return 0
        raise self.retry(countdown=min(5 * 2**self.request.retries, 300)) from error
    except (OperationalError, InterfaceError) as error:
        raise self.retry(countdown=min(5 * 2**self.request.retries, 300)) from error


@shared_task(bind=True, acks_late=True, max_retries=5)
def record_status_later(self: Task, message_sid: str, status: str, error_code: str, error_message: str) -> str:
    """A status callback that arrived before the deliverer stored the message's sid, applied again."""
    recorded = delivery.record_status(services.CHANNEL, message_sid, status, error_code or None, error_message)
    if recorded == "unknown":
        if self.request.retries >= (self.max_retries or 0):
            services.logger.info("Status %s for %s: no such WhatsApp message was sent", status, message_sid)
            return recorded
        raise self.retry(countdown=2 * 2**self.request.retries)
    return recorded
