from django.urls import path

from talia.integrations.api import views

app_name = "integrations_api"

urlpatterns = [
    path("api/v1/contacts", views.ContactList.as_view(), name="contacts"),
    path("api/v1/contacts/<uuid:pk>", views.ContactDetail.as_view(), name="contact"),
    path("api/v1/contacts/<uuid:pk>/export", views.ContactExport.as_view(), name="contact-export"),
    path("api/v1/contacts/<uuid:pk>/erase", views.ContactErase.as_view(), name="contact-erase"),
    path("api/v1/conversations", views.ConversationList.as_view(), name="conversations"),
    path("api/v1/conversations/<uuid:pk>", views.ConversationDetail.as_view(), name="conversation"),
    path("api/v1/conversations/<uuid:pk>/messages", views.ConversationMessages.as_view(), name="messages"),
    path("api/v1/leads", views.LeadList.as_view(), name="leads"),
    path("api/v1/leads/<int:pk>", views.LeadDetail.as_view(), name="lead"),
    path("api/v1/leads/<int:pk>/move", views.LeadMove.as_view(), name="lead-move"),
    path("api/v1/meetings", views.MeetingList.as_view(), name="meetings"),
    path("api/v1/meetings/<uuid:pk>", views.MeetingDetail.as_view(), name="meeting"),
    path("api/v1/events", views.EventFeed.as_view(), name="events"),
    path("api/v1/messages", views.SendMessage.as_view(), name="send-message"),
]
