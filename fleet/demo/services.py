"""The demo: a login and a fleet made of the real captures plus synthetic hosts, loaded through ingest.

Every snapshot goes through `fleet.ingest.services.snapshot_receive_document`, the path an
agent's push takes after authentication (validation, raw storage, the apply task, policy),
so the demo shows exactly what a real fleet would. What no snapshot carries — a host's
role and labels, and a host having gone quiet — is set the way an operator or time would.
"""
from __future__ import annotations

import itertools
import secrets
import tarfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path
from typing import Callable, Iterator

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from fleet.ingest.management.commands.import_capture import capture_document
from fleet.ingest.services import host_labels_add, host_role_set, snapshot_apply, snapshot_receive_document
from fleet.ingest.tasks import snapshot_queue_apply
from fleet.inventory.models import Host

from agent.files import write_atomic

from . import regroup, synth

REPO = Path(__file__).resolve().parents[2]
CAPTURES_DIR = REPO / "tests" / "fixtures" / "captures"
INTENT_FILE = Path(__file__).with_name("intent.toml")
CAPTURE_ROLE = "hypervisor"
CAPTURE_LABELS = ("capture", "lab")
LARGE_HOST_DEVICES = 480  # what the dashboard must keep readable (issue 5)
DEMO_USERNAME = "demo"
DEMO_PASSWORD_FILE = "demo-password"
DEMO_ROLE = "admin"  # fleet.accounts.roles.ADMIN: the demo user may look at and do everything


class DemoLoadError(RuntimeError):
    """A demo snapshot was refused by ingest (it would be refused from an agent too)."""


@dataclass(frozen=True)
class DemoHost:
    """One host of the demo fleet: its document and how an operator would file it."""

    document: dict
    role: str
    labels: tuple[str, ...]
    stale: bool = False


@transaction.atomic
def demo_password(var_dir: Path, given: str | None = None) -> str:
    """The demo login's password: `given` (then kept), else the one kept from an earlier run, else a new
    random one (then kept). Kept beside the demo database, readable by its owner only, so that a second
    `make demo` prints the same login a user may already have in a browser tab."""
    kept = var_dir / DEMO_PASSWORD_FILE
    if given is None:
        try:
            given = kept.read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError):
            given = None  # absent or unreadable: a new one replaces it
        if given is not None:
            return given
        given = secrets.token_urlsafe(12)
    write_atomic(kept, (given + "\n").encode("utf-8"), mode=0o600)
    return given


def demo_user_ensure(*, username: str = DEMO_USERNAME, password: str | None = None) -> str:
    """Create or reset the demo login; returns its password (a fresh random one unless given)."""
    from fleet.accounts.roles import roles_sync

    password = password or secrets.token_urlsafe(12)
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.set_password(password)
    user.is_active = True
    user.is_staff = True  # the admin role works in the Django admin too (tokens, intent)
    user.save()
    roles_sync()
    user.groups.add(Group.objects.get(name=DEMO_ROLE))
    return password


def demo_intent_load() -> None:
    """Replace the stored intent with the demo's (tenants, roles, the passthrough GPU expectation)."""
    from fleet.policy.intent import parse_toml
    from fleet.policy.services import intent_replace

    intent_replace(intent=parse_toml(INTENT_FILE.read_text(encoding="utf-8")), source="demo", summary="demo fleet intent")


def capture_hosts(captures_dir: Path = CAPTURES_DIR) -> Iterator[DemoHost]:
    """Every real capture, collected by the agent from its extracted tree (hostname from its etc/hostname)."""
    for archive in sorted(captures_dir.glob("*.tar.gz")):
        yield DemoHost(document=capture_document(archive), role=CAPTURE_ROLE, labels=CAPTURE_LABELS)


def synthetic_documents(count: int, *, large: int = 0, seed: int = 0) -> Iterator[dict]:
    """`count` hosts of the synthetic fleet, then `large` hosts of 480+ devices (the DGX-2H replicated)."""
    yield from synth.fleet(count, seed=seed)
    for k in range(large):
        yield synth.large_host(LARGE_HOST_DEVICES, seed=seed + k)


def synthetic_hosts(count: int, *, large: int = 0, seed: int = 0, now: datetime | None = None) -> Iterator[DemoHost]:
    """The synthetic documents, reported just now (a "stale" one a few days ago)."""
    now = now or datetime.now(dt_timezone.utc)
    for doc in synthetic_documents(count, large=large, seed=seed):
        meta = doc["synthetic"]
        stale = meta["scenario"] == "stale"
        collected = now - timedelta(days=synth.STALE_DAYS) if stale else now
        doc["collected_at"] = collected.strftime("%Y-%m-%dT%H:%M:%SZ")
        yield DemoHost(document=doc, role=meta["role"], labels=tuple(meta["labels"]), stale=stale)


