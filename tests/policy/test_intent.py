"""Declared intent: the TOML file round-trips exactly, through the database and the commands, and bad files are refused."""
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from fleet.policy.intent import MAX_MATCHED_LENGTH, IntentError, parse_toml, pattern_matches, to_toml
from fleet.policy.models import IntentChange, Tenant

EXAMPLE = Path(__file__).resolve().parents[2] / "fleet" / "policy" / "intent.example.toml"


def test_the_example_intent_is_in_canonical_form():
    text = EXAMPLE.read_text()
    assert to_toml(parse_toml(text)) == text


def test_a_hand_written_file_reads_the_declared_patterns_quotas_and_roles():
    intent = parse_toml("""
[settings]
host_pasid_quota = 8
[[tenants]]
name = "a"
vm_patterns = ["a-*"]
pasid_quota = 2
[[roles]]
name = "hv"
host_patterns = ["hv-*"]
expects_assignment = true
""")
    assert intent.host_pasid_quota == 8 and intent.tenants[0].pasid_quota == 2
    assert intent.tenant_for_holder({"vm": "a-vm1"}).name == "a" and intent.tenant_for_holder({"vm": "b-vm1"}) is None
    assert [r.name for r in intent.roles_for("hv-3", "", ())] == ["hv"] and intent.roles_for("db-1", "", ()) == []


@pytest.mark.parametrize("text, key", [
    ('[[devices]]\nname = "x"\ndriver = "vfio-pci"\n', "devices[0]"),
    ('[[tenants]]\nname = "x"\nvm_patterns = ["re:("]\n', "tenants[0].vm_patterns"),
    ('[[tenants]]\nname = "x"\n[[tenants]]\nname = "x"\n', "duplicate"),
    ('[settings]\nhost_pasid_quota = -1\n', "settings.host_pasid_quota"),
    ('[[roles]]\nname = "r"\nexpects_assignment = "yes"\n', "roles[0].expects_assignment"),
    ('[[tenants]]\nname = "x"\ncgroup_patterns = ["re:(a+)+$"]\n', "tenants[0].cgroup_patterns: regular expression .* nests a repeat"),
    ('[[roles]]\nname = "r"\nhost_patterns = ["re:(?:[a-z]+-)*hv"]\n', "roles[0].host_patterns: regular expression"),
    ('[[devices]]\nname = "d"\nbdf = "0000:03:00.0"\nhost_pattern = "re:(x*)*"\n', "devices[0].host_pattern: regular expression"),
    ("not = [toml", "not TOML"),
])
def test_a_bad_intent_file_is_refused_naming_the_offending_key(text, key):
    with pytest.raises(IntentError, match=key.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        parse_toml(text)


@pytest.mark.django_db
def test_import_then_export_then_import_then_export_is_byte_identical(tmp_path):
    first, second = tmp_path / "first.toml", tmp_path / "second.toml"
    call_command("policy", "import", str(EXAMPLE))
    call_command("policy", "export", str(first))
    call_command("policy", "import", str(first))
    call_command("policy", "export", str(second))
    assert first.read_bytes() == second.read_bytes() == EXAMPLE.read_bytes()
    assert sorted(Tenant.objects.values_list("name", flat=True)) == sorted(t.name for t in parse_toml(EXAMPLE.read_text()).tenants)


@pytest.mark.django_db
def test_an_import_is_audited_with_who_and_the_toml_before_and_after_and_a_no_op_import_is_not(tmp_path):
    call_command("policy", "import", str(EXAMPLE), "--by", "alice")
    change = IntentChange.objects.get()
    assert (change.by, change.source) == ("alice", "import")
    assert change.after == EXAMPLE.read_text() and change.before != change.after
    call_command("policy", "import", str(EXAMPLE), "--by", "bob")
    assert IntentChange.objects.count() == 1


@pytest.mark.django_db
def test_importing_a_bad_file_changes_nothing(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[devices]]\nname = "x"\n')
    with pytest.raises(CommandError, match="devices"):
        call_command("policy", "import", str(bad))
    assert not IntentChange.objects.exists() and not Tenant.objects.exists()


def test_a_safe_regular_expression_still_attributes_holders_and_hostnames():
    intent = parse_toml('[[tenants]]\nname = "c"\ncgroup_patterns = ["re:machine\\\\.slice/machine-qemu.*tenant-c-.*\\\\.scope"]\n'
                        '[[roles]]\nname = "hv"\nhost_patterns = ["re:hv-[0-9]+(-[a-z]+)?"]\n')
    assert intent.tenant_for_holder({"cgroup": "machine.slice/machine-qemu-3-tenant-c-vm3.scope"}).name == "c"
    assert [r.name for r in intent.roles_for("hv-12-fra", "", ())] == ["hv"]


def test_a_hostile_host_string_longer_than_the_bound_matches_no_pattern_and_returns_at_once():
    # A compromised host reporting a 100 kB VM name against a pattern with polynomial backtracking (.*x.*y).
    pattern = "re:.*a.*a.*a.*b"
    hostile = "a" * 100_000
    started = time.perf_counter()
    assert not pattern_matches((pattern,), hostile)
    assert time.perf_counter() - started < 0.05
    assert len(hostile) > MAX_MATCHED_LENGTH and pattern_matches((pattern,), "a" * 10 + "b")


def test_a_nested_quantifier_stored_before_validation_is_never_run_against_host_strings():
    # An intent row written straight into the database (or by an older release) with the classic ReDoS shape.
    started = time.perf_counter()
    assert not pattern_matches(("re:(a+)+$",), "a" * 25 + "!")  # unguarded: seconds of backtracking
    assert time.perf_counter() - started < 0.05


@pytest.mark.django_db
def test_an_import_without_by_is_audited_with_the_login_running_it_and_when(monkeypatch):
    monkeypatch.setenv("LOGNAME", "dave")  # what getpass reads first, as a login shell sets it
    before = timezone.now()
    call_command("policy", "import", str(EXAMPLE))
    change = IntentChange.objects.get()
    assert change.by == "cli:dave" and before <= change.at <= timezone.now()
