"""The visitor's socket. Not behind the hosts-only origin validator: the widget lives on customers'
sites, so the consumer checks origins itself against TALIA_WEBCHAT_ALLOWED_ORIGINS."""

from django.urls import path

from channels_web.consumers import WebchatConsumer

websocket_urlpatterns = [
    path("ws/webchat/", WebchatConsumer.as_asgi()),
    path("api/webchat/stream", WebchatConsumer.as_asgi()),
]
