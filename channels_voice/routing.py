"""Twilio's media streams. Not behind the hosts-only origin validator or the session middleware:
Twilio's servers send no browser Origin, and the stream checks its token itself."""

from django.urls import path

from channels_voice.consumers import MediaStreamApp

websocket_urlpatterns = [path("api/voice/stream", MediaStreamApp())]
