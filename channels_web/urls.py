from django.urls import path

from channels_web import api, views

app_name = "webchat"

urlpatterns = [
    path("api/webchat/messages", api.MessagesView.as_view(), name="messages"),
    path("api/webchat/history/<str:session_id>", api.HistoryView.as_view(), name="history"),
    path("api/webchat/close", api.CloseView.as_view(), name="close"),
    path("api/webchat/leave", api.LeaveView.as_view(), name="leave"),
    path("api/webchat/handoff", api.HandoffView.as_view(), name="handoff"),
    path("api/webchat/handoff/cancel", api.HandoffCancelView.as_view(), name="handoff-cancel"),
    path("api/webchat/consent", api.ConsentView.as_view(), name="consent"),
    path("api/webchat/config", api.ConfigView.as_view(), name="config"),
    path("api/webchat/rating", api.RatingView.as_view(), name="rating"),
    path("api/webchat/transcript", api.TranscriptView.as_view(), name="transcript"),
    path("api/webchat/attachments", api.AttachmentsView.as_view(), name="attachments"),
    path("api/webchat/attachments/<uuid:message_id>/<int:index>", views.attachment, name="attachment"),
    path("api/webchat/details", api.DetailsView.as_view(), name="details"),
    path("widget.js", views.widget_js, name="widget-js"),
    path("chat/", views.chat_page, name="chat"),
    path("widget.html", views.chat_page, name="widget-html"),
    path("", views.demo, name="demo"),
]
