"""Issue, revoke, rotate and list host tokens. A token is printed once; only its hash is stored."""
from django.core.management.base import BaseCommand, CommandError

from agent.terminal import clean

from fleet.ingest.models import HostToken
from fleet.ingest.services import host_token_create, host_token_revoke, host_token_rotate
from fleet.inventory.models import Host


class Command(BaseCommand):
    help = "Manage per-host agent tokens: create HOSTNAME | revoke HOSTNAME | rotate HOSTNAME | list"

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="issue a token (creates the host, pending enrollment)")
        create.add_argument("hostname")
        create.add_argument("--role", default=None)
        create.add_argument("--label", action="append", default=[], help="may be repeated")
        sub.add_parser("revoke", help="revoke every active token of a host").add_argument("hostname")
        sub.add_parser("rotate", help="revoke the host's tokens and print a new one").add_argument("hostname")
        sub.add_parser("list", help="list tokens (never the secrets)")

    def handle(self, *args, action, **options):
        if action == "create":
            host, secret = host_token_create(hostname=options["hostname"], role=options["role"], labels=options["label"])
            self.stderr.write(f"token for {host.hostname} (shown once, store it in the agent's --token-file):")
            self.stdout.write(secret)
        elif action == "revoke":
            if not Host.objects.filter(hostname=options["hostname"]).exists():
                raise CommandError(f"no host {options['hostname']!r}")
            count = host_token_revoke(hostname=options["hostname"])
            self.stdout.write(f"revoked {count} token(s) of {options['hostname']}")
        elif action == "rotate":
            try:
                secret = host_token_rotate(hostname=options["hostname"])
            except Host.DoesNotExist:
                raise CommandError(f"no host {options['hostname']!r}") from None
            self.stderr.write(f"new token for {options['hostname']} (old ones revoked; shown once):")
            self.stdout.write(secret)
        else:
            for token in HostToken.objects.select_related("host").order_by("host__hostname", "created_at"):
                state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "active"
                used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
                self.stdout.write(f"{clean(token.host.hostname)}\t{token.pk}\t{state}\tcreated {token.created_at:%Y-%m-%d %H:%M}\tlast used {used}")
