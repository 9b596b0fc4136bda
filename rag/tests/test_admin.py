"""The knowledge base in Django admin: every page renders, and "ingest now" queues a job."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from rag import ingest
from rag.models import IngestJob, IngestStatus, KnowledgeSource


@pytest.fixture
def staff_client(django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("admin", "admin@example.com", "x"))
    return client


def test_every_knowledge_base_page_renders(staff_client):
    ingest.start_ingest("https://clinica.example/", enqueue=False)

    for model in ("knowledgesource", "ingestjob", "document"):
        url = reverse(f"admin:rag_{model}_changelist")
        assert staff_client.get(url).status_code == 200, url
        assert staff_client.get(url, {"q": "clinica"}).status_code == 200, url
    job = IngestJob.objects.get()
    assert staff_client.get(reverse("admin:rag_ingestjob_change", args=[job.pk])).status_code == 200


def test_the_ingest_now_action_queues_a_job(staff_client):
    source = KnowledgeSource.objects.create(site_url="https://clinica.example/", allowed_domain="clinica.example")

    response = staff_client.post(
        reverse("admin:rag_knowledgesource_changelist"),
        {"action": "ingest_now", "_selected_action": [source.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "1 sitio en cola para indexar." in response.content.decode()
    job = IngestJob.objects.get(source=source)
    assert job.status == IngestStatus.QUEUED and job.requested_by is not None
