from django.contrib import admin
from django.urls import include, path

from config.health import healthz, live, ready

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("annotate.api.urls")),
    path("healthz", healthz, name="healthz"),
    path("healthz/live", live, name="healthz-live"),
    path("healthz/ready", ready, name="healthz-ready"),
    path("dashboard/", include("annotate.urls_dashboard")),
    path("", include("annotate.urls")),
]
