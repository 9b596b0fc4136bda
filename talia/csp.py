"""Content-Security-Policy on the staff pages: the console, monitor, dashboard, sign-in and the admin.

These pages show text that contacts wrote; a policy that allows only TalIA's own scripts means a
markup-injection bug there cannot run code in an agent's session. None of them has an inline script, an
inline event handler or an inline style (the console's templates and static/console/*.js keep to that;
conversations/tests/test_csp_browser.py watches for violations in a real browser). The admin alone allows
inline styles: Django's change list writes a <style> element when a model has no actions.

A small middleware rather than a dependency: the policy is fixed, per path prefix. A response that
already carries a policy (a file download's sandbox) keeps its own.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase
from django.utils.deprecation import MiddlewareMixin

HEADER = "Content-Security-Policy"

_COMMON = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    # Thumbnails of contacts' files come from TalIA; data: and blob: for images drawn in the page.
    "img-src": "'self' data: blob:",
    "media-src": "'self' blob:",
    # fetch() and the console's WebSocket, both to TalIA's own origin ('self' covers ws:/wss: there).
    "connect-src": "'self'",
    "font-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def _render(directives: dict[str, str]) -> str:
    return "; ".join(f"{name} {value}" for name, value in directives.items())


STAFF_POLICY = _render(_COMMON)
ADMIN_POLICY = _render({**_COMMON, "style-src": "'self' 'unsafe-inline'"})

# Path prefixes and their policy; the first that matches applies.
POLICIES: tuple[tuple[str, str], ...] = (
    ("/console/", STAFF_POLICY),  # the queue, conversations, monitor, dashboard, meetings
    ("/accounts/", STAFF_POLICY),  # sign-in and sign-out
    ("/admin/", ADMIN_POLICY),
)


def policy_for(path: str) -> str | None:
    for prefix, policy in POLICIES:
        if path.startswith(prefix):
            return policy
    return None


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        policy = policy_for(request.path)
        if policy is not None and HEADER not in response:
            response[HEADER] = policy
        return response