def demo_fleet_hostnames(*, synthetic: int, large: int = 0, seed: int = 0) -> list[str]:
    names = [doc["host"]["hostname"] for doc in synthetic_documents(synthetic, large=large, seed=seed)]
    names += [_capture_hostname(a) for a in sorted(CAPTURES_DIR.glob("*.tar.gz"))]
    return names


def demo_fleet_present(*, synthetic: int, large: int = 0, seed: int = 0) -> bool:
    """True when every demo host has an applied snapshot already (nothing to load)."""
    names = demo_fleet_hostnames(synthetic=synthetic, large=large, seed=seed)
    applied = Host.objects.filter(hostname__in=names, applied_snapshot_id__isnull=False).count()
    return applied == len(set(names))


def demo_fleet_remove(*, synthetic: int, large: int = 0, seed: int = 0) -> int:
    """Delete the demo hosts (with their snapshots, changes and violations)."""
    deleted, _ = Host.objects.filter(hostname__in=demo_fleet_hostnames(synthetic=synthetic, large=large, seed=seed)).delete()
    return deleted


def demo_fleet_load(*, synthetic: int, large: int = 0, seed: int = 0,
                    progress: Callable[[int, int, str], None] | None = None) -> int:
    """Push every capture, `synthetic` synthetic hosts and `large` large ones through ingest; returns how many."""
    total = len(list(CAPTURES_DIR.glob("*.tar.gz"))) + synthetic + large
    done = 0
    stale: list[tuple[str, datetime]] = []
    for item in itertools.chain(capture_hosts(), synthetic_hosts(synthetic, large=large, seed=seed)):
        hostname = item.document["host"]["hostname"]
        host = host_file(hostname=hostname, role=item.role, labels=item.labels)
        result = snapshot_receive_document(host=host, document=item.document, queue=snapshot_queue_apply)
        if result.http_status >= 400:
            raise DemoLoadError(f"{hostname}: ingest refused the snapshot ({result.http_status}): {result.body}")
        if hostname == regroup.REGROUPED_HOST:
            _second_snapshot_regrouped(host, item.document, result.body["id"])
        if item.stale:
            stale.append((hostname, datetime.fromisoformat(item.document["collected_at"].replace("Z", "+00:00"))))
        done += 1
        if progress:
            progress(done, total, hostname)
    for hostname, last in stale:
        host_went_quiet(hostname=hostname, last_seen=last)
    return done


def _second_snapshot_regrouped(host: Host, document: dict, first_id: int) -> None:
    """Apply the host's first snapshot now (what the apply task does: its groups become the baseline), then
    report a second one with regrouped devices, so the demo has a host whose groups changed (issue 13)."""
    second = regroup.merged_groups(document)
    if second is None:
        return
    snapshot_apply(snapshot_id=first_id)
    result = snapshot_receive_document(host=host, document=second, queue=snapshot_queue_apply)
    if result.http_status >= 400:
        raise DemoLoadError(f"{host.hostname}: ingest refused the regrouped snapshot ({result.http_status}): {result.body}")


@transaction.atomic
def host_file(*, hostname: str, role: str, labels: tuple[str, ...]) -> Host:
    """The host row filed under `role` with `labels` (what an operator does when enrolling it)."""
    host, _ = Host.objects.get_or_create(hostname=hostname)
    host_role_set(host, role)
    host_labels_add(host, list(labels))
    return host


def host_went_quiet(*, hostname: str, last_seen: datetime) -> None:
    """Make a host look like it stopped reporting at `last_seen`, then let the sweepers notice."""
    from fleet.ingest.services import hosts_mark_stale
    from fleet.policy.services import stale_hosts_sync

    # The ingest path stamps last_seen with the arrival time; a demo host that "stopped reporting"
    # days ago needs the past written back, which only time would do on a real fleet.
    Host.objects.filter(hostname=hostname).update(last_seen=last_seen)
    hosts_mark_stale(now=timezone.now())
    stale_hosts_sync(now=timezone.now())


def _capture_hostname(archive: Path) -> str:
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.name.lstrip("./") == "etc/hostname" and member.isfile():
                return tar.extractfile(member).read().decode("utf-8", "replace").strip()
    return archive.name[: -len(".tar.gz")]
