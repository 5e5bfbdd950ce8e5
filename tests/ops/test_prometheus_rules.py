"""The shipped alert rules and Grafana dashboard: promtool's own tests pass, and every metric they
read exists in a real /metrics scrape of the app (a renamed series would silently never alert)."""
import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest
import redis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from fleet.metrics.task_failures import REDIS_KEY
from tests.accounts.fleet_data import a_violation, import_capture
from tests.services import system_tool

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "fleet-alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "fleet-alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "fleet.json"
TOKEN = "metrics-" + uuid.uuid4().hex
PROMETHEUS_OWN = {"up"}  # written by Prometheus for every scrape job, not by the app
# PromQL words that look like metric names: operators, modifiers, and the label grouping clauses' keywords.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not its functions, labels, strings or keywords)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|`[^`]*`', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = re.findall(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", expr)
    return {n for n in names if n.lower() not in KEYWORDS}


def test_the_name_extractor_finds_selectors_only():
    expr = ('histogram_quantile(0.95, sum by (endpoint, le) (rate(fleet_a_bucket{x="y or z"}[5m])))'
            ' / on(host) group_left fleet_b > bool 0 unless fleet_c offset 5m')
    assert metric_names(expr) == {"fleet_a_bucket", "fleet_b", "fleet_c"}


def test_promtool_checks_the_rules_and_runs_their_unit_tests():
    promtool = system_tool("promtool", "prometheus")
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    run = subprocess.run([promtool, "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout + run.stderr


def test_every_alert_has_a_promtool_test():
    rules = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    tested = {case["alertname"] for t in tests for case in t.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert alerts and alerts == tested, f"alerts never seen firing in a test: {sorted(alerts - tested)}"


@pytest.fixture
def scraped_names(client, settings, capture, redis_service, db):
    """Every sample name of a scrape of a fleet where each family has data (broker, failures, requests, hosts)."""
    from fleet.celery import app

    settings.FLEET_METRICS_TOKEN = TOKEN
    settings.CELERY_BROKER_URL = f"{redis_service}/13"
    host = import_capture(capture("shared-bridge-group"))
    a_violation(host, severity="critical")
    client.post("/api/v1/snapshots", b"{}", content_type="application/json", HTTP_AUTHORIZATION="Bearer nope")

    @app.task(name=f"tests.boom_{uuid.uuid4().hex[:8]}")
    def boom():
        raise RuntimeError("boom")

    boom.apply()
    try:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    finally:
        redis.Redis.from_url(settings.CELERY_BROKER_URL).hdel(REDIS_KEY, boom.name)
    assert response.status_code == 200
    names = {s.name for f in text_string_to_metric_families(response.content.decode()) for s in f.samples}
    assert "fleet_host_violations_open" in names and "fleet_queue_depth" in names
    return names


def _rule_exprs() -> list[str]:
    return [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            exprs.append(re.fullmatch(r"label_values\((\w+),\s*\w+\)", query).group(1))
    return exprs


@pytest.mark.redis
@pytest.mark.parametrize("source", ["alert rules", "grafana dashboard"])
def test_every_metric_the_rules_and_dashboard_read_is_scraped(scraped_names, source):
    exprs = _rule_exprs() if source == "alert rules" else _dashboard_exprs()
    used = set().union(*(metric_names(e) for e in exprs))
    assert len(used) >= 8, f"the {source} read too few metrics to be the real file: {sorted(used)}"
    missing = used - scraped_names - PROMETHEUS_OWN
    assert not missing, f"the {source} read metrics /metrics does not expose: {sorted(missing)}"
