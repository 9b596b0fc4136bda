"""The knowledge-base API (staff only, session auth with CSRF): start an ingest, follow it, search."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.console.permissions import IsSupervisor
from rag import ingest, retrieval
from rag.models import IngestJob
from talia.api import ApiError


class IngestRequestSerializer(serializers.Serializer):
    site = serializers.URLField(max_length=500, help_text="The site to read, e.g. https://www.example.com/")
    max_pages = serializers.IntegerField(min_value=1, max_value=5000, required=False)


def job_payload(job: IngestJob) -> dict[str, Any]:
    return {
        "id": str(job.pk),
        "site": job.source.site_url,
        "status": job.status,
        "max_pages": job.max_pages,
        "fetched": job.fetched,
        "indexed": job.indexed,
        "skipped": job.skipped,
        "failed": job.failed,
        "removed": job.removed,
        "chunks": job.chunks,
        "error": job.error,
        "log": job.log,
        "created": job.created.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def job_fields() -> dict[str, Any]:
    count = serializers.IntegerField
    return {
        "id": serializers.UUIDField(),
        "site": serializers.URLField(),
        "status": serializers.ChoiceField(choices=["queued", "running", "completed", "failed"]),
        "max_pages": count(),
        "fetched": count(),
        "indexed": count(),
        "skipped": count(),
        "failed": count(),
        "removed": count(),
        "chunks": count(),
        "error": serializers.CharField(),
        "log": serializers.JSONField(),
        "created": serializers.DateTimeField(),
        "started_at": serializers.DateTimeField(allow_null=True),
        "finished_at": serializers.DateTimeField(allow_null=True),
    }


JOB = inline_serializer("IngestJobResponse", {"job": inline_serializer("IngestJob", job_fields())})
SEARCH = inline_serializer(
    "SearchResponse",
    {
        "query": serializers.CharField(),
        "results": inline_serializer(
            "SearchHit",
            {
                "url": serializers.URLField(),
                "title": serializers.CharField(),
                "heading": serializers.CharField(),
                "snippet": serializers.CharField(),
                "score": serializers.FloatField(),
                "coverage": serializers.FloatField(),
                "similarity": serializers.FloatField(allow_null=True),
            },
            many=True,
        ),
    },
)


class StaffView(APIView):
    permission_classes = [IsSupervisor]


class IngestView(StaffView):
    @extend_schema(
        summary="Read a site into the knowledge base (202: the job runs in the background)",
        request=IngestRequestSerializer,
        responses={202: JOB},
    )
    def post(self, request: Request) -> Response:
        body = IngestRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            job = ingest.start_ingest(
                body.validated_data["site"], max_pages=body.validated_data.get("max_pages"), user=request.user
            )
        except ingest.IngestError as exc:
            raise ApiError(400, "invalid_site", str(exc)) from None
        return Response({"job": job_payload(job)}, status=status.HTTP_202_ACCEPTED)


class IngestJobView(StaffView):
    @extend_schema(summary="An ingest job's status and figures", responses={200: JOB})
    def get(self, request: Request, job_id: str) -> Response:
        job = get_object_or_404(IngestJob.objects.select_related("source"), pk=job_id)
        return Response({"job": job_payload(job)})


class SearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(max_length=retrieval.MAX_QUERY, trim_whitespace=True)
    limit = serializers.IntegerField(min_value=1, max_value=20, required=False)


class SearchView(StaffView):
    @extend_schema(
        summary="Search the knowledge base as the assistant does (hybrid, ranked)",
        parameters=[OpenApiParameter("q", str, required=True), OpenApiParameter("limit", int)],
        responses={200: SEARCH},
    )
    def get(self, request: Request) -> Response:
        query = SearchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        hits = retrieval.search(
            query.validated_data["q"], limit=query.validated_data.get("limit") or settings.TALIA_RAG_RESULTS
        )
        return Response(
            {
                "query": query.validated_data["q"],
                "results": [
                    {
                        "url": hit.url,
                        "title": hit.title,
                        "heading": hit.heading,
                        "snippet": hit.snippet,
                        "score": hit.score,
                        "coverage": hit.coverage,
                        "similarity": hit.similarity,
                    }
                    for hit in hits
                ],
            }
        )
