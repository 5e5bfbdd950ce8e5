"""Run the agent's collector on a captured tree and push the result through the ingest path."""
import tarfile
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from agent.paths import Root
from agent.snapshot import build
from fleet.ingest.services import snapshot_receive_document
from fleet.ingest.tasks import snapshot_queue_apply
from fleet.inventory.models import Host


def capture_document(source: Path, *, hostname: str | None = None) -> dict:
    """The snapshot of an extracted capture root or a capture `.tar.gz`, hostname optionally overridden."""
    if source.is_file():
        with tempfile.TemporaryDirectory(prefix="capture-") as tmp:
            with tarfile.open(source) as tar:
                tar.extractall(tmp, filter="fully_trusted")  # the kernel's symlinks must survive; operator-supplied file
            document = build(Root.of(tmp))
    elif source.is_dir():
        document = build(Root.of(source))
    else:
        raise FileNotFoundError(source)
    if hostname:
        document["host"]["hostname"] = hostname
    return document


class Command(BaseCommand):
    help = "Collect a capture (extracted root or .tar.gz) with the agent and ingest it as that host's snapshot"

    def add_arguments(self, parser):
        parser.add_argument("source", help="capture root directory or .tar.gz")
        parser.add_argument("--host", default=None, help="hostname to file it under (created if needed)")

    def handle(self, *args, source, host, **options):
        try:
            document = capture_document(Path(source), hostname=host)
        except (FileNotFoundError, tarfile.TarError) as exc:
            raise CommandError(f"cannot read capture {source}: {exc}") from None
        hostname = document["host"]["hostname"]
        if not isinstance(hostname, str) or not hostname:
            raise CommandError("the capture has no hostname; pass --host NAME")
        target, _ = Host.objects.get_or_create(hostname=hostname)
        result = snapshot_receive_document(host=target, document=document, queue=snapshot_queue_apply)
        if result.http_status >= 400:
            raise CommandError(f"refused ({result.http_status}): {result.body}")
        self.stdout.write(f"{hostname}: snapshot {result.body.get('id')} {result.body.get('status')}")
