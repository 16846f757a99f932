"""The lead dashboard's URLs, included under `dashboard/` from `config/urls.py`."""

from django.urls import path

from annotate.views import dashboard

urlpatterns = [
    path("", dashboard.index, name="dashboard"),
    path("<slug:slug>/", dashboard.campaign, name="dashboard-campaign"),
]
