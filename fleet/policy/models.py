"""Policy state: violations with their lifecycle, waivers, history, and the declared intent.

Rules never write here: `fleet.policy.services` turns the engine's findings into
rows. The intent tables are the editable form of the reviewable TOML file
(`fleet.policy.intent`); `policy export` renders them back to that file.
"""
from django.core.exceptions import ValidationError
from django.db import models

from fleet.inventory.models import Host

from .intent import IntentError, check_patterns
from .severity import Severity


class Violation(models.Model):
    """One rule firing for one subject on one host, kept across snapshots while it keeps firing.

    - `rule`, `severity`: the catalogue id and its fixed severity (DOMAIN.md §6).
    - `subject_kind` / `subject_id`: what is wrong — `host` (id = hostname), `group` (id = group
      number), `device` (id = BDF), `holder` (id = pid), `node` (id = device node path),
      `tenant` (id = tenant name), `address-space` (id = its key, `<pid>:<fd>`).
    - `message`: one sentence saying what is wrong; `evidence`: the file values and relationships
      that made the rule fire (JSON); `remediation`: a concrete fix.
    - `status`: `open` while the rule fires, `resolved` once a sync no longer finds it.
      A waived violation stays `open`; `waived_until` hides it from the open list until then.
    - `opened_at`: first (or re-)opening; `last_seen_at`: last sync that found it;
      `updated_at`: last time message/evidence/severity changed; `resolved_at`: when it stopped.
    - `fingerprint`: sha256 of (host id, rule, subject kind, subject id); unique, so one row
      per subject for the life of the host (a resolved row is re-opened, not duplicated).
    - `acknowledged_at` / `acknowledged_by`: a reviewer has seen it (does not hide it).
    """

    class Status(models.TextChoices):
        OPEN = "open", "open"
        RESOLVED = "resolved", "resolved"

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="violations")
    rule = models.CharField(max_length=64, db_index=True)
    severity = models.CharField(max_length=16, choices=Severity.choices, db_index=True)
    subject_kind = models.CharField(max_length=16)
    subject_id = models.CharField(max_length=512)
    message = models.TextField()
    evidence = models.JSONField(default=dict, blank=True)
    remediation = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    opened_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    waived_until = models.DateTimeField(null=True, blank=True, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True, default="")
    fingerprint = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["host", "rule", "subject_kind", "subject_id"]
        indexes = [models.Index(fields=["host", "status"], name="policy_viol_host_status_idx")]

    def __str__(self) -> str:
        return f"{self.rule} {self.subject_kind} {self.subject_id}"

    @property
    def subject(self) -> str:
        return f"{self.subject_kind} {self.subject_id}"

    @property
    def title(self) -> str:
        """'group-shared-p2p group 5 of host h1': the violation in words (audit subjects, the admin)."""
        return f"{self.rule} {self.subject} of host {self.host.hostname}"


class Waiver(models.Model):
    """A reviewer's decision to accept a violation until `expires_at`, with the reason.

    While a waiver is active (not revoked, not expired) its violation is hidden from the open list.
    `waivers_expire()` marks expired waivers (`expired_at`) and makes the violation visible again.
    """

    violation = models.ForeignKey(Violation, on_delete=models.CASCADE, related_name="waivers")
    justification = models.TextField()
    expires_at = models.DateTimeField()
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=150, blank=True, default="")
    expired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"waiver {self.pk} on {self.violation.title}"


class ViolationEvent(models.Model):
    """One step in a violation's history, with who caused it (a user name, `policy` for the engine, `cli`)."""

    class Kind(models.TextChoices):
        OPENED = "opened", "opened"
        UPDATED = "updated", "updated"
        RESOLVED = "resolved", "resolved"
        REOPENED = "reopened", "reopened"
        WAIVED = "waived", "waived"
        WAIVER_EXPIRED = "waiver_expired", "waiver expired"
        WAIVER_REVOKED = "waiver_revoked", "waiver revoked"
        ACKNOWLEDGED = "acknowledged", "acknowledged"

    violation = models.ForeignKey(Violation, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    at = models.DateTimeField(db_index=True)
    by = models.CharField(max_length=150, default="policy")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]


# --- Declared intent (the editable form of intent.example.toml) ---------------------------


class IntentSettings(models.Model):
    """Fleet-wide intent knobs (one row).

    - `allowed_userspace_drivers`: drivers a device may be assigned through; empty = any.
    - `host_pasid_quota`: most PASID users one host may show; null = no quota.
    - `stale_after_seconds`: a host with no report for longer is `stale-host`; null = the
      server's report interval × FLEET_STALE_AFTER_INTERVALS.
    """

    allowed_userspace_drivers = models.JSONField(default=list, blank=True)
    host_pasid_quota = models.IntegerField(null=True, blank=True)
    stale_after_seconds = models.IntegerField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "intent settings"

    def clean(self) -> None:
        _check_pattern_fields(self, lists=("allowed_userspace_drivers",))


def _check_pattern_fields(instance, *fields: str, lists: tuple[str, ...] = ()) -> None:
    """The admin's form validation: pattern fields get the same refusal (and message) as a TOML import;
    `lists` (and list-valued pattern fields) must hold strings, or every later evaluation would fail."""
    errors = {}
    for name in (*fields, *lists):
        value = getattr(instance, name)
        values = [value] if isinstance(value, str) and name in fields else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            errors[name] = "must be a list of strings"
            continue
        try:
            check_patterns([v for v in values if v] if name in fields else [], name)
        except IntentError as exc:
            errors[name] = str(exc)
    if errors:
        raise ValidationError(errors)


