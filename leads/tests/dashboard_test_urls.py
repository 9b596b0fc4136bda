"""The project's URLs with the dashboard's in front, until talia.urls includes them itself."""

from django.urls import include, path

import talia.urls

urlpatterns = [path("", include("leads.dashboard_urls")), *talia.urls.urlpatterns]
