"""The project's URLs plus views that fail for real, for the error-page tests (talia/tests/test_errors.py)."""

from typing import Any

from adrf.views import APIView
from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

import talia.urls
from talia.redis_client import get_redis


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug with a secret in its traceback")


def redis_ping(request: HttpRequest) -> HttpResponse:
    get_redis().ping()  # against whatever REDIS_URL the test points at
    return HttpResponse("pong")


class RedisPingApi(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    async def get(self, request: Request) -> Response:
        get_redis().ping()
        return Response({"pong": True})


urlpatterns = [
    path("api/test/boom", boom),
    path("test/boom", boom),
    path("api/test/redis", RedisPingApi.as_view()),
    path("console/test/redis", redis_ping),
    *talia.urls.urlpatterns,
]

handler400 = talia.urls.handler400
handler403 = talia.urls.handler403
handler404 = talia.urls.handler404
handler500 = talia.urls.handler500
