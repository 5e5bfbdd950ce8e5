"""The agent's Debian package: built with dpkg-deb, its metadata and files, installed with dpkg into an
isolated root (this machine's own package database is never touched), and the installed fleet-agent run."""
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.agent.groundtruth import find_groups
from tests.services import IN_CI, system_tool

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")  # what the package's `#!/usr/bin/python3` wrapper runs


@pytest.fixture(scope="module")
def deb(tmp_path_factory) -> Path:
    system_tool("dpkg-deb", "dpkg")
    out = tmp_path_factory.mktemp("deb")
    built = subprocess.run([str(REPO / "packaging" / "deb" / "build.sh"), str(out)], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    return Path(built.stdout.strip())


def _dpkg_deb(*args) -> str:
    done = subprocess.run(["dpkg-deb", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_package_is_named_and_versioned_from_pyproject_with_its_dependencies(deb):
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert deb.name == f"iommu-fleet-agent_{version}_all.deb"
    fields = dict(re.findall(r"^(\S+): (.*)$", _dpkg_deb("--field", str(deb)), re.M))
    assert fields["Package"] == "iommu-fleet-agent" and fields["Version"] == version and fields["Architecture"] == "all"
    depends = {d.strip() for d in fields["Depends"].split(",")}
    assert {"python3 (>= 3.11)", "python3-psutil"} <= depends
    assert "conffiles" in _dpkg_deb("--info", str(deb)) and "postinst" in _dpkg_deb("--info", str(deb))


def test_the_package_holds_the_agent_the_wrapper_the_unit_and_a_default_config(deb):
    listing = _dpkg_deb("--contents", str(deb))
    entries = {line.split()[-1].removeprefix("."): line.split()[0] for line in listing.splitlines()}
    shipped = {p for p in entries if p.startswith("/usr/share/iommu-fleet-agent/agent/")}
    sources = {f"/usr/share/iommu-fleet-agent/{p.relative_to(REPO)}" for p in (REPO / "agent").rglob("*")
               if p.suffix in (".py", ".json") and "__pycache__" not in p.parts}
    assert shipped - {p for p in shipped if p.endswith("/")} == sources, "every agent source and schema file, nothing else"
    assert entries["/usr/bin/fleet-agent"] == "-rwxr-xr-x"
    assert entries["/"] == "drwxr-xr-x", "the package's root becomes the system's /"
    for path in ("/lib/systemd/system/fleet-agent.service", "/etc/fleet-agent/agent.env", "/usr/share/doc/iommu-fleet-agent/copyright"):
        assert path in entries, path
    assert not any("__pycache__" in p or "/tests/" in p or p.startswith("/usr/share/iommu-fleet-agent/fleet") for p in entries)


def test_installed_with_dpkg_into_an_isolated_root_the_agent_runs(deb, tmp_path, capture):
    system_tool("dpkg", "dpkg")
    root = tmp_path / "root"
    for d in ("var/lib/dpkg/updates", "var/lib/dpkg/info", "var/lib/dpkg/triggers"):
        (root / d).mkdir(parents=True)
    (root / "var/lib/dpkg/status").touch()
    # --force-depends: python3 and psutil are this machine's, not the empty root's; chrootless: the
    # empty root has no shell to run postinst in (postinst sees DPKG_ROOT and leaves users alone).
    installed = subprocess.run(["dpkg", f"--root={root}", "--force-depends", "--force-script-chrootless", "--log=/dev/null",
                                "-i", str(deb)], capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    status = subprocess.run(["dpkg", f"--root={root}", "-s", "iommu-fleet-agent"], capture_output=True, text=True, timeout=30)
    assert "Status: install ok installed" in status.stdout
    unit = (root / "lib/systemd/system/fleet-agent.service").read_text()
    settings = [line for line in unit.splitlines() if not line.startswith("#")]
    assert any(line.startswith("ExecStart=/usr/bin/fleet-agent run ") for line in settings)
    assert not any("/opt/fleet-agent" in line for line in settings), "the unit runs the package's paths"
    assert (root / "etc/fleet-agent/agent.env").read_text().startswith("# IOMMU Fleet agent settings")

    done = subprocess.run([str(SYSTEM_PYTHON), "-I", "-c", "import psutil"], capture_output=True, timeout=30)
    if done.returncode != 0:
        if IN_CI:
            pytest.fail("CI=true and the system python3 has no psutil (Debian package python3-psutil; .ci/run installs it)")
        pytest.skip("system python3 without psutil (apt-get install python3-psutil)")
    cap = capture("shared-group-all-vfio")
    # -I and a foreign cwd: only the installed copy under `root` can be imported, never this checkout.
    shown = subprocess.run([str(SYSTEM_PYTHON), "-I", str(root / "usr/bin/fleet-agent"), "show", "--root", str(cap)],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    # 2 is a bad root or usage; other non-zero codes report what the host shows (agent/__main__.py)
    assert shown.returncode != 2 and "Traceback" not in shown.stderr, shown.stderr
    pairs = find_groups(cap)
    assert pairs, "the capture's ground truth lists IOMMU groups"
    for group, bdf in pairs:
        assert bdf in shown.stdout, bdf
        assert re.search(rf"^Group {group}\b", shown.stdout, re.M), group
