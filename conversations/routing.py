"""WebSocket routes owned by conversations (the agent console and monitor sockets land here)."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
