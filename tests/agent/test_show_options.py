"""`fleet-agent show` for scripts and for the one device a person is chasing: its exit status says whether
it showed a critical problem, `--group`/`--bdf` narrow it, `--json` gives the same view as data."""
import json
import re

import pytest

from tests.agent import groundtruth
from tests.agent.captures import CAPTURE_NAMES
from tests.agent.test_cli import agent, find_groups

RED_LINE = re.compile(r"\x1b\[31m! ")  # a red "!" line, as Painter writes it with --color always
USERSPACE_DRIVERS = {"vfio-pci", "uio_pci_generic"}


def mixed_groups(root) -> dict[int, set[str]]:
    """From ground truth alone: groups with a member on vfio-pci and another on a host driver (lspci)."""
    drivers = {bdf: facts["driver"] for bdf, facts in groundtruth.lspci_drivers(root).items()}
    return {gid: m for gid, m in find_groups(root).items()
            if any(drivers.get(b) in USERSPACE_DRIVERS for b in m)
            and any(drivers.get(b) not in USERSPACE_DRIVERS | {None, "pcieport"} for b in m)}


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_the_exit_status_is_3_exactly_when_a_critical_problem_is_shown(capture, name):
    root = capture(name)
    result = agent("show", "--root", root, "--color", "always")
    assert result.returncode in (0, 3), result.stderr
    assert (result.returncode == 3) == bool(RED_LINE.search(result.stdout))
    if mixed_groups(root):  # a non-viable mixed group is always critical
        assert result.returncode == 3


def test_a_capture_with_only_isolated_assignments_exits_0(capture):
    root = capture("isolated-nics")
    assert not mixed_groups(root)
    assert agent("show", "--root", root).returncode == 0


def test_bdf_and_group_show_only_the_groups_asked_for(capture):
    root = capture("shared-bridge-group")
    groups = find_groups(root)
    (gid, members), = mixed_groups(root).items()
    bdf = sorted(members)[-1]
    by_bdf = agent("show", "--root", root, "--bdf", bdf[5:])  # the short form a person types
    shown = {int(m) for m in re.findall(r"^Group (\d+) ", by_bdf.stdout, re.M)}
    assert shown == {gid} and by_bdf.returncode == 3
    other = next(g for g, m in groups.items() if g != gid and len(m) == 1)
    by_group = agent("show", "--root", root, "--group", other)
    assert {int(m) for m in re.findall(r"^Group (\d+) ", by_group.stdout, re.M)} == {other}
    assert by_group.returncode == 0  # that group has nothing critical, whatever the rest of the host has


def test_json_carries_the_groups_their_members_and_the_critical_flag(capture):
    root = capture("shared-bridge-group")
    result = agent("show", "--root", root, "--json")
    data = json.loads(result.stdout)
    assert {g["id"]: set(g["devices"]) for g in data["groups"]} == find_groups(root)
    (gid, _), = mixed_groups(root).items()
    flagged = next(g for g in data["groups"] if g["id"] == gid)
    assert flagged["viable"] is False and any(p["severity"] == "critical" for p in flagged["problems"])
    assert data["critical"] is True and result.returncode == 3
    assert {d["bdf"] for d in data["devices"]} == set(groundtruth.lspci_drivers(root))


def test_a_bdf_that_is_no_pci_address_is_a_usage_error(capture):
    result = agent("show", "--root", capture("isolated-nics"), "--bdf", "nic0")
    assert result.returncode == 2 and "not a PCI address" in result.stderr


def test_the_unit_line_says_capabilities_not_the_mode(capture):
    # iommu-passthrough booted with iommu=pt; isolated-nics translates. Both units can do pass-through.
    for name in ("isolated-nics", "iommu-passthrough"):
        out = agent("show", "--root", capture(name), "--color", "never").stdout
        unit = next(line for line in out.splitlines() if line.startswith("  dmar"))
        assert "can do:" in unit and " pass-through " not in f" {unit.split('can do:')[1]} "
