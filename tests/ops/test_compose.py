"""The compose file is accepted by Debian's docker-compose validator (no Docker engine needed)."""
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.services import system_tool

REPO = Path(__file__).resolve().parents[2]


def _compose():
    return system_tool("docker-compose", "docker-compose")


def _config(env_file: str, tmp_path, **extra):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "FLEET_ENV_FILE": env_file, **extra}
    return subprocess.run(
        [_compose(), "-f", str(REPO / "docker-compose.yml"), "--project-directory", str(REPO), "config"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )


def test_docker_compose_config_accepts_the_stack(tmp_path):
    done = _config(str(REPO / "deploy" / "env.example"), tmp_path, POSTGRES_PASSWORD="pw")
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert {"web", "worker", "beat", "db", "redis", "agent"} <= set(services)
    assert services["web"]["environment"]["DATABASE_URL"] == "postgres://fleet:pw@db:5432/fleet"
    assert "--root=/host" in services["agent"]["command"]


def test_docker_compose_refuses_to_run_without_a_database_password(tmp_path):
    done = _config(str(REPO / "deploy" / "env.example"), tmp_path)
    assert done.returncode != 0 and "POSTGRES_PASSWORD" in done.stderr
