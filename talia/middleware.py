"""Run the whole middleware stack in the request's one thread, not hop by hop.

Django runs an async-capable middleware (every MiddlewareMixin one: sessions, locale, CSRF, auth, ...)
asynchronously when the handler inside it is async, and then each of its process_request and
process_response is a thread hop of its own (sync_to_async). WhiteNoise is sync only, so the
middleware above it already run in the request's thread: with the async view handler innermost, a
request went into that thread, back to the event loop below WhiteNoise, then hopped into the thread and
back again for each of the middleware below it (about a dozen hops per request, py-spy's largest
share of Daphne's time on the message path).

SyncStack, last in MIDDLEWARE and sync only, makes every middleware above it run synchronously in the
request's thread: one hop in for the whole stack, one back to the loop for an async view (whose own
`sync_to_async` calls then run in that same thread, which is waiting for it). A sync view is called in
that thread too. The middleware themselves do exactly what they did; only where they run changes.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest
from django.http.response import HttpResponseBase


class SyncStack:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)
