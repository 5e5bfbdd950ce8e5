"""Who may see and do what on the dashboard: the one place page permissions are decided.

Every page needs a logged-in user. Changing a violation's state (acknowledge, waive) needs the
accounts app's "waive" capability (security reviewers, admins, superusers) or the policy app's
`change_violation` permission granted directly. Views ask here, never decide themselves.
"""
from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from fleet.accounts.roles import user_can

TRIAGE_PERMISSION = "policy.change_violation"


def can_triage(user) -> bool:
    return bool(user.is_authenticated and (user_can(user, "waive") or user.has_perm(TRIAGE_PERMISSION)))


def viewer_required(view):
    """Any logged-in user may read."""
    return login_required(view)


def triage_required(view):
    """Logged in and allowed to acknowledge or waive violations; others get 403."""
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not can_triage(request.user):
            raise PermissionDenied("acknowledging or waiving violations needs the policy.change_violation permission")
        return view(request, *args, **kwargs)
    return login_required(wrapper)
