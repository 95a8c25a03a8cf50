"""The alert rules load in Prometheus and fire exactly when they should, checked by promtool itself.

``promtool`` comes from Debian's ``prometheus`` package; ``make test`` installs it when it runs as
root. Without it these tests skip locally and fail in CI, like the tests that need a service.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import IN_CI

yaml = pytest.importorskip("yaml")

RULES_DIR = Path(__file__).resolve().parents[2] / "ops" / "prometheus"
ALERTS = RULES_DIR / "alerts.yml"
ALERT_TESTS = RULES_DIR / "alerts_test.yml"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is not installed (apt-get install --no-install-recommends prometheus)"
        if IN_CI:
            pytest.fail(f"{message}; CI never skips the alert-rule tests", pytrace=False)
        pytest.skip(message)
    return found


def run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, cwd=RULES_DIR, timeout=120, check=False
    )


def test_promtool_accepts_the_alert_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", ALERTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_and_stays_silent_as_its_promtool_tests_say(promtool: str) -> None:
    result = run(promtool, "test", "rules", ALERT_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_does_not() -> None:
    alerts = {rule["alert"] for group in _load(ALERTS)["groups"] for rule in group["rules"]}
    cases = [check for test in _load(ALERT_TESTS)["tests"] for check in test["alert_rule_test"]]
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    silent = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert alerts - firing == set(), "alerts never shown to fire"
    assert alerts - silent == set(), "alerts never shown to stay silent"
    assert (firing | silent) - alerts == set(), "tests of alerts that do not exist"


def test_every_hookyard_series_in_the_rules_is_scoped_to_a_job() -> None:
    for group in _load(ALERTS)["groups"]:
        for rule in group["rules"]:
            expr = rule["expr"]
            for name in {word for word in _words(expr) if word.startswith("hookyard_")}:
                selectors = expr.split(name)[1:]
                assert all(part.lstrip().startswith('{job="hookyard-') for part in selectors), (
                    f"{rule['alert']}: {name} without a job matcher"
                )


def _words(expr: str) -> list[str]:
    return "".join(char if char.isalnum() or char == "_" else " " for char in expr).split()
