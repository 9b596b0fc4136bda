from django.urls import path

from conversations.console import api, views

urlpatterns = [
    path("console/", views.console, name="console"),
    path("console/monitor/", views.monitor, name="console-monitor"),
    path("console/conversations/<uuid:conversation_id>/", views.conversation_page, name="console-conversation"),
    path(
        "console/conversations/<uuid:conversation_id>/messages/<uuid:message_id>/attachments/<int:index>",
        views.attachment,
        name="console-attachment",
    ),
    path("console/api/presence", api.PresenceView.as_view(), name="console-presence"),
    path("console/api/offers", api.OffersView.as_view(), name="console-offers"),
    path("console/api/offers/<int:offer_id>/accept", api.OfferAcceptView.as_view(), name="console-offer-accept"),
    path("console/api/offers/<int:offer_id>/decline", api.OfferDeclineView.as_view(), name="console-offer-decline"),
    path(
        "console/api/conversations/<uuid:conversation_id>/transfer", api.TransferView.as_view(), name="console-transfer"
    ),
    path("console/api/conversations/<uuid:conversation_id>/claim", api.ClaimView.as_view(), name="console-claim"),
    path(
        "console/api/conversations/<uuid:conversation_id>/messages", api.MessagesView.as_view(), name="console-messages"
    ),
    path(
        "console/api/conversations/<uuid:conversation_id>/attachments",
        api.AttachmentsView.as_view(),
        name="console-attachments",
    ),
    path("console/api/conversations/<uuid:conversation_id>/close", api.CloseView.as_view(), name="console-close"),
    path("console/api/conversations/<uuid:conversation_id>/labels", api.LabelsView.as_view(), name="console-labels"),
    path(
        "console/api/conversations/<uuid:conversation_id>/take-over",
        api.TakeOverView.as_view(),
        name="console-take-over",
    ),
    path(
        "console/api/conversations/<uuid:conversation_id>/hand-back",
        api.HandBackView.as_view(),
        name="console-hand-back",
    ),
    path("console/api/conversations/<uuid:conversation_id>/contact", api.ContactView.as_view(), name="console-contact"),
    path("console/api/conversations/<uuid:conversation_id>/notes", api.NotesView.as_view(), name="console-notes"),
    path("console/api/conversations/<uuid:conversation_id>/whisper", api.WhisperView.as_view(), name="console-whisper"),
    path(
        "console/api/conversations/<uuid:conversation_id>/end-request",
        api.EndRequestView.as_view(),
        name="console-end-request",
    ),
    path(
        "console/api/conversations/<uuid:conversation_id>/reassign",
        api.ReassignView.as_view(),
        name="console-reassign",
    ),
]
