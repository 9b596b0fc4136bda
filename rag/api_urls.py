from django.urls import path

from rag import api

urlpatterns = [
    path("api/rag/ingest", api.IngestView.as_view(), name="rag-ingest"),
    path("api/rag/ingest/<uuid:job_id>", api.IngestJobView.as_view(), name="rag-ingest-job"),
    path("api/rag/search", api.SearchView.as_view(), name="rag-search"),
]
