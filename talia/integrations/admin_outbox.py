"""Admin for the event outbox: deliveries (read-only, with "Replay") and webhook endpoints (with their
recent deliveries and "Send a test event")."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from talia.integrations import publisher, webhooks
from talia.integrations.models import EventDelivery, WebhookEndpoint
from talia.integrations.sinks import DeliveryFailed

RECENT_DELIVERIES = 20


class SinkFilter(admin.SimpleListFilter):
    title = _("sink")
    parameter_name = "sink"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        keys = EventDelivery.objects.order_by().values_list("sink_key", flat=True).distinct()
        return [(key, key) for key in sorted(keys)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[EventDelivery]) -> QuerySet[EventDelivery]:
        return queryset.filter(sink_key=self.value()) if self.value() else queryset


@admin.register(EventDelivery)
class EventDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "event_id",
        "event_type",
        "sink_key",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
        "short_error",
    )
    list_filter = ("status", SinkFilter, "event__name")
    search_fields = ("event__id",)  # see get_search_results
    list_select_related = ("event",)
    actions = ("replay",)
    readonly_fields = [f.name for f in EventDelivery._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("event type"), ordering="event__name")
    def event_type(self, delivery: EventDelivery) -> str:
        return delivery.event.name

    @admin.display(description=_("last error"))
    def short_error(self, delivery: EventDelivery) -> str:
        return delivery.last_error[:80]

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> Any:
        """An event id (a number) or a conversation id (a UUID); any other text finds nothing."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.isdigit():
            return queryset.filter(event_id=int(term)), False
        try:
            return queryset.filter(conversation_id=uuid.UUID(term)), False
        except ValueError:
            return queryset.none(), False

    @admin.action(description=_("Replay (deliver again now)"), permissions=["view"])
    def replay(self, request: HttpRequest, queryset: QuerySet[EventDelivery]) -> None:
        count = publisher.replay(queryset)
        self.message_user(request, _("%(count)d deliveries will be delivered again.") % {"count": count})


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("__str__", "url", "active", "personal_data", "event_types", "updated")
    list_filter = ("active", "personal_data")
    search_fields = ("url", "description")
    readonly_fields = ("recent_deliveries", "created", "updated")
    fields = (
        "url",
        "description",
        "active",
        "event_types",
        "personal_data",
        "secret",
        "created",
        "updated",
        "recent_deliveries",
    )
    actions = ("send_test_event",)
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description=_("recent deliveries"))
    def recent_deliveries(self, endpoint: WebhookEndpoint) -> str:
        if endpoint.pk is None:
            return "-"
        rows = (
            EventDelivery.objects.filter(sink_key=endpoint.sink_key)
            .select_related("event")
            .order_by("-event_id")[:RECENT_DELIVERIES]
        )
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    d.event_id,
                    d.event.name,
                    d.get_status_display(),
                    d.last_status_code or "",
                    d.attempts,
                    d.last_error[:80],
                )
                for d in rows
            ),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            _("event"),
            _("type"),
            _("status"),
            _("status code"),
            _("attempts"),
            _("last error"),
            body,
        )

    @admin.action(description=_("Send a test event"))
    def send_test_event(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            try:
                code = webhooks.send_test(endpoint)
            except DeliveryFailed as error:
                self.message_user(
                    request,
                    _("%(endpoint)s did not accept the test event: %(reason)s")
                    % {"endpoint": endpoint, "reason": error.reason},
                    messages.ERROR,
                )
            else:
                self.message_user(
                    request,
                    _("%(endpoint)s accepted the test event (HTTP %(code)s).") % {"endpoint": endpoint, "code": code},
                )
