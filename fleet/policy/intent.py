"""Declared intent as a value: tenants, host roles, device expectations, baselines, quotas.

The reviewable form is a TOML file (see intent.example.toml); `parse_toml` / `to_toml`
round-trip it exactly (export → import → export is byte-identical because `to_toml`
sorts every section by name and always writes every key). The database form lives in
`fleet.policy.models` and is read by `selectors.intent_current()`.

Patterns are fnmatch globs; a pattern starting with `re:` is a full-match regular expression.
They run against strings the hosts send (VM names, cgroup paths, hostnames), so a regular
expression that can backtrack catastrophically is refused when the intent is read (nested
unbounded repeats such as `(a+)+`, the classic ReDoS shape), and values longer than
MAX_MATCHED_LENGTH are matched by no pattern at all (their holder then shows as unknown).
"""
from __future__ import annotations

import fnmatch
import logging
import re
import re._parser as re_parser
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache

import tomli_w


class IntentError(ValueError):
    """The intent file is not valid; the message names the offending key."""


log = logging.getLogger(__name__)

# Longer than any hostname (253), VM name or libvirt cgroup path; longer host strings match nothing.
MAX_MATCHED_LENGTH = 1024
_REPEATS = (re_parser.MAX_REPEAT, re_parser.MIN_REPEAT, re_parser.POSSESSIVE_REPEAT)
_NEVER = re.compile(r"(?!)")


def _subpatterns(av):
    """The nested SubPatterns of one parsed regex item's argument (repeat, group, branch, assertion)."""
    items = av if isinstance(av, (tuple, list)) else ()
    for item in items:
        if isinstance(item, re_parser.SubPattern):
            yield item
        elif isinstance(item, (tuple, list)):
            yield from _subpatterns(item)


def _has_repeat(sub) -> bool:
    return any((op in _REPEATS and av[1] > 1) or any(_has_repeat(s) for s in _subpatterns(av)) for op, av in sub)


