"""Who may see and do what on the dashboard: the one place page permissions are decided.

Reading any page needs a logged-in user with a role (the accounts app's "view" capability);
anonymous users go to the login page, users without a role get 403. Changing a violation's
state (acknowledge, waive) needs the "waive" capability (security reviewers, admins,
superusers) or the policy app's `change_violation` permission granted directly. Accepting a
host's IOMMU groups as its baseline needs "accept_baseline" (operators, security reviewers, admins).
Views ask here, never decide themselves.
"""
from __future__ import annotations

from fleet.accounts.access import require_capability
from fleet.accounts.roles import user_can

TRIAGE_PERMISSION = "policy.change_violation"


def can_view(user) -> bool:
    return user_can(user, "view")


def can_triage(user) -> bool:
    return bool(user.is_authenticated and (user_can(user, "waive") or user.has_perm(TRIAGE_PERMISSION)))


def can_accept_baseline(user) -> bool:
    return user_can(user, "accept_baseline")


viewer_required = require_capability(can_view)
baseline_required = require_capability(can_accept_baseline)
triage_required = require_capability(can_triage)
