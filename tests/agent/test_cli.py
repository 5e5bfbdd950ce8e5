"""`fleet-agent` run as a user runs it: a subprocess of `python -m agent` on the captures (and, for
`run`'s configuration errors, `main()` in this process)."""
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.__main__ import main
from tests.agent import groundtruth
from tests.agent.captures import CAPTURE_NAMES

REPO = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[")


def find_groups(root):
    groups = {}
    for gid, bdf in groundtruth.find_groups(root):
        groups.setdefault(gid, set()).add(bdf)
    return groups


def agent(*args, env=None):
    full_env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "agent", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, env=full_env, timeout=120)


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_collect_prints_one_json_snapshot_whose_groups_match_find(capture, name):
    root = capture(name)
    result = agent("collect", "--root", root)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert {g["id"]: set(g["devices"]) for g in doc["groups"]} == find_groups(root)
    assert doc["schema"] == 2


def test_collect_output_file_is_written_whole_and_pretty(capture, tmp_path):
    out = tmp_path / "snap.json"
    result = agent("collect", "--root", capture("isolated-nics"), "--pretty", "--output", out)
    assert result.returncode == 0 and result.stdout == ""
    text = out.read_text()
    assert text.startswith("{\n  ") and json.loads(text)["host"]["hostname"]
    assert [p.name for p in tmp_path.iterdir()] == ["snap.json"]


def test_show_names_the_non_viable_group_and_its_members(capture):
    root = capture("shared-bridge-group")
    result = agent("show", "--root", root)
    assert result.returncode == 3, result.stderr  # a critical problem is shown: the group is not viable
    (gid, members), = [(g, m) for g, m in find_groups(root).items() if len(m) > 1 and any(b.startswith("0000:02:") for b in m)]
    section = next(p for p in result.stdout.split("\n\n") if p.startswith(f"Group {gid} "))
    assert "not viable" in section
    assert all(bdf in section for bdf in members)


def test_piped_show_has_no_ansi_escapes_and_color_always_has_them(capture):
    root = capture("shared-bridge-group")
    piped = agent("show", "--root", root)
    assert not ANSI.search(piped.stdout)
    forced = agent("show", "--root", root, "--color", "always")
    assert ANSI.search(forced.stdout)
    assert re.sub(r"\x1b\[[0-9;]*m", "", forced.stdout) == piped.stdout


def show_on_a_terminal(root, env):
    """`show --color auto` with stdout on a pseudo-terminal, as when a person runs it."""
    import pty

    leader, follower = pty.openpty()
    full_env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    full_env.update(env)
    proc = subprocess.Popen([sys.executable, "-m", "agent", "show", "--root", str(root)], cwd=REPO,
                            stdout=follower, stderr=subprocess.DEVNULL, env=full_env)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO once the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert proc.wait(timeout=120) in (0, 3)  # 3: it showed a critical problem (no-iommu: IOMMU off, a device on UIO)
    return b"".join(chunks).decode()


def test_a_terminal_gets_colour_unless_no_color_is_set(capture):
    root = capture("no-iommu")
    assert ANSI.search(show_on_a_terminal(root, {"TERM": "xterm"}))
    assert not ANSI.search(show_on_a_terminal(root, {"TERM": "xterm", "NO_COLOR": "1"}))


@pytest.mark.parametrize("make_root", [
    lambda tmp: tmp / "does-not-exist",
    lambda tmp: (tmp / "file").write_text("x") and tmp / "file",
    lambda tmp: tmp,  # an empty directory: neither sys/ nor proc/
    # A FreeBSD root: /sys links to the kernel sources, /proc is empty.
    lambda tmp: (tmp / "usr/src/sys/kern").mkdir(parents=True) or (tmp / "proc").mkdir()
    or (tmp / "sys").symlink_to("usr/src/sys") or tmp,
])
def test_a_root_that_is_not_a_linux_tree_exits_2_with_one_line(tmp_path, make_root):
    root = make_root(tmp_path)
    for command in ("collect", "show"):
        result = agent(command, "--root", root)
        assert result.returncode == 2
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
        assert str(root) in result.stderr


def test_an_unwritable_output_is_one_line_and_exit_1(capture, tmp_path):
    result = agent("collect", "--root", capture("no-iommu"), "--output", tmp_path / "missing-dir" / "x.json")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_run_is_wired_to_the_push_loop():
    result = agent("run", "--help")
    assert result.returncode == 0
    assert "--server" in result.stdout and "--token-file" in result.stdout


def test_live_host_collect_lists_exactly_the_pci_devices_in_sysfs():
    result = agent("collect")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert sorted(d["bdf"] for d in doc["devices"]) == sorted(os.listdir("/sys/bus/pci/devices"))



def fleet_agent_run(**kw) -> int:
    """`fleet-agent run` in this process, with these options (`once=True` -> `--once`)."""
    argv = ["run"]
    for key, value in kw.items():
        flag = "--" + key.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return main(argv)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_token_file_readable_by_others_is_refused_with_exit_code_2(tmp_path, token_file, mode, caplog):
    token_file.chmod(mode)
    with caplog.at_level(logging.ERROR):
        rc = fleet_agent_run(server="http://127.0.0.1:9", token_file=token_file, spool_dir=tmp_path / "s", once=True)
    assert rc == 2
    assert any("chmod 600" in r.getMessage() for r in caplog.records)


def test_a_missing_ca_file_is_a_usage_error_naming_it(tmp_path, token_file, caplog):
    with caplog.at_level(logging.ERROR):
        rc = fleet_agent_run(server="https://127.0.0.1:9", token_file=token_file, spool_dir=tmp_path / "s",
                             ca_file=tmp_path / "nope.pem", once=True)
    assert rc == 2
    assert any("--ca-file" in r.getMessage() for r in caplog.records)
