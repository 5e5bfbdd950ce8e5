"""`manage.py violations [--host H] [--rule R] [--severity S] [--json]`: the open, unwaived violations."""
import json

from django.core.management.base import BaseCommand

from agent.terminal import clean

from fleet.policy.findings import CATALOGUE
from fleet.policy.selectors import violation_as_dict, violations_open
from fleet.policy.severity import SEVERITIES, SEVERITY_RANK


class Command(BaseCommand):
    help = "List open violations that no active waiver hides."

    def add_arguments(self, parser):
        parser.add_argument("--host")
        parser.add_argument("--rule", choices=sorted(CATALOGUE))
        parser.add_argument("--severity", choices=SEVERITIES)
        parser.add_argument("--json", action="store_true", help="one JSON array of violations")

    def handle(self, *args, **opts):
        rows = [violation_as_dict(v) for v in violations_open(host=opts["host"], rule=opts["rule"], severity=opts["severity"])]
        rows.sort(key=lambda r: (SEVERITY_RANK[r["severity"]], r["host"], r["rule"], r["subject"]))
        if opts["json"]:
            self.stdout.write(json.dumps(rows, indent=2, sort_keys=True))
            return
        if not rows:
            self.stdout.write("no open violations")
            return
        for r in rows:
            # Hosts name their devices and VMs: an escape sequence in one must not reach the operator's terminal.
            r = {k: clean(v) for k, v in r.items()}
            self.stdout.write(f"{r['severity']:<8} {r['host']:<30} {r['rule']:<28} {r['subject']:<24} {r['message']}")
            self.stdout.write(f"{'':<8} fix: {r['remediation']}")
