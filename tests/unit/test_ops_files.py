"""The Docker and observability files parse, and name only metrics and labels that Hookyard exports.

A typo in an alert's metric name or label fails silently in Prometheus (the alert never fires), so
every ``hookyard_*`` series in ops/prometheus/alerts.yml and ops/grafana/hookyard.json is checked
against the metric objects of :mod:`hookyard.metrics`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase

from hookyard import metrics
from ops.cli import cli

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "ops" / "prometheus" / "prometheus.yml"
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "hookyard.json"
PROVISIONING = ROOT / "ops" / "grafana" / "provisioning"

HOOKYARD_SERVICES = ("migrate", "web", "worker", "scheduler")
SECRETS = ("GITHUB_WEBHOOK_SECRET", "SLACK_SIGNING_SECRET", "LINEAR_WEBHOOK_SECRET", "HOOKYARD_INGEST_TOKEN")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})

METRIC_NAME = re.compile(r"\bhookyard_[a-z_]+")
SELECTOR = re.compile(r"\b(hookyard_[a-z_]+)\s*\{([^}]*)\}")
MATCHER_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def _load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _exported() -> dict[str, frozenset[str]]:
    """Every series name a Hookyard process can expose, with the label names it carries."""
    series: dict[str, frozenset[str]] = {}
    for obj in vars(metrics).values():
        if not isinstance(obj, MetricWrapperBase):
            continue
        labels = frozenset(obj._labelnames)  # prometheus_client keeps label names private
        for family in obj.describe():
            if family.type == "counter":
                series[f"{family.name}_total"] = labels
            elif family.type == "histogram":
                series[f"{family.name}_bucket"] = labels | {"le"}
                series[f"{family.name}_sum"] = labels
                series[f"{family.name}_count"] = labels
            else:
                series[family.name] = labels
    return series


EXPORTED = _exported()


def _families() -> set[str]:
    """Series names with the histogram suffixes stripped: what prose may mention."""
    names = set()
    for name in EXPORTED:
        family = name
        for suffix in HISTOGRAM_SUFFIXES:
            if family.endswith(suffix) and f"{family.removesuffix(suffix)}_bucket" in EXPORTED:
                family = family.removesuffix(suffix)
        names.add(family)
    return names


def _alert_rules() -> list[dict[str, Any]]:
    return [rule for group in _load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target["expr"] for panel in _panels(dashboard["panels"]) for target in panel.get("targets", [])]


def _all_exprs() -> list[str]:
    return [rule["expr"] for rule in _alert_rules()] + _dashboard_exprs()


def test_the_metric_registry_is_what_the_checks_assume() -> None:
    assert "hookyard_http_requests_total" in EXPORTED
    assert EXPORTED["hookyard_http_request_duration_seconds_bucket"] == {"endpoint", "le"}
    assert "hookyard_broker_connected" in EXPORTED


@pytest.mark.parametrize("path", [ALERTS, DASHBOARD], ids=lambda p: p.name)
def test_every_metric_named_in_the_file_exists(path: Path) -> None:
    families = _families()
    named = set()
    for name in METRIC_NAME.findall(path.read_text(encoding="utf-8")):
        family = name
        for suffix in HISTOGRAM_SUFFIXES:
            family = family.removesuffix(suffix)
        named.add(family)
    assert named, f"{path.name} names no hookyard metric"
    assert not named - families, f"{path.name} names metrics hookyard.metrics does not export"


def test_every_query_selects_exported_series_with_their_labels() -> None:
    exprs = _all_exprs()
    assert exprs
    for expr in exprs:
        used = set(METRIC_NAME.findall(expr))
        assert not used - EXPORTED.keys(), f"not an exported series in: {expr}"
        for name, matchers in SELECTOR.findall(expr):
            unknown = set(MATCHER_LABEL.findall(matchers)) - EXPORTED[name] - TARGET_LABELS
            assert not unknown, f"{name} has no label {sorted(unknown)} in: {expr}"
        if not used:
            continue
        available = set().union(*(EXPORTED[name] for name in used)) | TARGET_LABELS
        for group in GROUPING.findall(expr):
            labels = {label.strip() for label in group.split(",") if label.strip()}
            assert labels <= available, f"grouping by {sorted(labels - available)} in: {expr}"


def test_alert_rules_are_complete() -> None:
    rules = _alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names repeat"
    for rule in rules:
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{rule['alert']} has no `for:`"
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]
    exprs = " ".join(rule["expr"] for rule in rules)
    for metric in (
        "hookyard_broker_connected",
        "hookyard_dead_letters_total",
        "hookyard_transient_failures_total",
        "hookyard_event_freshness_seconds_bucket",
        "hookyard_default_partition_rows",
        "hookyard_scheduler_last_run_timestamp_seconds",
        "hookyard_events_stored_total",
        "hookyard_events_accepted_total",
        "hookyard_publish_failures_total",
    ):
        assert metric in exprs, f"no alert watches {metric}"


def test_prometheus_scrapes_web_and_worker_and_loads_the_rules() -> None:
    config = _load_yaml(PROMETHEUS)
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    assert {"web:8000", "worker:9191"} <= targets
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in config["scrape_configs"])
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS.parent / rule_file).is_file(), rule_file


def test_dashboard_uses_its_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    variables = {var["name"]: var for var in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    panels = [panel for panel in _panels(dashboard["panels"]) if panel["type"] != "row"]
    ids = [panel["id"] for panel in _panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    assert dashboard["uid"]
    assert dashboard["schemaVersion"] >= 36
    for panel in panels:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]


def test_grafana_provisioning_matches_the_compose_mounts() -> None:
    datasource = _load_yaml(PROVISIONING / "datasources" / "prometheus.yml")["datasources"][0]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    provider = _load_yaml(PROVISIONING / "dashboards" / "hookyard.yml")["providers"][0]
    grafana = _load_yaml(COMPOSE)["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    assert mounts["./ops/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["./ops/grafana/hookyard.json"] == f"{provider['options']['path']}/hookyard.json"


def test_compose_runs_the_fleet_with_shared_configuration() -> None:
    compose = _load_yaml(COMPOSE)
    services = compose["services"]
    assert {"postgres", "rabbitmq", *HOOKYARD_SERVICES, "prometheus", "grafana"} <= services.keys()
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["rabbitmq"]["image"] == "rabbitmq:3.10-management"
    for name in ("postgres", "rabbitmq"):
        assert services[name]["healthcheck"]["test"], name
    for name in HOOKYARD_SERVICES:
        service = services[name]
        env = service["environment"]
        assert env["DATABASE_URL"] == "postgresql://postgres:postgres@postgres:5432/hookyard", name
        assert env["AMQP_URL"] == "amqp://guest:guest@rabbitmq:5672/%2F", name
        for secret in SECRETS:
            assert env[secret] == f"${{{secret}:-}}", (
                f"{name}: {secret} must come from the host, unset allowed"
            )
        # The image's entrypoint is `hookyard`: the command is a subcommand and flags the CLI knows.
        subcommand, *args = service["command"]
        assert subcommand in cli.commands, f"{name}: `hookyard {subcommand}` does not exist"
        known = {opt for param in cli.commands[subcommand].params for opt in param.opts}
        assert {arg for arg in args if arg.startswith("-")} <= known, name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["rabbitmq"]["condition"] == "service_healthy", name
    assert services["web"]["command"][1:] == ["--host", "0.0.0.0", "--port", "8000"]  # noqa: S104
    assert "8000:8000" in services["web"]["ports"]
    assert "9191:9191" in services["worker"]["ports"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["observability"], name
    for volume in services["prometheus"]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (ROOT / source).exists(), source


def test_dockerfile_runs_hookyard_unprivileged() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim|^ARG PYTHON_IMAGE=python:3\.11-slim", dockerfile, re.M)
    assert 'ENTRYPOINT ["hookyard"]' in dockerfile
    user = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert user, "the image must name its user"
    assert not user[-1].startswith(("root", "0")), "the image must not run as root"
    assert "pip install -e" not in dockerfile
    assert "--editable" not in dockerfile
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv/", ".git/", "bench/results/"} <= set(ignored)
