from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from talia.health import health, live, ready
from talia.metrics_scrape import metrics

urlpatterns = [
    path("health", health, name="health"),
    path("health/live", live, name="health-live"),
    path("health/ready", ready, name="health-ready"),
    path("metrics", metrics, name="metrics"),
    path("", include("conversations.console.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("talia.integrations.api.urls")),
    path("", include("leads.urls")),
    path("", include("rag.api_urls")),
    path("", include("rag.urls")),  # the demo site under /demo-site/
    path("", include("channels_whatsapp.urls")),
    path("", include("channels_web.urls")),
    path("", include("channels_voice.urls")),
]

# Error answers: JSON on API paths, templates/<status>.html elsewhere (talia/errors.py).
handler400 = "talia.errors.bad_request"
handler403 = "talia.errors.permission_denied"
handler404 = "talia.errors.page_not_found"
handler500 = "talia.errors.server_error"
