"""Thin Celery adapters over the policy services (ids in, idempotent, acks_late from settings)."""
from celery import shared_task

from fleet.inventory.models import Host

from . import services


@shared_task(ignore_result=True)
def violations_sync_for_host_task(host_id: int) -> None:
    host = Host.objects.filter(pk=host_id).first()
    if host is not None:
        services.violations_sync_for_host(host=host)


@shared_task(ignore_result=True)
def violations_sync_fleet_task() -> None:
    services.violations_sync_fleet()


@shared_task(ignore_result=True)
def policy_tick() -> None:
    """Periodic: expire waivers (their violations show again) and flag hosts that stopped reporting."""
    services.waivers_expire()
    services.stale_hosts_sync()
