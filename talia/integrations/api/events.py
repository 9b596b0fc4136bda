"""The integrator API's own event, declared in IntegrationsConfig.ready()."""

from __future__ import annotations

from conversations.events import spec

# A contact's personal data erased on request (GDPR): counts only, never what was erased.
CONTACT_ERASED = spec("contact_erased", "Contact erased on request (GDPR)", "conversations", "messages", "by")
