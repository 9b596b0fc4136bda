from django.urls import include, path

from leads import api, sidebar, views

urlpatterns = [
    path("console/meetings/", views.meetings, name="meetings"),
    path("console/meetings/new-feed-url", views.new_feed_url, name="meetings-new-feed-url"),
    path("console/meetings/<uuid:event_id>.ics", views.event_ics, name="meeting-ics"),
    path("console/meetings/<uuid:event_id>/confirm", views.confirm_meeting, name="meeting-confirm"),
    path("console/meetings/<uuid:event_id>/reschedule", views.reschedule_meeting, name="meeting-reschedule"),
    path("console/api/conversations/<uuid:conversation_id>/lead-stage", sidebar.lead_stage, name="console-lead-stage"),
    path("calendar/<str:token>.ics", views.calendar_feed, name="calendar-feed"),
    path("api/v1/conversations/analyze", api.AnalyzeView.as_view(), name="conversations-analyze"),
    path("", include("leads.dashboard_urls")),
]
