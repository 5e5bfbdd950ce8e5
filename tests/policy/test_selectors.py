"""Reads other apps build on: the open-and-not-waived violations, the severity order."""
from datetime import datetime, timedelta, timezone

import pytest

from fleet.inventory.models import Host
from fleet.policy.models import Violation
from fleet.policy.selectors import violations_open, violations_open_unwaived
from fleet.policy.severity import SEVERITIES

T0 = datetime(2026, 11, 25, 14, 0, tzinfo=timezone.utc)


def _violation(host, subject, *, status="open", waived_until=None):
    return Violation.objects.create(
        host=host, rule="group-shared-p2p", severity="high", subject_kind="group", subject_id=subject, message="m",
        status=status, opened_at=T0, updated_at=T0, last_seen_at=T0, waived_until=waived_until,
        fingerprint=f"{host.pk}-{subject}".ljust(64, "0"))


@pytest.mark.django_db
def test_open_unwaived_leaves_out_resolved_rows_and_those_an_active_waiver_hides():
    # A reviewer waived group 2 until tomorrow; group 3's waiver ran out an hour ago; group 4 was fixed.
    host = Host.objects.create(hostname="hv-1")
    plain = _violation(host, "1")
    _violation(host, "2", waived_until=T0 + timedelta(days=1))
    lapsed = _violation(host, "3", waived_until=T0 - timedelta(hours=1))
    _violation(host, "4", status="resolved")
    assert set(violations_open_unwaived(now=T0)) == {plain, lapsed}
    assert list(violations_open(now=T0)) == [plain, lapsed]
    assert len(violations_open(now=T0, include_waived=True)) == 3


def test_severities_are_the_catalogue_levels_worst_first_and_the_column_offers_exactly_them():
    assert SEVERITIES == ("critical", "high", "medium", "low", "info")  # DOMAIN.md §6, written out
    assert [value for value, _ in Violation._meta.get_field("severity").choices] == list(SEVERITIES)
