"""Labeler-facing URLs (home, queue, tasks) and the login/logout pages."""

from django.contrib.auth import views as auth_views
from django.urls import path

from annotate.views import labeling, review

urlpatterns = [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", labeling.home, name="labeler-home"),
    path("next/", labeling.next_task, name="labeling-next"),
    path("quality/", labeling.qc_feedback, name="qc-feedback"),
    path("tasks/<int:assignment_id>/", labeling.task, name="task"),
    path("tasks/<int:assignment_id>/rate/", labeling.rate, name="task-rate"),
    path("tasks/<int:assignment_id>/flag/", labeling.flag, name="task-flag"),
    path("tasks/<int:assignment_id>/undo/", labeling.undo, name="task-undo"),
    path("tasks/<int:assignment_id>/finish/", labeling.finish, name="task-finish"),
    path("tasks/<int:assignment_id>/heartbeat/", labeling.heartbeat, name="task-heartbeat"),
    path(
        "tasks/<int:assignment_id>/alternatives/",
        labeling.alternatives,
        name="task-alternatives",
    ),
    path(
        "tasks/<int:assignment_id>/alternatives/<int:alternative_id>/rate/",
        labeling.rate_alternative,
        name="task-rate-alternative",
    ),
    path("review/items/<int:pk>/", review.item, name="review-item"),
    path("review/items/<int:pk>/accept/", review.accept, name="review-accept"),
    path("review/items/<int:pk>/correct/", review.correct, name="review-correct"),
    path("review/items/<int:pk>/reject/", review.reject, name="review-reject"),
    path("review/<slug:slug>/", review.queue, name="review-queue"),
    path("review/<slug:slug>/agreement/", review.agreement, name="review-agreement"),
]
