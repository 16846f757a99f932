"""Who may call what: staff (project leads, ML engineers) everything; labelers only `me/`."""

from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


def is_staff(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


class IsStaff(BasePermission):
    """Staff role: imports, exports, campaigns, generations, checkpoints, the schema."""

    message = "This endpoint needs a staff account."

    def has_permission(self, request: Request, view) -> bool:
        return is_staff(request.user)


class IsActiveUser(BasePermission):
    """Any signed-in, active account; objects are then filtered to the caller's own."""

    def has_permission(self, request: Request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active)
