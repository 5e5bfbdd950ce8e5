from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from fleet.accounts.models import ApiToken
from fleet.accounts.services import api_token_issue, api_token_revoke


class Command(BaseCommand):
    help = "User API tokens: `api_token create USER [--name N] [--write] [--scope preflight]`, `api_token revoke PREFIX`, `api_token list`."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="verb", required=True)
        create = sub.add_parser("create", help="issue a token; the secret is printed once")
        create.add_argument("username")
        create.add_argument("--name", default="")
        create.add_argument("--write", action="store_true", help="allow unsafe methods (default: read-only)")
        create.add_argument("--scope", action="append", default=[], choices=ApiToken.SCOPES,
                            help="grant one further call: preflight (POST /api/v1/preflight, for VM-start hooks)")
        revoke = sub.add_parser("revoke")
        revoke.add_argument("prefix")
        sub.add_parser("list")

    def handle(self, *args, verb, **options):
        if verb == "create":
            try:
                user = get_user_model().objects.get(username=options["username"])
            except get_user_model().DoesNotExist as exc:
                raise CommandError(f"no user {options['username']!r}") from exc
            _, secret = api_token_issue(user=user, name=options["name"], write=options["write"], scopes=tuple(options["scope"]))
            self.stdout.write(secret)
        elif verb == "revoke":
            tokens = list(ApiToken.objects.filter(prefix=options["prefix"], revoked_at__isnull=True))
            if len(tokens) != 1:
                raise CommandError(f"{len(tokens)} active tokens have prefix {options['prefix']!r}; need exactly one")
            api_token_revoke(token=tokens[0])
            self.stdout.write(f"revoked {tokens[0].prefix}")
        else:
            for t in ApiToken.objects.select_related("user"):
                self.stdout.write(f"{t.prefix}  {t.user.get_username()}  {t.name or '-'}  {'write' if t.write else 'read'}{''.join(f'+{s}' for s in t.scopes)}  {'revoked' if t.revoked_at else 'active'}")
