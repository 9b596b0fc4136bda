"""Celery tasks of the leads app."""

from __future__ import annotations

from celery import shared_task

from leads import analysis


@shared_task
def analyse_conversations() -> int:
    """Beat: read again the conversations closed or quiet since their last analysis (every channel)."""
    return len(analysis.analyse_pending())
