from rest_framework import permissions

from fleet.accounts.models import ApiToken
from fleet.accounts.roles import user_can_view


class FleetReader(permissions.BasePermission):
    """Any role may read; a read-only token can never do more than read, whatever its user's role."""

    message = "Your account has no role that may read the fleet."

    def has_permission(self, request, view):
        if not user_can_view(request.user):
            return False
        if isinstance(request.auth, ApiToken) and not request.auth.write:
            return request.method in permissions.SAFE_METHODS
        return True
