from django.urls import path

from channels_voice import api, devphone, views

app_name = "voice"

urlpatterns = [
    path("api/voice/inbound", views.inbound, name="inbound"),
    path("api/voice/gather", views.gather, name="gather"),
    path("api/voice/wait", views.wait, name="wait"),
    path("api/voice/status", views.status, name="status"),
    path("api/voice/recording", views.recording, name="recording"),
    path("voice/recordings/<str:recording_sid>", views.play_recording, name="play-recording"),
    path("api/voice/calls", api.CallsView.as_view(), name="calls"),
    path("api/voice/calls/<str:call_sid>", api.CallView.as_view(), name="call"),
    # The dev phone's call tab (DEBUG, staff): the WhatsApp tab is /dev/phone/.
    path("dev/phone/call/", devphone.page, name="dev-call"),
    path("dev/phone/call/start", devphone.start, name="dev-call-start"),
    path("dev/phone/call/say", devphone.say, name="dev-call-say"),
    path("dev/phone/call/hangup", devphone.hangup, name="dev-call-hangup"),
]
