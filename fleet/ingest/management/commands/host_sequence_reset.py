"""Reset a host's applied sequence number when it is wrong (audited): docs/deploy.md, "A host's sequence"."""
from django.core.management.base import BaseCommand, CommandError

from agent.terminal import clean
from fleet.ingest.services.sequence import host_sequence_reset
from fleet.ingest.tasks import snapshot_queue_apply
from fleet.inventory import limits
from fleet.inventory.models import Host


def _seq(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) > limits.MAX_SEQ:
        raise CommandError(f"--to: a whole number from 0 to {limits.MAX_SEQ}")
    return int(value)


class Command(BaseCommand):
    help = ("Set HOSTNAME's applied seq back (default: to none, so its next report applies whatever its seq) and "
            "re-queue its latest report if it was superseded. Recorded in the audit log.")

    def add_arguments(self, parser):
        parser.add_argument("hostname")
        parser.add_argument("--to", default=None, help="the seq to keep instead of none (reports at or below it stay superseded)")

    def handle(self, *args, hostname, to, **options):
        try:
            result = host_sequence_reset(hostname=hostname, to=None if to is None else _seq(to), queue=snapshot_queue_apply)
        except Host.DoesNotExist:
            raise CommandError(f"no host {clean(hostname)!r}") from None
        requeued = f"; its latest report (snapshot {result['requeued']}) queued again" if result["requeued"] else ""
        self.stdout.write(f"{clean(hostname)}: applied seq {result['before']} -> {result['after']}{requeued}")
