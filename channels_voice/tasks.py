"""Celery tasks of the voice channel. Thin: they take ids and call a service."""

from __future__ import annotations

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from channels_voice import recordings

MAX_RETRIES = 6


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES)
def store_recording(self: Task, recording_id: int) -> str:
    """Download, encrypt and keep a call recording (then delete Twilio's copy when configured).

    Temporary failures are retried with backoff; a permanent one, or the last retry, marks it failed.
    """
    try:
        return recordings.store(recording_id)
    except recordings.RecordingError as error:
        if error.permanent or self.request.retries >= MAX_RETRIES:
            recordings.failed(recording_id, str(error))
            return "failed"
        raise self.retry(countdown=min(5 * 2**self.request.retries, 300)) from error
    except (OperationalError, InterfaceError) as error:
        raise self.retry(countdown=min(5 * 2**self.request.retries, 300)) from error
