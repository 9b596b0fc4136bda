from django.urls import path

from channels_whatsapp import api, devphone, views

app_name = "whatsapp"

urlpatterns = [
    path("api/v1/whatsapp/webhook", views.webhook, name="webhook"),
    # The path Twilio's console examples use; the same view.
    path("webhooks/twilio/whatsapp", views.webhook, name="webhook-alias"),
    path("api/v1/whatsapp/status", views.status, name="status"),
    path("api/v1/whatsapp/conversations", api.ConversationsView.as_view(), name="conversations"),
    path("api/v1/whatsapp/conversations/<uuid:pk>/messages", api.MessagesView.as_view(), name="messages"),
    path(
        "api/v1/whatsapp/process-conversations",
        api.ProcessConversationsView.as_view(),
        name="process-conversations",
    ),
    # The dev phone: DEBUG and staff only.
    path("dev/phone/", devphone.phone, name="dev-phone"),
    path("dev/phone/send", devphone.send, name="dev-phone-send"),
    path("dev/phone/messages", devphone.messages, name="dev-phone-messages"),
]
