"""`manage.py policy import FILE | export [FILE] | baseline accept HOST | sync [--host H] | expire-waivers`."""
import getpass
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from agent.files import write_atomic

from fleet.inventory.models import Host
from fleet.policy import selectors, services
from fleet.policy.intent import IntentError, parse_toml, to_toml


class Command(BaseCommand):
    help = "Declared intent (import/export TOML, accept group baselines) and policy re-evaluation."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser("import", help="replace the stored intent with FILE (audited, re-evaluates the fleet)")
        imp.add_argument("file")
        imp.add_argument("--by", help="who makes the change (audit); default cli:<login name>")
        exp = sub.add_parser("export", help="write the stored intent as TOML to FILE or stdout")
        exp.add_argument("file", nargs="?")
        base = sub.add_parser("baseline", help="group baselines")
        base_sub = base.add_subparsers(dest="baseline_action", required=True)
        acc = base_sub.add_parser("accept", help="record HOST's current IOMMU groups as accepted")
        acc.add_argument("host")
        acc.add_argument("--by", help="who accepts it (audit); default cli:<login name>")
        sync = sub.add_parser("sync", help="re-evaluate violations now")
        sync.add_argument("--host")
        sub.add_parser("expire-waivers", help="expire waivers past their date")

    def handle(self, *args, **opts):
        action = opts["action"]
        # The audit names a person: the login running the command unless --by says who asked for it.
        opts["by"] = opts.get("by") or _login()
        if action == "import":
            try:
                intent = parse_toml(Path(opts["file"]).read_text(encoding="utf-8"))
            except (OSError, IntentError) as exc:
                raise CommandError(f"{opts['file']}: {exc}") from exc
            change = services.intent_replace(intent=intent, user=opts["by"], source="import", summary=f"import {opts['file']}")
            self.stdout.write("intent unchanged" if change is None else f"intent imported (change {change.pk}); fleet re-evaluation queued")
        elif action == "export":
            text = to_toml(selectors.intent_current())
            if opts["file"]:
                # An export over the file an operator imports from must never leave half a policy behind.
                write_atomic(opts["file"], text.encode("utf-8"), mode=0o644)
            else:
                sys.stdout.write(text)
        elif action == "baseline":
            host = Host.objects.filter(hostname=opts["host"]).first()
            if host is None:
                raise CommandError(f"no host {opts['host']!r}")
            baseline = services.baseline_accept(host=host, user=opts["by"])
            self.stdout.write(f"baseline for {host.hostname}: {len(baseline.groups)} groups accepted")
        elif action == "sync":
            if opts["host"]:
                host = Host.objects.filter(hostname=opts["host"]).first()
                if host is None:
                    raise CommandError(f"no host {opts['host']!r}")
                counts = services.violations_sync_for_host(host=host)
            else:
                counts = services.violations_sync_fleet()
            self.stdout.write(" ".join(f"{k}={v}" for k, v in counts.items()))
        elif action == "expire-waivers":
            self.stdout.write(f"{services.waivers_expire()} waiver(s) expired")


def _login() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        return "cli"
