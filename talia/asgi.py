"""ASGI entry point: HTTP through Django, WebSockets through the apps' routes.

Staff sockets have their origin checked against ALLOWED_HOSTS and carry the session user; the visitor's
web chat socket is embedded on customers' sites and checks TALIA_WEBCHAT_ALLOWED_ORIGINS itself.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "talia.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs the app registry loaded)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import re_path  # noqa: E402

from talia.observability import SocketObservability  # noqa: E402
from talia.routing import staff_routes, voice_routes, webchat_routes  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # A request id per socket, on the log lines of everything the socket does.
        "websocket": SocketObservability(
            URLRouter(
                [
                    *webchat_routes,
                    *voice_routes,
                    re_path(r"", AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(staff_routes)))),
                ]
            )
        ),
    }
)
