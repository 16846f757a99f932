"""The lead dashboard's URLs, included under `dashboard/` from `config/urls.py`."""

from django.urls import path

from annotate.views import dashboard, models_dashboard

urlpatterns = [
    path("", dashboard.index, name="dashboard"),
    path("<slug:slug>/", dashboard.campaign, name="dashboard-campaign"),
    path("<slug:slug>/arms/", dashboard.arms, name="dashboard-arms"),
    path("<slug:slug>/models/", models_dashboard.campaign_models, name="dashboard-models"),
    path("checkpoints/<int:pk>/", models_dashboard.checkpoint_detail, name="dashboard-checkpoint"),
]
