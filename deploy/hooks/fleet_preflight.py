"""Shared by the VM-start hooks beside it: read the config, ask the fleet server's pre-flight, print
the verdict for the VM's log. Standard library only: it runs on the hypervisor host.

Config (INI, /etc/iommu-fleet/preflight.conf, or the file named by $FLEET_PREFLIGHT_CONFIG):

    [preflight]
    server = https://fleet.example.net     ; required
    token_file = /etc/iommu-fleet/preflight.token   ; an API token with the preflight scope (mode 0600)
    timeout = 5                            ; seconds for the whole call
    unreachable = closed                   ; closed: refuse the start when no verdict comes; open: allow it
    host =                                 ; this host's name in the fleet (default: the system's host name)
    tenant =                               ; sent as owner.tenant
    ca_file =                              ; CA bundle for the server's certificate
"""
from __future__ import annotations

import configparser
import json
import os
import socket
import ssl
import sys
import urllib.error
import urllib.request

DEFAULT_CONFIG = "/etc/iommu-fleet/preflight.conf"
ALLOW, DENY = 0, 1
MAX_ANSWER = 1 << 20  # a verdict is small; a server (or something posing as one) sending more is not believed


class ConfigError(Exception):
    pass


def load_config(path: str | None = None) -> dict:
    path = path or os.environ.get("FLEET_PREFLIGHT_CONFIG") or DEFAULT_CONFIG
    parser = configparser.ConfigParser()
    if not parser.read(path):
        raise ConfigError(f"cannot read {path}")
    section = parser["preflight"] if parser.has_section("preflight") else {}
    server = section.get("server", "").strip().rstrip("/")
    if not server:
        raise ConfigError(f"{path}: [preflight] server is not set")
    token_file = section.get("token_file", "").strip()
    try:
        with open(token_file, encoding="ascii") as f:
            token = f.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read token_file {token_file!r}: {exc}") from exc
    unreachable = section.get("unreachable", "closed").strip().lower()
    if unreachable not in ("open", "closed"):
        raise ConfigError(f"{path}: unreachable is open or closed, not {unreachable!r}")
    try:
        timeout = float(section.get("timeout", "5"))
    except ValueError as exc:
        raise ConfigError(f"{path}: timeout is a number of seconds") from exc
    return {"server": server, "token": token, "timeout": timeout, "unreachable": unreachable,
            "host": section.get("host", "").strip() or socket.gethostname(),
            "tenant": section.get("tenant", "").strip() or None, "ca_file": section.get("ca_file", "").strip() or None}


def ask(config: dict, vm: str, devices: list[str]) -> tuple[int | None, dict | str]:
    """(HTTP status, answer) from the server; (None, why) when no answer came."""
    body = json.dumps({"host": config["host"], "devices": devices, "owner": {"vm": vm, "tenant": config["tenant"]}}).encode()
    request = urllib.request.Request(f"{config['server']}/api/v1/preflight", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {config['token']}"})
    context = ssl.create_default_context(cafile=config["ca_file"]) if config["server"].startswith("https:") else None
    try:
        with urllib.request.urlopen(request, timeout=config["timeout"], context=context) as response:
            return response.status, json.loads(response.read(MAX_ANSWER))
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read(MAX_ANSWER))
        except ValueError:
            return exc.code, {}
    except (OSError, ValueError) as exc:  # refused, timed out, TLS, DNS, a body that is not JSON
        return None, str(exc)


def _say(line: str) -> None:
    print(f"fleet pre-flight: {line}", file=sys.stderr)


def decide(config: dict, vm: str, devices: list[str]) -> int:
    """Exit status for the hook: ALLOW or DENY, with the reasons and the plan on stderr (libvirt keeps it in the VM's log)."""
    if not devices:
        return ALLOW
    status, answer = ask(config, vm, devices)
    if status == 200 and isinstance(answer, dict) and answer.get("decision") in ("allow", "deny"):
        if answer["decision"] == "allow":
            return ALLOW
        _say(f"start of {vm} on {config['host']} refused: giving it {', '.join(devices)} would break IOMMU isolation")
        for reason in answer.get("reasons") or []:
            _say(f"  - {reason}")
        plan = answer.get("plan") or []
        if plan:
            _say("a plan that would make it pass (dry run, nothing was changed):")
            for step in plan:
                _say(f"  {step.get('order')}. {step.get('command')}")
        return DENY
    why = answer if status is None else f"the server answered {status}: {json.dumps(answer)[:500]}"
    if config["unreachable"] == "open":
        _say(f"no verdict for {vm} ({why}); starting anyway (unreachable = open)")
        return ALLOW
    _say(f"no verdict for {vm} ({why}); start refused (unreachable = closed)")
    return DENY


def run(vm: str, devices: list[str]) -> int:
    if not devices:
        return ALLOW  # no PCI device, nothing to check: a VM without one never waits on the fleet server
    try:
        config = load_config()
    except ConfigError as exc:
        _say(f"start of {vm} refused: {exc}")
        return DENY
    return decide(config, vm, devices)
