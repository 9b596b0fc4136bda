"""Twilio's media streams. Not behind the hosts-only origin validator or the session middleware:
Twilio's servers send no browser Origin, and the stream checks its token itself."""

from typing import Any, cast

from django.urls import path

from channels_voice.consumers import MediaStreamApp

# An ASGI application, not a Django view: Channels' URLRouter calls it with (scope, receive, send).
websocket_urlpatterns = [path("api/voice/stream", cast(Any, MediaStreamApp()))]
