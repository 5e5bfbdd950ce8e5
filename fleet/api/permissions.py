from rest_framework import permissions

from fleet.accounts.models import ApiToken
from fleet.accounts.roles import user_can, user_can_view


class FleetReader(permissions.BasePermission):
    """Any role may read; a read-only token can never do more than read, whatever its user's role."""

    message = "Your account has no role that may read the fleet."

    def has_permission(self, request, view):
        if not user_can_view(request.user):
            return False
        if isinstance(request.auth, ApiToken) and not request.auth.write:
            return request.method in permissions.SAFE_METHODS
        return True


class PreflightCaller(permissions.BasePermission):
    """A pre-flight (a POST that changes nothing) needs an API token with the `preflight` scope and a user who may read."""

    message = "A pre-flight needs an API token with the preflight scope (manage.py api_token create USER --scope preflight)."

    def has_permission(self, request, view):
        return (isinstance(request.auth, ApiToken) and "preflight" in (request.auth.scopes or [])
                and user_can_view(request.user))


class BaselineAcceptor(permissions.BasePermission):
    """Accepting a host's groups as its baseline: a write-scope token (or a session) of an operator or reviewer."""

    message = "Accepting a baseline needs a write token of an operator, security reviewer or admin."

    def has_permission(self, request, view):
        if not user_can(request.user, "accept_baseline"):
            return False
        return not (isinstance(request.auth, ApiToken) and not request.auth.write)