def _nested_repeat(sub) -> bool:
    for op, av in sub:
        if op in _REPEATS and av[1] > 1 and _has_repeat(av[2]):
            return True
        if any(_nested_repeat(s) for s in _subpatterns(av)):
            return True
    return False


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be used (bad or catastrophically backtracking regex), None when it can."""
    if not pattern.startswith("re:"):
        return None
    try:
        parsed = re_parser.parse(pattern[3:])
        re.compile(pattern[3:])
    except re.error as exc:
        return f"bad regular expression {pattern!r}: {exc}"
    if _nested_repeat(parsed):
        return (f"regular expression {pattern!r} nests a repeat inside a repeat (like (a+)+), which can backtrack "
                "for ever on a hostile host string; rewrite it without the nested quantifier")
    return None


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern:
    if pattern.startswith("re:"):
        problem = pattern_problem(pattern)
        if problem:
            # Stored before validation existed, or written around it: never run it against host strings.
            log.warning("intent pattern ignored: %s", problem)
            return _NEVER
        return re.compile(pattern[3:])
    return re.compile(fnmatch.translate(pattern))


def pattern_matches(patterns, value: str | None) -> bool:
    if not value or len(value) > MAX_MATCHED_LENGTH:
        return False
    return any(_compiled(p).fullmatch(value) for p in patterns)


def check_patterns(values, where: str) -> None:
    """IntentError naming `where` (e.g. `tenants[0].vm_patterns`) for the first unusable pattern."""
    for value in values:
        problem = pattern_problem(value)
        if problem:
            raise IntentError(f"{where}: {problem}")


@dataclass(frozen=True)
class Tenant:
    name: str
    vm_patterns: tuple[str, ...] = ()
    cgroup_patterns: tuple[str, ...] = ()
    workload_patterns: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    pasid_quota: int | None = None

    def matches_holder(self, holder: dict) -> bool:
        return (
            pattern_matches(self.vm_patterns, holder.get("vm"))
            or pattern_matches(self.cgroup_patterns, holder.get("cgroup"))
            or pattern_matches(self.workload_patterns, holder.get("workload"))
        )


@dataclass(frozen=True)
class Role:
    name: str
    host_patterns: tuple[str, ...] = ()
    host_labels: tuple[str, ...] = ()
    expects_assignment: bool = False
    expected_drivers: tuple[str, ...] = ()

    def matches_host(self, hostname: str, role: str, labels) -> bool:
        return role == self.name or pattern_matches(self.host_patterns, hostname) or bool(set(self.host_labels) & set(labels))


@dataclass(frozen=True)
class DeviceExpectation:
    name: str
    role: str = ""
    host_pattern: str = ""
    bdf: str = ""
    vendor_device: str = ""
    class_prefix: str = ""
    driver: str = ""
    owner: str = ""

    def matches_device(self, device: dict) -> bool:
        if self.bdf and device.get("bdf") != self.bdf:
            return False
        if self.vendor_device and f"{device.get('vendor_id')}:{device.get('device_id')}" != self.vendor_device:
            return False
        if self.class_prefix and not (device.get("class") or "").startswith(self.class_prefix):
            return False
        return bool(self.bdf or self.vendor_device or self.class_prefix)


@dataclass(frozen=True)
class Baseline:
    hostname: str
    groups: tuple[tuple[str, ...], ...] = ()
    # Sorted (bdf, stable identity) pairs of the members when accepted (`agent.identity`); empty for a
    # baseline accepted before identities were recorded, which is compared on BDFs (`fleet.policy.drift`).
    identities: tuple[tuple[str, str], ...] = ()
    accepted_at: str = ""
    accepted_by: str = ""


@dataclass(frozen=True)
class Intent:
    tenants: tuple[Tenant, ...] = ()
    roles: tuple[Role, ...] = ()
    devices: tuple[DeviceExpectation, ...] = ()
    baselines: tuple[Baseline, ...] = ()
    allowed_userspace_drivers: tuple[str, ...] = ()
    host_pasid_quota: int | None = None
    stale_after_seconds: int | None = None
    _baseline_index: dict = field(default=None, compare=False, repr=False, hash=False)

    def baseline_for(self, hostname: str) -> Baseline | None:
        index = self._baseline_index
        if index is None:
            index = {b.hostname: b for b in self.baselines}
            object.__setattr__(self, "_baseline_index", index)
        return index.get(hostname)

    def roles_for(self, hostname: str, role: str, labels) -> list[Role]:
        return [r for r in self.roles if r.matches_host(hostname, role, labels)]

    def tenant_for_holder(self, holder: dict) -> Tenant | None:
        for tenant in self.tenants:
            if tenant.matches_holder(holder):
                return tenant
        return None


EMPTY = Intent()


# --- TOML --------------------------------------------------------------------------------

def _strs(table: dict, key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise IntentError(f"{where}.{key} must be a list of strings")
    check_patterns(value, f"{where}.{key}")
    return tuple(value)


def _str(table: dict, key: str, where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise IntentError(f"{where}.{key} must be a string")
    return value


def _opt_int(table: dict, key: str, where: str) -> int | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise IntentError(f"{where}.{key} must be a non-negative integer")
    return value


def _named(tables, kind: str) -> list[tuple[str, dict]]:
    if not isinstance(tables, list):
        raise IntentError(f"{kind} must be an array of tables")
    out, seen = [], set()
    for i, table in enumerate(tables):
        where = f"{kind}[{i}]"
        if not isinstance(table, dict):
            raise IntentError(f"{where} must be a table")
        name = table.get("name") if kind != "baselines" else table.get("host")
        if not isinstance(name, str) or not name:
            raise IntentError(f"{where} needs a non-empty {'host' if kind == 'baselines' else 'name'}")
        if name in seen:
            raise IntentError(f"{where}: duplicate {name!r}")
        seen.add(name)
        out.append((where, table))
    return out


def parse_toml(text: str) -> Intent:
    """The Intent a TOML document declares; IntentError names the first bad key."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise IntentError(f"not TOML: {exc}") from exc
    settings = doc.get("settings", {})
    if not isinstance(settings, dict):
        raise IntentError("settings must be a table")
    tenants = tuple(
        Tenant(
            name=t["name"],
            vm_patterns=_strs(t, "vm_patterns", w),
            cgroup_patterns=_strs(t, "cgroup_patterns", w),
            workload_patterns=_strs(t, "workload_patterns", w),
            labels=_strs(t, "labels", w),
            pasid_quota=_opt_int(t, "pasid_quota", w),
        )
        for w, t in _named(doc.get("tenants", []), "tenants")
    )
    roles = []
    for w, t in _named(doc.get("roles", []), "roles"):
        expects = t.get("expects_assignment", False)
        if not isinstance(expects, bool):
            raise IntentError(f"{w}.expects_assignment must be true or false")
        roles.append(Role(name=t["name"], host_patterns=_strs(t, "host_patterns", w), host_labels=_strs(t, "host_labels", w),
                          expects_assignment=expects, expected_drivers=_strs(t, "expected_drivers", w)))
    devices = []
    for w, t in _named(doc.get("devices", []), "devices"):
        exp = DeviceExpectation(name=t["name"], **{k: _str(t, k, w) for k in
                                ("role", "host_pattern", "bdf", "vendor_device", "class_prefix", "driver", "owner")})
        check_patterns((exp.host_pattern,) if exp.host_pattern else (), f"{w}.host_pattern")
        if not (exp.bdf or exp.vendor_device or exp.class_prefix):
            raise IntentError(f"{w} must match by bdf, vendor_device or class_prefix")
        devices.append(exp)
    baselines = []
    for w, t in _named(doc.get("baselines", []), "baselines"):
        groups = t.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, list) and all(isinstance(b, str) for b in g) for g in groups):
            raise IntentError(f"{w}.groups must be a list of lists of BDF strings")
        identities = t.get("identities", {})
        if not isinstance(identities, dict) or not all(isinstance(v, str) for v in identities.values()):
            raise IntentError(f"{w}.identities must be a table of BDF = identity strings")
        baselines.append(Baseline(hostname=t["host"], groups=tuple(sorted(tuple(sorted(g)) for g in groups)),
                                  identities=tuple(sorted(identities.items())),
                                  accepted_at=_str(t, "accepted_at", w), accepted_by=_str(t, "accepted_by", w)))
    return Intent(
        tenants=tenants,
        roles=tuple(roles),
        devices=tuple(devices),
        baselines=tuple(baselines),
        allowed_userspace_drivers=_strs(settings, "allowed_userspace_drivers", "settings"),
        host_pasid_quota=_opt_int(settings, "host_pasid_quota", "settings"),
        stale_after_seconds=_opt_int(settings, "stale_after_seconds", "settings"),
    )


