from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from fleet.accounts.roles import ROLES, STAFF_ROLES, roles_sync
from fleet.accounts.services import audit_record


class Command(BaseCommand):
    help = "Manage the role groups: `roles sync`, `roles assign USER ROLE`, `roles remove USER ROLE`, `roles list`."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="verb", required=True)
        sub.add_parser("sync", help="create the role groups and (re)set their permissions")
        sub.add_parser("list", help="list users and their roles")
        for verb in ("assign", "remove"):
            p = sub.add_parser(verb)
            p.add_argument("username")
            p.add_argument("role", choices=ROLES)

    def handle(self, *args, verb, **options):
        if verb == "sync":
            for role, count in roles_sync().items():
                self.stdout.write(f"{role}: {count} permissions")
            return
        if verb == "list":
            for user in get_user_model().objects.order_by("username").prefetch_related("groups"):
                roles = sorted(g.name for g in user.groups.all() if g.name in ROLES)
                flags = " superuser" if user.is_superuser else ""
                self.stdout.write(f"{user.get_username()}: {', '.join(roles) or '-'}{flags}")
            return
        self._change(verb, options["username"], options["role"])

    @transaction.atomic
    def _change(self, verb, username, role):
        roles_sync()
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"no user {username!r}") from exc
        group = Group.objects.get(name=role)
        before = sorted(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        if verb == "assign":
            user.groups.add(group)
        else:
            user.groups.remove(group)
        after = sorted(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        # The Django admin is where tokens and intent are managed: those roles need staff access.
        staff = user.is_superuser or bool(set(after) & STAFF_ROLES)
        if user.is_staff != staff:
            user.is_staff = staff
            user.save(update_fields=["is_staff"])
        audit_record(action=f"role.{verb}", subject=f"user {username}", before={"roles": before}, after={"roles": after})
        self.stdout.write(f"{username}: {', '.join(after) or '-'}")
