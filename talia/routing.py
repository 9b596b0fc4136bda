"""WebSocket routes of every app, gathered in one place (each app adds its own as it lands)."""

from channels_voice.routing import websocket_urlpatterns as voice_routes
from channels_web.routing import websocket_urlpatterns as webchat_routes
from conversations.console.routing import websocket_urlpatterns as staff_routes

# Staff sockets (console, monitor) accept only this site's own origins and carry the session user;
# the visitor's socket lives on customers' sites and checks origins itself; Twilio's media streams
# carry no browser origin and present a signed stream token instead.
__all__ = ["staff_routes", "voice_routes", "webchat_routes"]
