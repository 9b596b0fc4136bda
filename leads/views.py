"""Meetings for agents: the upcoming list (confirm or reschedule each one there), one `.ics` per meeting,
and each user's private calendar feed."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from conversations.console.permissions import agent_required, is_agent
from leads.calendar import calendar_of
from leads.models import CalendarFeed, LeadMovement, ScheduledEvent, new_feed_token
from leads.tools import change_meeting

FEED_PAST_DAYS = 30
UPCOMING_LIMIT = 200


def _back(request: HttpRequest) -> HttpResponse:
    """Back where the form was (the conversation's contact sidebar sends `next`), else the meetings page."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect("meetings")


def _ics(body: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@agent_required
def meetings(request: HttpRequest) -> HttpResponse:
    feed, _ = CalendarFeed.objects.get_or_create(user=request.user)
    upcoming = (
        ScheduledEvent.objects.filter(start__gte=timezone.now() - timedelta(hours=1))
        .exclude(status=ScheduledEvent.Status.CANCELLED)
        .select_related("contact", "conversation")[:UPCOMING_LIMIT]
    )
    feed_url = request.build_absolute_uri(f"/calendar/{feed.token}.ics")
    return render(request, "leads/meetings.html", {"meetings": upcoming, "feed_url": feed_url})


class RescheduleForm(forms.Form):
    start = forms.DateTimeField(input_formats=["%Y-%m-%dT%H:%M"])

    def clean_start(self) -> object:
        start = self.cleaned_data["start"]
        if start <= timezone.now():
            raise forms.ValidationError(_("Choose a moment in the future."))
        return start


@agent_required
@require_POST
def confirm_meeting(request: HttpRequest, event_id: str) -> HttpResponse:
    """An agent confirms a proposed meeting (the contact agreed by other means, or the team accepts it)."""
    event = get_object_or_404(ScheduledEvent, pk=event_id)
    if event.status == ScheduledEvent.Status.CANCELLED:
        messages.error(request, _("A cancelled meeting cannot be confirmed; reschedule it instead."))
    else:
        change_meeting(event, status=ScheduledEvent.Status.CONFIRMED, changed_by=LeadMovement.MovedBy.AGENT)
        messages.success(request, _("Meeting “%(title)s” confirmed.") % {"title": event.title})
    return _back(request)


@agent_required
@require_POST
def reschedule_meeting(request: HttpRequest, event_id: str) -> HttpResponse:
    """An agent moves a meeting to another day and time; it is confirmed at the new time."""
    event = get_object_or_404(ScheduledEvent, pk=event_id)
    form = RescheduleForm(request.POST)
    if not form.is_valid():
        problem = " ".join(str(error) for errors in form.errors.values() for error in errors)
        messages.error(request, _("The meeting was not moved: %(problem)s") % {"problem": problem})
        return _back(request)
    taken = (
        ScheduledEvent.objects.filter(conversation=event.conversation, start=form.cleaned_data["start"])
        .exclude(pk=event.pk)
        .exists()
    )
    if taken:
        messages.error(request, _("This conversation already has a meeting at that time."))
        return _back(request)
    change_meeting(
        event,
        start=form.cleaned_data["start"],
        status=ScheduledEvent.Status.CONFIRMED,
        changed_by=LeadMovement.MovedBy.AGENT,
    )
    messages.success(request, _("Meeting “%(title)s” moved.") % {"title": event.title})
    return _back(request)


@agent_required
@require_POST
def new_feed_url(request: HttpRequest) -> HttpResponse:
    """A leaked feed URL is revoked by giving the user a new one."""
    CalendarFeed.objects.update_or_create(user=request.user, defaults={"token": new_feed_token()})
    return redirect("meetings")


@agent_required
@require_GET
def event_ics(request: HttpRequest, event_id: str) -> HttpResponse:
    event = get_object_or_404(ScheduledEvent.objects.select_related("contact"), pk=event_id)
    return _ics(calendar_of([event], event.title), f"meeting-{event.pk}.ics")


@require_GET
def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """The secret-token feed calendar apps subscribe to (they cannot sign in): meetings from 30 days ago on.

    The token stands in for a sign-in, so the account is checked as the console checks it, on every request:
    a user who is no longer an agent (removed from the group, deactivated, no longer staff) gets a 404.
    """
    feed = CalendarFeed.objects.select_related("user").filter(token=token).first()
    if feed is None or not is_agent(feed.user):
        raise Http404("Unknown calendar feed")
    events = (
        ScheduledEvent.objects.filter(start__gte=timezone.now() - timedelta(days=FEED_PAST_DAYS))
        .exclude(status=ScheduledEvent.Status.CANCELLED)
        .select_related("contact")
    )
    response = HttpResponse(calendar_of(events, "TalIA"), content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    return response
