"""WebSocket routes of every app, gathered in one list (each app adds its own as it lands)."""

from conversations.routing import websocket_urlpatterns as conversation_routes

websocket_urlpatterns = [*conversation_routes]
