"""Celery tasks of the knowledge base. Thin: they take ids and call the pipeline."""

from __future__ import annotations

from celery import shared_task

from rag import ingest


@shared_task(acks_late=True)
def ingest_source(job_id: str) -> str:
    """Run one ingest job; a redelivered task finds the job taken and does nothing."""
    return str(ingest.run_ingest(job_id).status)
