"""The systemd units in deploy/systemd: accepted by `systemd-analyze verify`, and the agent unit's
command line is one `fleet-agent run` really accepts."""
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
NAMES = ["fleet-agent.service", "fleet-web.service", "fleet-worker.service", "fleet-beat.service"]
# Where the units expect the installed programs; the test points them at this virtualenv instead.
INSTALL_PREFIXES = ("/opt/fleet-agent/bin/", "/opt/iommu-fleet/venv/bin/")


def _unit(name: str) -> str:
    return (UNITS / name).read_text()


def _exec_start(text: str) -> str:
    [line] = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    return line[len("ExecStart="):]


@pytest.mark.parametrize("name", NAMES)
def test_systemd_analyze_verify_accepts_the_unit(tmp_path, name):
    tool = shutil.which("systemd-analyze")
    if not tool:
        pytest.skip("systemd-analyze is not installed")
    text = _unit(name)
    for prefix in INSTALL_PREFIXES:
        text = text.replace(prefix, str(Path(sys.executable).parent) + "/")
    (tmp_path / name).write_text(text)
    done = subprocess.run([tool, "verify", str(tmp_path / name)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


def test_every_unit_reads_its_settings_from_an_environment_file():
    for name in NAMES:
        assert re.search(r"^EnvironmentFile=/etc/\S+$", _unit(name), re.M), name


def test_the_agent_unit_runs_unprivileged_with_only_the_documented_capabilities():
    text = _unit("fleet-agent.service")
    assert re.search(r"^User=fleet-agent$", text, re.M)
    caps = re.search(r"^AmbientCapabilities=(.*)$", text, re.M).group(1).split()
    assert sorted(caps) == ["CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE"]
    assert re.search(r"^CapabilityBoundingSet=(.*)$", text, re.M).group(1).split() == caps
    for cap in caps + ["CAP_SYS_ADMIN"]:
        assert f"{cap} " in text.split("[Unit]")[0], f"the header comment must say what {cap} is for"


def test_the_agent_units_command_line_is_accepted_by_fleet_agent_run():
    from agent.__main__ import build_parser

    argv = shlex.split(_exec_start(_unit("fleet-agent.service")).replace("${FLEET_SERVER}", "https://fleet.example.net"))
    argv = [a for a in argv if a != "$FLEET_AGENT_OPTS"] + ["--interval", "60", "--ca-file", "/etc/fleet-agent/ca.pem"]
    assert Path(argv[0]).name == "fleet-agent"
    args = build_parser().parse_args(argv[1:])
    assert (args.server, args.token_file, args.spool_dir) == (
        "https://fleet.example.net", "/etc/fleet-agent/token", "/var/lib/fleet-agent/spool")
