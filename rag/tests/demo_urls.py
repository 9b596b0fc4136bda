"""The demo site on its own, mounted as talia/urls.py mounts it."""

from django.urls import include, path

urlpatterns = [path("", include("rag.urls"))]
