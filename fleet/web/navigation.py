"""What the top bar shows the signed-in user: their roles and the tools those roles open."""
from django.urls import reverse

from fleet.accounts.roles import ROLES, user_can_read_audit, user_roles


def navigation(request) -> dict:
    """Template context processor: `nav_roles` (e.g. "operator"), `nav_tools` [(label, url)]."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    held = user_roles(user)
    roles = [r for r in ROLES if r in held] or (["superuser"] if user.is_superuser else ["no role"])
    tools = []
    if user_can_read_audit(user):
        tools.append(("Audit log", reverse("accounts:audit")))
    if user.is_staff:
        tools.append(("Admin", reverse("admin:index")))
    tools.append(("API", reverse("api:docs")))
    return {"nav_roles": ", ".join(roles), "nav_tools": tools}