class Tenant(models.Model):
    """Who may own assigned devices, recognised by the VM name, cgroup or workload of a holder.

    Patterns are fnmatch globs; prefix one with `re:` for a regular expression.
    `labels` are security labels: one group must not mix labels. `pasid_quota`: most PASID
    users attributed to this tenant across the whole fleet (summed over hosts); null = no quota.
    """

    name = models.CharField(max_length=100, unique=True)
    vm_patterns = models.JSONField(default=list, blank=True)
    cgroup_patterns = models.JSONField(default=list, blank=True)
    workload_patterns = models.JSONField(default=list, blank=True)
    labels = models.JSONField(default=list, blank=True)
    pasid_quota = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        _check_pattern_fields(self, "vm_patterns", "cgroup_patterns", "workload_patterns", lists=("labels",))


class HostRole(models.Model):
    """A kind of host, matched by `Host.role` equal to `name`, a hostname pattern, or a host label.

    `expects_assignment`: hosts of this role hand devices to userspace (so no IOMMU is a
    violation even before anything is assigned). `expected_drivers`: the drivers devices are
    assigned through on these hosts (e.g. `vfio-pci`); empty = any allowed one.
    """

    name = models.CharField(max_length=100, unique=True)
    host_patterns = models.JSONField(default=list, blank=True)
    host_labels = models.JSONField(default=list, blank=True)
    expects_assignment = models.BooleanField(default=False)
    expected_drivers = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        _check_pattern_fields(self, "host_patterns", lists=("host_labels", "expected_drivers"))


class DeviceExpectation(models.Model):
    """The declared driver and/or owner of the devices it matches (the source of `driver-drift`).

    Where: `role` (a HostRole name) and/or `host_pattern` (hostname glob); empty = every host.
    Which devices: `bdf`, `vendor_device` (`8086:10d3`) and/or `class_prefix` (`02`, `0200`);
    all given ones must match. Expected: `driver` (`none` = unbound; empty = not checked) and
    `owner` (a tenant name, `host` = not assigned; empty = not checked).
    """

    name = models.CharField(max_length=100, unique=True)
    role = models.CharField(max_length=100, blank=True, default="")
    host_pattern = models.CharField(max_length=253, blank=True, default="")
    bdf = models.CharField(max_length=16, blank=True, default="")
    vendor_device = models.CharField(max_length=9, blank=True, default="")
    class_prefix = models.CharField(max_length=6, blank=True, default="")
    driver = models.CharField(max_length=100, blank=True, default="")
    owner = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        _check_pattern_fields(self, "host_pattern")


class GroupBaseline(models.Model):
    """The accepted IOMMU groups of one host (`groups`: list of sorted member-BDF lists) and each member's
    stable identity then (`identities`: BDF -> `agent.identity.device_identity`).

    `group-changed` compares the current groups with this on identity (`fleet.policy.drift`). A host's
    first applied snapshot accepts one automatically (by the engine); people re-accept with the host
    page's button, the API or `policy baseline accept HOST`. Rows from before identities were recorded
    have `identities` empty and are compared on BDFs until accepted again.
    """

    hostname = models.CharField(max_length=253, unique=True)
    groups = models.JSONField(default=list, blank=True)
    identities = models.JSONField(default=dict, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname

    def clean(self) -> None:
        groups = self.groups
        if not isinstance(groups, list) or not all(isinstance(g, list) and all(isinstance(b, str) for b in g) for g in groups):
            raise ValidationError({"groups": "must be a list of lists of BDF strings, e.g. [[\"0000:03:00.0\", \"0000:03:00.1\"]]"})


class IntentChange(models.Model):
    """Audit row for every intent change: who (user name or `cli`), when, how, and the TOML before/after."""

    at = models.DateTimeField(db_index=True)
    by = models.CharField(max_length=150)
    source = models.CharField(max_length=32)  # import, admin, baseline-accept
    summary = models.CharField(max_length=300, blank=True, default="")
    before = models.TextField(blank=True, default="")
    after = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-at", "-id"]


class TenantPasidUsage(models.Model):
    """How many PASID users of `tenant` one host had at its last evaluation.

    Tenant PASID quotas are fleet-wide: evaluating one host adds the other hosts' counts
    from here instead of rebuilding every host's state. Written by the violation sync
    (one row per host and tenant with PASIDs; none when it has none).
    """

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="tenant_pasid_usage")
    tenant = models.CharField(max_length=100)
    count = models.PositiveIntegerField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["host", "tenant"], name="%(app_label)s_%(class)s_unique_host_tenant")]
        indexes = [models.Index(fields=["tenant"], name="policy_pasid_usage_tenant_idx")]

    def __str__(self) -> str:
        return f"{self.tenant} on {self.host_id}: {self.count}"


class IntentVersion(models.Model):
    """One row whose `token` the intent services change with every intent write (`intent_version_bump`).

    Workers keep the parsed intent in memory and check this row (one primary-key read) per sync instead
    of reading the five intent tables. A random token, not a counter: a rolled-back change must never
    leave another transaction's later change with the value a worker already cached. Writes that bypass
    the services (a hand-run SQL statement) are not seen until the next bump or worker restart.
    """

    id = models.PositiveSmallIntegerField(primary_key=True)
    token = models.CharField(max_length=64)

    def __str__(self) -> str:
        return self.token
