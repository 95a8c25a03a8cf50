"""The real ``hookyard scheduler`` expires a reservation left unsettled, on its sweep rounds."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import pytest

from contracts.usage import BudgetPeriod
from ops import budgets, tenancy
from tests.conftest import free_port
from tests.support.processes import HookyardProcess, fleet_env
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def test_the_scheduler_expires_an_unsettled_reservation_and_frees_its_amount(
    fresh_database_url: str, tmp_path: Path
) -> None:
    acme = tenancy.parse_project("acme")
    tenancy.create_project(fresh_database_url, acme)
    budgets.set_budget(
        fresh_database_url, acme, "tokens", period=BudgetPeriod.TOTAL, amount=Decimal(10), unit="tokens"
    )
    held = budgets.reserve(fresh_database_url, acme, "tokens", Decimal(4), ttl_seconds=1)
    metrics_port = free_port()
    scheduler = HookyardProcess(
        ["scheduler"],
        fleet_env(
            DATABASE_URL=fresh_database_url,
            HOOKYARD_SWEEP_INTERVAL="1",
            HOOKYARD_SCHEDULER_METRICS_PORT=str(metrics_port),
            HOOKYARD_LOG_FORMAT="json",
        ),
        tmp_path / "scheduler.log",
    )
    try:
        with psycopg.connect(fresh_database_url, autocommit=True) as conn:
            wait_until(
                lambda: (
                    conn.execute(
                        "SELECT state = 'expired' FROM budget_reservations WHERE id = %s",
                        (held.reservation_id,),
                    ).fetchone()
                    == (True,)
                ),
                timeout=20,
                what="the scheduler to expire the reservation",
            )
            assert conn.execute("SELECT reserved_amount FROM resource_budgets").fetchone() == (0,)
        exported = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        assert 'hookyard_reservations_expired_total{enforcement="hard"} 1.0' in exported
    finally:
        scheduler.stop()
