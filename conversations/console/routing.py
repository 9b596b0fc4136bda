"""Staff sockets (behind the hosts-only origin validator and the session user)."""

from django.urls import path

from conversations.console.consumers import ConsoleConsumer, MonitorConsumer

websocket_urlpatterns = [
    path("ws/console/", ConsoleConsumer.as_asgi()),
    path("ws/monitor/", MonitorConsumer.as_asgi()),
]
