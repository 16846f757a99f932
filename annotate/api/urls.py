"""/api/v1 routes. Included from config/urls.py under the `api` namespace."""

from django.urls import path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from annotate.api import docs, views
from annotate.api.permissions import IsStaff

app_name = "api"

urlpatterns = [
    # The API root is its reference page.
    path("", RedirectView.as_view(pattern_name="api:docs"), name="root"),
    path(
        "schema/",
        SpectacularAPIView.as_view(permission_classes=[IsStaff]),
        name="schema",
    ),
    path("docs/", docs.api_docs, name="docs"),
    path("me/", views.me, name="me"),
    path("me/token/", views.my_token, name="my-token"),
    path("me/assignments/", views.MyAssignmentList.as_view(), name="my-assignments"),
    path(
        "me/assignments/<int:pk>/",
        views.MyAssignmentDetail.as_view(),
        name="my-assignment-detail",
    ),
    path("campaigns/", views.CampaignList.as_view(), name="campaign-list"),
    path("campaigns/<slug:slug>/", views.CampaignDetail.as_view(), name="campaign-detail"),
    path("campaigns/<slug:slug>/problems/", views.ProblemList.as_view(), name="problem-list"),
    path(
        "campaigns/<slug:slug>/problems/upload/",
        views.problems_upload,
        name="problem-upload",
    ),
    path(
        "campaigns/<slug:slug>/problems/<int:pk>/",
        views.ProblemDetail.as_view(),
        name="problem-detail",
    ),
    path("campaigns/<slug:slug>/samples/", views.SampleList.as_view(), name="sample-list"),
    path("campaigns/<slug:slug>/samples/upload/", views.samples_upload, name="sample-upload"),
    path(
        "campaigns/<slug:slug>/samples/<int:pk>/",
        views.SampleDetail.as_view(),
        name="sample-detail",
    ),
    path(
        "campaigns/<slug:slug>/generations/",
        views.GenerationList.as_view(),
        name="generation-list",
    ),
    path(
        "campaigns/<slug:slug>/generations/<int:number>/",
        views.GenerationDetail.as_view(),
        name="generation-detail",
    ),
    path("campaigns/<slug:slug>/exports/prm800k/", views.export_prm800k, name="export-prm800k"),
    path(
        "campaigns/<slug:slug>/exports/stepwise/",
        views.export_stepwise,
        name="export-stepwise",
    ),
    path("checkpoints/", views.CheckpointList.as_view(), name="checkpoint-list"),
    path("checkpoints/<int:pk>/", views.CheckpointDetail.as_view(), name="checkpoint-detail"),
    path(
        "checkpoints/<int:pk>/activate/",
        views.checkpoint_activate,
        name="checkpoint-activate",
    ),
    path(
        "checkpoints/<int:pk>/evaluate/",
        views.checkpoint_evaluate,
        name="checkpoint-evaluate",
    ),
]
