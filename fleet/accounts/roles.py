"""The four roles, as Django groups with model permissions, and the questions pages ask about a user.

Permissions are named by pattern (`app.codename`, shell-style wildcards) because the apps that
own the models (inventory, ingest, policy) add models over time: `roles_sync` resolves the
patterns against the permissions that exist now and runs again after every `migrate`.
"""
from fnmatch import fnmatchcase

from django.contrib.auth.models import Group, Permission
from django.db import DEFAULT_DB_ALIAS

VIEWER = "viewer"
OPERATOR = "operator"
SECURITY_REVIEWER = "security-reviewer"
ADMIN = "admin"
ROLES = (VIEWER, OPERATOR, SECURITY_REVIEWER, ADMIN)

_READ = ("inventory.view_*", "policy.view_*", "ingest.view_snapshot")

ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    VIEWER: _READ,
    # Operators run the fleet: hosts (role, labels, enrollment), their agents' tokens, the alert webhooks.
    OPERATOR: _READ + ("inventory.change_host", "inventory.*_label", "ingest.*_hosttoken", "accounts.view_auditentry", "alerts.*"),
    # Reviewers own the policy: intent, waivers, acknowledgements.
    SECURITY_REVIEWER: _READ + ("policy.*", "accounts.view_auditentry"),
    ADMIN: ("*",),
}

# Roles whose members work in the Django admin (token admin, intent editing) and so need is_staff.
STAFF_ROLES = {OPERATOR, SECURITY_REVIEWER, ADMIN}

# What each capability needs; a superuser has them all.
_CAPABILITIES: dict[str, frozenset[str]] = {
    "view": frozenset(ROLES),
    "manage_hosts": frozenset({OPERATOR, ADMIN}),
    "waive": frozenset({SECURITY_REVIEWER, ADMIN}),
    "edit_intent": frozenset({SECURITY_REVIEWER, ADMIN}),
    "read_audit": frozenset({OPERATOR, SECURITY_REVIEWER, ADMIN}),
    # Accepting a host's IOMMU groups as its new baseline: operators (who changed the hardware) and reviewers.
    "accept_baseline": frozenset({OPERATOR, SECURITY_REVIEWER, ADMIN}),
}


def permissions_for(role: str, available: list[str]) -> list[str]:
    """The `app.codename` strings among `available` that `role` gets."""
    patterns = ROLE_PERMISSIONS[role]
    return sorted(p for p in available if any(fnmatchcase(p, pattern) for pattern in patterns))


def user_roles(user) -> set[str]:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    cached = getattr(user, "_fleet_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user._fleet_roles = cached
    return cached


def user_can(user, capability: str) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return bool(user_roles(user) & _CAPABILITIES[capability])


def user_can_view(user) -> bool:
    return user_can(user, "view")


def user_can_manage_hosts(user) -> bool:
    return user_can(user, "manage_hosts")


def user_can_waive(user) -> bool:
    return user_can(user, "waive")


def user_can_acknowledge(user) -> bool:
    return user_can(user, "waive")


def user_can_edit_intent(user) -> bool:
    return user_can(user, "edit_intent")


def user_can_read_audit(user) -> bool:
    return user_can(user, "read_audit")


def roles_sync() -> dict[str, int]:
    """Create the role groups and give each exactly the permissions its patterns match. Idempotent."""
    perms = {f"{p.content_type.app_label}.{p.codename}": p for p in Permission.objects.select_related("content_type")}
    counts = {}
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        chosen = [perms[name] for name in permissions_for(role, list(perms))]
        group.permissions.set(chosen)
        counts[role] = len(chosen)
    return counts


def roles_sync_after_migrate(sender, using=None, **kwargs) -> None:
    # post_migrate fires once per app; only the last one (ours or any) matters, so sync on each cheaply.
    if (using or DEFAULT_DB_ALIAS) != DEFAULT_DB_ALIAS:
        return
    roles_sync()