def _settings_table(intent: Intent) -> dict:
    table: dict = {"allowed_userspace_drivers": list(intent.allowed_userspace_drivers)}
    # TOML has no null: an absent key means "no quota" / "server default".
    if intent.host_pasid_quota is not None:
        table["host_pasid_quota"] = intent.host_pasid_quota
    if intent.stale_after_seconds is not None:
        table["stale_after_seconds"] = intent.stale_after_seconds
    return table


def to_toml(intent: Intent) -> str:
    """The canonical TOML text of `intent` (sections sorted by name, every key written)."""
    doc: dict = {"settings": _settings_table(intent)}
    doc["tenants"] = [
        {"name": t.name, "vm_patterns": list(t.vm_patterns), "cgroup_patterns": list(t.cgroup_patterns),
         "workload_patterns": list(t.workload_patterns), "labels": list(t.labels),
         **({"pasid_quota": t.pasid_quota} if t.pasid_quota is not None else {})}
        for t in sorted(intent.tenants, key=lambda t: t.name)
    ]
    doc["roles"] = [
        {"name": r.name, "host_patterns": list(r.host_patterns), "host_labels": list(r.host_labels),
         "expects_assignment": r.expects_assignment, "expected_drivers": list(r.expected_drivers)}
        for r in sorted(intent.roles, key=lambda r: r.name)
    ]
    doc["devices"] = [
        {"name": d.name, "role": d.role, "host_pattern": d.host_pattern, "bdf": d.bdf, "vendor_device": d.vendor_device,
         "class_prefix": d.class_prefix, "driver": d.driver, "owner": d.owner}
        for d in sorted(intent.devices, key=lambda d: d.name)
    ]
    doc["baselines"] = [
        {"host": b.hostname, "accepted_at": b.accepted_at, "accepted_by": b.accepted_by,
         "groups": [list(g) for g in sorted(b.groups)], **({"identities": dict(b.identities)} if b.identities else {})}
        for b in sorted(intent.baselines, key=lambda b: b.hostname)
    ]
    doc = {k: v for k, v in doc.items() if v or k == "settings"}  # an empty array of tables reads badly as `x = []`
    header = ("# IOMMU Fleet declared intent (policy import/export). Patterns: fnmatch globs, or re:<regex> (no nested repeats).\n"
              "# settings.host_pasid_quota: PASID users allowed on one host. tenants.pasid_quota: PASID users the tenant\n"
              "# may hold across the whole fleet (summed over hosts). Omit either for no quota.\n\n")
    return header + tomli_w.dumps(doc, multiline_strings=False)
