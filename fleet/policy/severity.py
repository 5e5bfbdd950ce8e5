"""The severities a finding carries, worst first (DOMAIN.md §6).

The one list the rule catalogue, the violation column's choices, the CLI and the pages sort and
filter by; a new level is added here and nowhere else.
"""
from django.db import models


class Severity(models.TextChoices):
    CRITICAL = "critical", "critical"
    HIGH = "high", "high"
    MEDIUM = "medium", "medium"
    LOW = "low", "low"
    INFO = "info", "info"


SEVERITIES: tuple[str, ...] = tuple(Severity.values)  # worst first
SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}  # 0 = critical
