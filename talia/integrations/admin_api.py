"""Admin for integrator API tokens: staff create them (the full token is shown once), revoke them, and read
the audit of what each one wrote."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from talia.integrations.models import ApiAuditEntry, ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "scope", "personal_data", "created_by", "created", "last_used_at", "revoked_at"]
    list_filter = ["scope", "personal_data", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    fields = ["name", "scope", "personal_data", "prefix", "created_by", "created", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_by", "created", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        obj.created_by_id = request.user.pk
        token = obj.issue()
        super().save_model(request, obj, form, change)
        # The only time the full token exists outside the caller's hands: it is stored hashed.
        messages.warning(
            request,
            _("The token for “%(name)s” is %(token)s — copy it now: it will not be shown again.")
            % {"name": obj.name, "token": token},
        )

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = sum(token.revoke() for token in queryset)
        self.message_user(
            request,
            ngettext("%(count)d token revoked.", "%(count)d tokens revoked.", revoked) % {"count": revoked},
            messages.SUCCESS,
        )


@admin.register(ApiAuditEntry)
class ApiAuditEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "token", "method", "path", "object_type", "object_id", "action"]
    list_filter = ["action", "object_type", "token"]
    search_fields = ["path", "object_id", "summary"]
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
