"""Starting and stopping the real processes of an end-to-end test: the web server (gunicorn),
Celery workers, a private Redis, the agent and management commands.

Every child points at the per-run test database (read from the test's Django connection)
and at a broker URL the test chooses, logs to a file in the test's tmp dir, and is
stopped by pid when the test ends.
"""
from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.05, proc: "Child | None" = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.popen.poll() is not None:
            raise AssertionError(f"{proc.name} exited with {proc.popen.returncode} while waiting for {what}:\n{proc.tail()}")
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f"\n{proc.tail()}" if proc else ""))


@functools.cache
def _gunicorn_private_flags() -> tuple[str, ...]:
    """Newer gunicorns open a control socket at one fixed path per user; parallel test servers must not share it."""
    out = subprocess.run([str(BIN / "gunicorn"), "--help"], capture_output=True, text=True, timeout=60).stdout
    return ("--no-control-socket",) if "--no-control-socket" in out else ()


@dataclass
class Child:
    """One child process whose stdout and stderr go to a log file."""

    name: str
    popen: subprocess.Popen
    log: Path
    stopped: bool = field(default=False)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 40) -> str:
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(self.text().splitlines()[-lines:])

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, sig)

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, then SIGKILL if it does not go; returns the exit code."""
        self.stopped = True
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            return self.popen.wait(5)

    def kill(self) -> int:
        self.stopped = True
        self.signal(signal.SIGKILL)
        return self.popen.wait(10)


class Processes:
    """The children of one test; `close()` stops whatever is still running."""

    def __init__(self, log_dir: Path, *, database_url: str, broker_url: str) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.children: list[Child] = []
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "fleet.settings",
            "DATABASE_URL": database_url,
            "FLEET_BROKER_URL": broker_url,
            "FLEET_VAR_DIR": str(log_dir / "var"),
            "FLEET_LOG_LEVEL": "INFO",
            # Short, so a message left unacknowledged by a killed worker comes back within the test.
            "FLEET_BROKER_VISIBILITY_TIMEOUT": "2",
            # The sweeper (run only where a test starts beat) re-queues what waited over a second.
            "FLEET_SWEEP_INTERVAL": "1",
            "FLEET_REQUEUE_AFTER": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO),
        }
        self.env.pop("REDIS_URL", None)

    def start(self, name: str, argv: list[str], *, env: dict | None = None) -> Child:
        log = self.log_dir / f"{name}-{len(self.children)}.log"
        fh = open(log, "wb")
        try:
            popen = subprocess.Popen(argv, cwd=REPO, env={**self.env, **(env or {})}, stdout=fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        finally:
            fh.close()
        child = Child(name, popen, log)
        self.children.append(child)
        return child

    # --- the server side ------------------------------------------------------------
    def web(self, port: int) -> Child:
        child = self.start("web", [str(BIN / "gunicorn"), "fleet.wsgi:application", "--bind", f"127.0.0.1:{port}",
                                   "--workers", "2", "--graceful-timeout", "5", "--access-logfile", "-",
                                   *_gunicorn_private_flags()])
        wait_until(lambda: port_open(port), timeout=30, what=f"gunicorn on port {port}", proc=child)
        return child

    @staticmethod
    def worker_argv(pool: str = "solo") -> list[str]:
        return [str(BIN / "celery"), "-A", "fleet", "worker", f"--pool={pool}", "--concurrency=1", "--loglevel=INFO",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"e2e-{uuid.uuid4().hex[:8]}@%h"]

    def worker(self, pool: str = "solo") -> Child:
        child = self.start("worker", self.worker_argv(pool))
        wait_until(lambda: " ready." in child.text(), timeout=60, what="the celery worker to be ready", proc=child)
        return child

    def redis(self, port: int) -> Child:
        server = shutil.which("redis-server")
        assert server, "redis-server is not installed"
        child = self.start("redis", [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "no", "--dir", str(self.log_dir)])
        wait_until(lambda: port_open(port), timeout=15, what=f"redis-server on port {port}", proc=child)
        return child

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    # --- the agent ------------------------------------------------------------------
    def agent(self, *args: str) -> Child:
        return self.start("agent", [str(BIN / "fleet-agent"), "run", *args])

    def close(self) -> None:
        for child in reversed(self.children):
            if child.popen.poll() is None:
                child.stop(timeout=10)

    def logs(self) -> str:
        return "\n".join(c.tail() for c in self.children)
