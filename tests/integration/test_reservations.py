"""Budget reservations on the real server and PostgreSQL: reserve, commit, release, expire.

Over real HTTP on a real uvicorn server with its own migrated database, and through migration
0013's functions called with explicit times where a test needs a clock of its own. The
concurrency test runs OS processes against one hard budget and checks the ledger to the cent.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from contracts.keys import Scope
from contracts.usage import BudgetPeriod, period_bounds
from ops import budgets as ops_budgets
from ops import tenancy
from tests.conftest import INGEST_TOKENS, InProcessServer, free_port, make_settings
from tests.support.waiting import wait_until
from workers.reservations import expire_reservations

OPERATOR = {"Authorization": f"Bearer {INGEST_TOKENS[0]}"}
RESERVATIONS = "/v1/budgets/reservations"


@dataclass
class Clock:
    """The scheduler's clock, set by the test."""

    at: datetime

    def now(self) -> datetime:
        return self.at


def rows(database_url: str, statement: str, params: Any = None) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def one(database_url: str, statement: str, params: Any = None) -> dict[str, Any]:
    found = rows(database_url, statement, params)
    assert len(found) == 1, found
    return found[0]


def make_project(database_url: str, slug: str) -> int:
    return tenancy.create_project(database_url, tenancy.parse_project(slug)).id


def set_budget(
    database_url: str, project: str, resource_type: str, amount: str, **settings: Any
) -> ops_budgets.SetBudget:
    settings.setdefault("period", BudgetPeriod.TOTAL)
    settings.setdefault("unit", "tokens")
    return ops_budgets.set_budget(
        database_url, tenancy.parse_project(project), resource_type, amount=Decimal(amount), **settings
    )


def budget_row(database_url: str, project_id: int, resource_type: str) -> dict[str, Any]:
    return one(
        database_url,
        "SELECT * FROM resource_budgets WHERE project_id = %s AND resource_type = %s",
        (project_id, resource_type),
    )


def reserve(
    http: httpx.Client, resource_type: str, amount: Any, *, project: str | None = "acme", **fields: Any
) -> httpx.Response:
    body = {
        "id": fields.pop("id", str(uuid.uuid4())),
        "resource_type": resource_type,
        "amount": amount,
        **fields,
    }
    if project is not None:
        body["project"] = project
    return http.post(RESERVATIONS, json=body)


def commit(http: httpx.Client, reservation_id: str, amount: Any) -> httpx.Response:
    return http.post(f"{RESERVATIONS}/{reservation_id}/commit", json={"amount": amount})


def release(http: httpx.Client, reservation_id: str) -> httpx.Response:
    return http.post(f"{RESERVATIONS}/{reservation_id}/release")


@pytest.fixture
def database(fresh_database_url: str) -> str:
    make_project(fresh_database_url, "acme")
    return fresh_database_url


@pytest.fixture
def running(database: str, amqp_url: str) -> Iterator[InProcessServer]:
    with InProcessServer(make_settings(database, amqp_url)) as server:
        yield server


@pytest.fixture
def http(running: InProcessServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running.url, headers=OPERATOR, timeout=30) as client:
        yield client


# -- reserve, commit, release, expire over HTTP ------------------------------------------------------


def test_a_reservation_is_held_then_committed_into_usage_once_however_often_either_is_sent(
    database: str, http: httpx.Client
) -> None:
    project_id = one(database, "SELECT id FROM projects WHERE slug = 'acme'")["id"]
    set_budget(database, "acme", "tokens", "100")

    first = reserve(http, "tokens", "30", id="job-1", ttl_seconds=600)
    assert first.status_code == 201, first.text
    held = first.json()
    assert held["state"] == "held"
    assert held["amount"] == "30"
    assert held["remaining"] == "70"
    assert held["overrun"] == "0"
    again = reserve(http, "tokens", "99", id="job-1")  # the same id: the first reservation again
    assert again.status_code == 201, again.text
    assert again.json()["reservation_id"] == held["reservation_id"]
    assert again.json()["amount"] == "30"
    assert budget_row(database, project_id, "tokens")["reserved_amount"] == Decimal(30)

    done = commit(http, held["reservation_id"], 25.5)
    assert done.status_code == 200, done.text
    assert done.json() == {
        "reservation_id": held["reservation_id"],
        "state": "committed",
        "committed": "25.5",
        "remaining": "74.5",
    }
    repeated = commit(http, held["reservation_id"], "12")
    assert repeated.status_code == 200, repeated.text
    assert repeated.json()["committed"] == "25.5"  # the first commit's, not this one's
    assert reserve(http, "tokens", "30", id="job-1").json()["state"] == "committed"

    row = budget_row(database, project_id, "tokens")
    assert (row["used_amount"], row["reserved_amount"]) == (Decimal("25.5"), Decimal(0))
    usage = rows(database, "SELECT * FROM resource_usage")
    assert len(usage) == 1
    assert usage[0]["usage_id"] == f"reservation:{held['reservation_id']}"
    assert usage[0]["origin"] == "reservation"
    assert usage[0]["amount"] == Decimal("25.5")
    assert usage[0]["unit"] == "tokens"
    keys = rows(database, "SELECT source, delivery_id FROM event_keys")
    assert keys == [{"source": "usage", "delivery_id": f"{project_id}:reservation:{held['reservation_id']}"}]
    alerts = rows(database, "SELECT threshold FROM budget_alerts ORDER BY threshold")
    assert alerts == []  # 25.5 of 100 reaches no threshold


def test_a_released_reservation_frees_its_amount_once_and_can_no_longer_be_committed(
    database: str, http: httpx.Client
) -> None:
    project_id = one(database, "SELECT id FROM projects WHERE slug = 'acme'")["id"]
    set_budget(database, "acme", "tokens", "100")
    held = reserve(http, "tokens", 40).json()

    released = release(http, held["reservation_id"])
    assert released.status_code == 200, released.text
    assert released.json() == {
        "reservation_id": held["reservation_id"],
        "state": "released",
        "remaining": "100",
    }
    assert release(http, held["reservation_id"]).json()["state"] == "released"
    assert budget_row(database, project_id, "tokens")["reserved_amount"] == 0

    refused = commit(http, held["reservation_id"], 10)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "reservation_closed"
    assert refused.json()["state"] == "released"
    assert rows(database, "SELECT * FROM resource_usage") == []

    committed = reserve(http, "tokens", 10).json()
    assert commit(http, committed["reservation_id"], 10).status_code == 200
    closed = release(http, committed["reservation_id"])
    assert closed.status_code == 409
    assert closed.json()["error"] == "reservation_closed"


def test_a_hard_budget_refuses_what_it_cannot_cover_and_says_what_remains(
    database: str, http: httpx.Client
) -> None:
    project_id = one(database, "SELECT id FROM projects WHERE slug = 'acme'")["id"]
    set_budget(database, "acme", "tokens", "100")
    assert reserve(http, "tokens", 60).status_code == 201

    refused = reserve(http, "tokens", "40.0000000001", id="too-much")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "budget_exceeded"
    assert refused.json()["remaining"] == "40"
    assert reserve(http, "tokens", "40").status_code == 201  # exactly what remains
    assert reserve(http, "tokens", "0.0000000001").status_code == 409

    # A refusal holds nothing: the same id may ask again once there is room.
    held = rows(database, "SELECT id FROM budget_reservations ORDER BY created_at")
    assert len(held) == 2
    assert release(http, str(held[0]["id"])).status_code == 200
    assert reserve(http, "tokens", "40.0000000001", id="too-much").status_code == 201
    row = budget_row(database, project_id, "tokens")
    assert row["used_amount"] + row["reserved_amount"] <= row["allocated_amount"]

    # Committing more than was reserved takes the rest from the budget, when it has it.
    reservation = rows(database, "SELECT id FROM budget_reservations WHERE client_id = 'too-much'")[0]["id"]
    over = commit(http, str(reservation), "100")
    assert over.status_code == 409
    assert over.json()["error"] == "budget_exceeded"
    assert commit(http, str(reservation), "59.9999999999").status_code == 200
    row = budget_row(database, project_id, "tokens")
    assert (row["used_amount"], row["reserved_amount"]) == (Decimal("59.9999999999"), Decimal(40))


def test_a_soft_budget_grants_past_its_allocation_and_records_the_overrun(
    database: str, http: httpx.Client
) -> None:
    project_id = one(database, "SELECT id FROM projects WHERE slug = 'acme'")["id"]
    set_budget(database, "acme", "tokens", "100", soft=True)
    assert reserve(http, "tokens", 80).json()["overrun"] == "0"

    over = reserve(http, "tokens", 50, id="over")
    assert over.status_code == 201, over.text
    assert over.json()["overrun"] == "30"
    assert over.json()["remaining"] == "-30"
    recorded = one(database, "SELECT overrun FROM budget_reservations WHERE client_id = 'over'")
    assert recorded["overrun"] == 30

    assert commit(http, over.json()["reservation_id"], 70).json()["remaining"] == "-50"
    recorded = one(
        database, "SELECT overrun, committed_amount FROM budget_reservations WHERE client_id = 'over'"
    )
    assert (recorded["overrun"], recorded["committed_amount"]) == (50, 70)
    row = budget_row(database, project_id, "tokens")
    assert (row["used_amount"], row["reserved_amount"]) == (70, 80)
    assert [a["threshold"] for a in rows(database, "SELECT threshold FROM budget_alerts ORDER BY 1")] == [50]


def test_a_project_without_a_budget_for_the_resource_reserves_nothing(
    database: str, http: httpx.Client
) -> None:
    set_budget(database, "acme", "tokens", "100")
    for project, resource_type in (("acme", "calls"), ("nobody-here", "tokens")):
        refused = reserve(http, resource_type, 1, project=project)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == "no_budget"
    missing = reserve(http, "tokens", 1, project=None)
    assert missing.status_code == 422
    assert missing.json()["errors"] == [{"field": "project", "message": "Field required"}]
    assert rows(database, "SELECT * FROM budget_reservations") == []


def test_bodies_and_ids_that_are_not_reservations_are_refused(database: str, http: httpx.Client) -> None:
    set_budget(database, "acme", "tokens", "100")
    for amount in (0, -1, "0", "1e3", "12.12345678901", True, None, "", 1e15):
        assert reserve(http, "tokens", amount).status_code == 422, amount
    assert reserve(http, "tokens", 1, ttl_seconds=0).status_code == 422
    assert reserve(http, "tokens", 1, ttl_seconds=86_401).status_code == 422
    assert reserve(http, "tokens", 1, ttl_seconds="60").status_code == 422
    assert reserve(http, "tok\x00ens", 1).status_code == 422
    assert reserve(http, "tokens", 1, surprise=True).status_code == 422
    assert (
        http.post(RESERVATIONS, content=b"[]", headers={"Content-Type": "application/json"}).status_code
        == 400
    )
    assert http.post(RESERVATIONS, content=b"{}", headers={"Content-Type": "text/plain"}).status_code == 415

    for target in (str(uuid.uuid4()), "not-a-uuid"):
        for response in (commit(http, target, 1), release(http, target)):
            assert response.status_code == 404, response.text
            assert response.json()["error"] == "not_found"
    # A number is rounded to 10 places, as the column stores it; a string is taken exactly.
    assert reserve(http, "tokens", 0.123456789012).json()["amount"] == "0.123456789"
    assert rows(database, "SELECT * FROM resource_usage") == []


def test_an_unsettled_reservation_expires_with_the_scheduler_and_cannot_be_committed_after(
    database: str, http: httpx.Client
) -> None:
    project_id = one(database, "SELECT id FROM projects WHERE slug = 'acme'")["id"]
    set_budget(database, "acme", "tokens", "100", soft=True)
    short = reserve(http, "tokens", 10, ttl_seconds=60).json()
    long = reserve(http, "tokens", 20, ttl_seconds=3600).json()
    assert reserve(http, "tokens", 30, ttl_seconds=900).json()["expires_at"]  # default is 900 too

    with psycopg.connect(database, autocommit=True) as conn:
        assert expire_reservations(conn, Clock(datetime.now(UTC))) == 0
        assert expire_reservations(conn, Clock(datetime.now(UTC) + timedelta(seconds=61))) == 1
        assert expire_reservations(conn, Clock(datetime.now(UTC) + timedelta(seconds=61))) == 0
    assert budget_row(database, project_id, "tokens")["reserved_amount"] == 50

    closed = commit(http, short["reservation_id"], 10)
    assert closed.status_code == 409, closed.text
    assert closed.json() == {
        "error": "reservation_closed",
        "detail": closed.json()["detail"],
        "state": "expired",
    }
    assert release(http, short["reservation_id"]).json()["state"] == "expired"  # free either way
    assert commit(http, long["reservation_id"], 20).status_code == 200
    assert budget_row(database, project_id, "tokens")["reserved_amount"] == 30


def test_a_reservation_past_its_ttl_is_expired_by_the_commit_that_meets_it(
    database: str, http: httpx.Client
) -> None:
    project_id = one(database, "SELECT id FROM projects WHERE slug = 'acme'")["id"]
    set_budget(database, "acme", "tokens", "100")
    held = reserve(http, "tokens", 10, ttl_seconds=1).json()
    wait_until(
        lambda: datetime.fromisoformat(held["expires_at"]) < datetime.now(UTC) - timedelta(seconds=0.2),
        what="the reservation's TTL to pass",
    )
    closed = commit(http, held["reservation_id"], 10)
    assert closed.status_code == 409, closed.text
    assert closed.json()["state"] == "expired"
    assert budget_row(database, project_id, "tokens")["reserved_amount"] == 0
    assert rows(database, "SELECT * FROM resource_usage") == []


def test_a_project_key_reserves_for_its_own_project_and_settles_only_its_own_reservations(
    database: str, running: InProcessServer
) -> None:
    make_project(database, "other")
    set_budget(database, "acme", "tokens", "100")
    set_budget(database, "other", "tokens", "100")
    public_url = running.url
    acme = tenancy.create_key(database, tenancy.parse_project("acme"), public_url=public_url).key
    other = tenancy.create_key(database, tenancy.parse_project("other"), public_url=public_url).key
    no_scope = tenancy.create_key(
        database, tenancy.parse_project("acme"), public_url=public_url, scopes=(Scope.USAGE,)
    ).key

    def client(key: str) -> httpx.Client:
        return httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    with client(acme) as as_acme, client(other) as as_other, client(no_scope) as unscoped:
        held = wait_until(
            lambda: (r := reserve(as_acme, "tokens", 5, project=None)).status_code == 201 and r,
            what="the server to load the new keys",
        ).json()
        named = reserve(as_acme, "tokens", 5, project="other")
        assert named.status_code == 403
        assert named.json()["error"] == "forbidden_project"
        for response in (
            commit(as_other, held["reservation_id"], 5),
            release(as_other, held["reservation_id"]),
        ):
            assert response.status_code == 403, response.text
            assert response.json()["error"] == "forbidden_project"
        missing = reserve(unscoped, "tokens", 5, project=None)
        assert missing.status_code == 403
        assert missing.json()["error"] == "missing_scope"
        assert commit(as_acme, held["reservation_id"], 5).status_code == 200
    anonymous = httpx.post(
        f"{running.url}{RESERVATIONS}", json={"id": "x", "resource_type": "t", "amount": 1}
    )
    assert anonymous.status_code == 401


def test_reservations_answer_503_with_retry_after_while_postgresql_is_unreachable(amqp_url: str) -> None:
    settings = make_settings(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere", amqp_url)
    with (
        InProcessServer(settings) as server,
        httpx.Client(base_url=server.url, headers=OPERATOR, timeout=30) as client,
    ):
        for response in (
            reserve(client, "tokens", 1),
            commit(client, str(uuid.uuid4()), 1),
            release(client, str(uuid.uuid4())),
        ):
            assert response.status_code == 503, response.text
            assert response.json()["error"] == "database_unavailable"
            assert int(response.headers["retry-after"]) > 0


# -- THE concurrency test ------------------------------------------------------------------------

#: Processes and the reservations each attempts; amounts are cents, so sums are exact.
PROCESSES = 6
ATTEMPTS = 60


def _client_process(base_url: str, database_url: str, seed: int, direct: bool) -> list[dict[str, Any]]:
    """One OS process: reserve, then commit (sometimes again, sometimes more), release, or leave it.

    ``direct`` processes reserve the way ``hookyard budgets reserve`` does (ops.budgets.reserve,
    the same SQL); every process commits and releases over HTTP. Returns what it saw.
    """
    rng = random.Random(seed)  # noqa: S311 - a reproducible mix of actions, not a secret
    seen: list[dict[str, Any]] = []
    with httpx.Client(base_url=base_url, headers=OPERATOR, timeout=60) as http:
        for attempt in range(ATTEMPTS):
            amount = Decimal(rng.randint(100, 6000)) / 100
            client_id = f"p{seed}-{attempt}"
            ttl = rng.choice([1, 1, 2, 600])
            if direct:
                try:
                    made = ops_budgets.reserve(
                        database_url,
                        tenancy.parse_project("acme"),
                        "tokens",
                        amount,
                        ttl_seconds=ttl,
                        client_id=client_id,
                    )
                except ops_budgets.ReservationRefused:
                    seen.append({"reserved": None})
                    continue
                reservation_id = made.reservation_id
            else:
                answer = reserve(http, "tokens", str(amount), id=client_id, ttl_seconds=ttl)
                if answer.status_code == 409:
                    assert answer.json()["error"] == "budget_exceeded"
                    seen.append({"reserved": None})
                    continue
                assert answer.status_code == 201, answer.text
                reservation_id = answer.json()["reservation_id"]
            record: dict[str, Any] = {"reserved": str(amount), "id": reservation_id, "committed": None}
            action = rng.choice(["commit", "commit", "commit_more", "release", "leave"])
            if action in {"commit", "commit_more"}:
                spent = amount * Decimal(rng.randint(10, 100)) / 100 if action == "commit" else amount + 1
                spent = spent.quantize(Decimal("0.01"))
                for _ in range(rng.choice([1, 2])):  # sometimes twice: one commit either way
                    done = commit(http, reservation_id, str(spent))
                    if done.status_code == 200:
                        assert record["committed"] in (None, done.json()["committed"])
                        record["committed"] = done.json()["committed"]
                    else:
                        assert done.status_code == 409, done.text
                        assert done.json()["error"] in {"budget_exceeded", "reservation_closed"}
            elif action == "release":
                assert release(http, reservation_id).status_code in {200, 409}
            seen.append(record)
    return seen


def test_concurrent_processes_never_overspend_a_hard_budget_and_the_ledger_adds_up_to_the_cent(
    database: str, running: InProcessServer
) -> None:
    project_id = one(database, "SELECT id FROM projects WHERE slug = 'acme'")["id"]
    set_budget(database, "acme", "tokens", "3000")
    stop = threading.Event()
    observed: list[tuple[Decimal, Decimal, Decimal]] = []

    def watch() -> None:
        # The scheduler's job and a reader, while the clients run: expiry races commits and releases.
        with psycopg.connect(database, autocommit=True) as conn:
            while not stop.is_set():
                expire_reservations(conn, Clock(datetime.now(UTC)))
                row = conn.execute(
                    "SELECT used_amount, reserved_amount, allocated_amount FROM resource_budgets"
                ).fetchone()
                assert row is not None
                observed.append((row[0], row[1], row[2]))
                stop.wait(0.02)

    watcher = threading.Thread(target=watch, name="expiry")
    watcher.start()
    try:
        with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
            results = pool.starmap(
                _client_process,
                [(running.url, database, seed, seed % 3 == 0) for seed in range(PROCESSES)],
            )
    finally:
        stop.set()
        watcher.join(timeout=30)

    seen = [record for result in results for record in result]
    assert any(record["reserved"] is None for record in seen), "the budget was never contended"
    assert observed
    assert all(used + reserved <= allocated for used, reserved, allocated in observed)

    row = budget_row(database, project_id, "tokens")
    assert row["used_amount"] + row["reserved_amount"] <= row["allocated_amount"]
    committed_seen = sum((Decimal(r["committed"]) for r in seen if r.get("committed")), Decimal(0))
    committed_rows = one(
        database,
        "SELECT coalesce(sum(committed_amount), 0) AS total, count(*) AS n FROM budget_reservations "
        "WHERE state = 'committed'",
    )
    usage = one(
        database,
        "SELECT coalesce(sum(amount), 0) AS total, count(*) AS n FROM resource_usage "
        "WHERE origin = 'reservation'",
    )
    held = one(
        database, "SELECT coalesce(sum(amount), 0) AS total FROM budget_reservations WHERE state = 'held'"
    )
    assert row["used_amount"] == committed_seen == committed_rows["total"] == usage["total"]
    assert committed_rows["n"] == usage["n"] == sum(1 for r in seen if r.get("committed"))
    assert row["reserved_amount"] == held["total"]
    keys = one(database, "SELECT count(*) AS n FROM event_keys WHERE source = 'usage'")
    assert keys["n"] == usage["n"]
    assert (
        rows(
            database,
            "SELECT 1 FROM budget_reservations WHERE state = 'held' AND expires_at <= now() - interval '5 s'",
        )
        == []
    )


# -- periods, auto-reset and thresholds on a controlled clock (the SQL, with explicit times) -------

DAY_1 = datetime(2031, 3, 9, 12, 0, tzinfo=UTC)  # a Sunday
DAY_2 = datetime(2031, 3, 10, 0, 0, tzinfo=UTC)


def call(database_url: str, query: str, **params: Any) -> dict[str, Any]:
    from schema import queries  # noqa: PLC0415

    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        row = conn.execute(queries()[query], params).fetchone()
    assert row is not None
    return row


def reserve_sql(
    database_url: str, project_id: int, amount: str, at: datetime, **params: Any
) -> dict[str, Any]:
    values = {
        "project_id": project_id,
        "org": None,
        "slug": None,
        "client_id": str(uuid.uuid4()),
        "resource_type": "tokens",
        "amount": Decimal(amount),
        "ttl_seconds": 900,
        "at": at,
    }
    return call(database_url, "budgets_reserve", **{**values, **params})


def commit_sql(database_url: str, reservation_id: Any, amount: str, at: datetime) -> dict[str, Any]:
    return call(
        database_url,
        "budgets_commit",
        reservation_id=reservation_id,
        amount=Decimal(amount),
        project_id=None,
        at=at,
    )


def test_thresholds_are_crossed_once_per_period_by_concurrent_commits_across_midnight(database: str) -> None:
    project_id = one(database, "SELECT id FROM projects WHERE slug = 'acme'")["id"]
    ops_budgets.set_budget(
        database,
        tenancy.parse_project("acme"),
        "tokens",
        period=BudgetPeriod.DAILY,
        amount=Decimal(100),
        unit="tokens",
        soft=True,
        thresholds=[50, 80, 100],
        at=DAY_1,
    )
    # 40 reservations of 5 on each side of midnight, committed by 8 connections at once:
    # 200 per day, so each day passes 50, 80 and 100 % in some order of commits.
    moments = [DAY_2 - timedelta(minutes=1, seconds=i) for i in range(40)] + [
        DAY_2 + timedelta(minutes=1, seconds=i) for i in range(40)
    ]

    def spend(at: datetime) -> list[int]:
        made = reserve_sql(database, project_id, "5", at)
        assert made["outcome"] == "granted"
        return list(commit_sql(database, made["reservation_id"], "5", at + timedelta(seconds=5))["crossed"])

    with ThreadPoolExecutor(8) as pool:
        crossed = [threshold for found in pool.map(spend, moments) for threshold in found]

    periods = rows(
        database,
        "SELECT id, period_start, period_end, used_amount, reserved_amount FROM resource_budgets "
        "WHERE project_id = %s ORDER BY period_start",
        (project_id,),
    )
    assert [(p["period_start"], p["period_end"]) for p in periods] == [
        (datetime(2031, 3, 9, tzinfo=UTC), DAY_2),
        (DAY_2, datetime(2031, 3, 11, tzinfo=UTC)),
    ]
    assert [(p["used_amount"], p["reserved_amount"]) for p in periods] == [(200, 0), (200, 0)]
    alerts = rows(database, "SELECT budget_id, threshold FROM budget_alerts ORDER BY budget_id, threshold")
    assert alerts == [{"budget_id": p["id"], "threshold": t} for p in periods for t in (50, 80, 100)]
    assert sorted(crossed) == [50, 50, 80, 80, 100, 100]
    usage = rows(database, "SELECT recorded_at FROM resource_usage")
    assert sum(1 for u in usage if u["recorded_at"] < DAY_2) == 40


def test_a_new_period_opens_from_the_latest_settings_and_counts_the_usage_already_stored(
    database: str,
) -> None:
    project_id = one(database, "SELECT id FROM projects WHERE slug = 'acme'")["id"]
    acme = tenancy.parse_project("acme")
    ops_budgets.set_budget(
        database, acme, "tokens", period=BudgetPeriod.WEEKLY, amount=Decimal(10), unit="tokens", at=DAY_1
    )
    ops_budgets.set_budget(database, acme, "tokens", amount=Decimal(20), thresholds=[25], at=DAY_1)
    # Usage of the next week, stored before its row exists (the worker found no row for it then).
    next_week = datetime(2031, 3, 12, 8, 0, tzinfo=UTC)
    with psycopg.connect(database, autocommit=True) as conn:
        for usage_id, unit, amount, cost in (
            ("a", "tokens", "6", None),
            ("b", "calls", "100", "3"),
            ("c", None, "1", "1"),
        ):
            conn.execute(
                "INSERT INTO resource_usage (project_id, usage_id, resource_type, amount, unit, cost_cad, "
                "recorded_at, received_at, billing_period, origin) "
                "VALUES (%s, %s, 'tokens', %s, %s, %s, %s, %s, %s, 'v1')",
                (project_id, usage_id, Decimal(amount), unit, cost, next_week, next_week, next_week.date()),
            )
        opened = conn.execute(
            "SELECT hookyard_budget_for(%s, 'tokens', %s)", (project_id, next_week)
        ).fetchone()
        assert opened is not None
        again = conn.execute(
            "SELECT hookyard_budget_for(%s, 'tokens', %s)", (project_id, next_week + timedelta(days=3))
        ).fetchone()
        nothing = conn.execute(
            "SELECT hookyard_budget_for(%s, 'calls', %s)", (project_id, next_week)
        ).fetchone()
        before = conn.execute(
            "SELECT hookyard_budget_for(%s, 'tokens', %s)", (project_id, DAY_1 - timedelta(days=30))
        ).fetchone()
    assert again == opened
    assert nothing == (None,)
    assert before == (None,)  # no budget before its first period
    row = one(database, "SELECT * FROM resource_budgets WHERE id = %s", (opened[0],))
    assert (row["period_start"], row["period_end"]) == (
        datetime(2031, 3, 10, tzinfo=UTC),  # ISO weeks start on Monday
        datetime(2031, 3, 17, tzinfo=UTC),
    )
    assert (row["allocated_amount"], row["thresholds"], row["enforcement"]) == (20, [25], "hard")
    assert row["used_amount"] == 6  # only usage in the budget's unit counts
    assert rows(database, "SELECT threshold FROM budget_alerts WHERE budget_id = %s", (opened[0],)) == [
        {"threshold": 25}
    ]

    # Without auto-reset, the budget ends with its period.
    ops_budgets.set_budget(database, acme, "tokens", auto_reset=False, at=next_week)
    with psycopg.connect(database, autocommit=True) as conn:
        later = conn.execute(
            "SELECT hookyard_budget_for(%s, 'tokens', %s)", (project_id, next_week + timedelta(days=7))
        ).fetchone()
    assert later == (None,)


def test_a_budget_set_waits_for_usage_in_flight_and_counts_it_once(database: str) -> None:
    project_id = one(database, "SELECT id FROM projects WHERE slug = 'acme'")["id"]
    now = datetime.now(UTC)
    with psycopg.connect(database) as writer:
        # A usage writer in flight: the budget's lock taken SHARED, a row inserted, not committed.
        writer.execute(
            "SELECT pg_advisory_xact_lock_shared(hookyard_budget_lock_key(%s, 'tokens'))", (project_id,)
        )
        found = writer.execute("SELECT hookyard_budget_for(%s, 'tokens', %s)", (project_id, now)).fetchone()
        assert found == (None,)
        writer.execute(
            "INSERT INTO resource_usage (project_id, usage_id, resource_type, amount, unit, recorded_at, "
            "received_at, billing_period, origin) "
            "VALUES (%s, 'in-flight', 'tokens', 7, 'tokens', %s, %s, %s, 'v1')",
            (project_id, now, now, now.date()),
        )
        with ThreadPoolExecutor(1) as pool:
            setting = pool.submit(set_budget, database, "acme", "tokens", "100", period=BudgetPeriod.MONTHLY)
            with pytest.raises(TimeoutError):
                setting.result(timeout=0.5)  # waits for the writer's lock
            writer.commit()
            done = setting.result(timeout=30)
    assert done.budget.used == 7


def test_the_writer_role_may_call_every_budget_function(database: str) -> None:
    project_id = one(database, "SELECT id FROM projects WHERE slug = 'acme'")["id"]
    with psycopg.connect(database, autocommit=True, row_factory=dict_row) as conn:
        conn.execute("SET ROLE hookyard_writer")
        conn.execute(
            "SELECT * FROM hookyard_set_budget(%s, 'tokens', 'daily', 10, 'tokens', 'hard', '{50}', true, "
            "%s)",
            (project_id, DAY_1),
        )
        made = conn.execute(
            "SELECT * FROM hookyard_reserve(%s, 'w1', 'tokens', 6, interval '1 minute', %s)",
            (project_id, DAY_1),
        ).fetchone()
        assert made is not None
        assert made["outcome"] == "granted"
        spent = conn.execute(
            "SELECT * FROM hookyard_commit_reservation(%s, 6, NULL, %s)", (made["reservation_id"], DAY_1)
        ).fetchone()
        assert spent is not None
        assert spent["crossed"] == [50]
        other = conn.execute(
            "SELECT * FROM hookyard_reserve(%s, 'w2', 'tokens', 1, interval '1 minute', %s)",
            (project_id, DAY_1),
        ).fetchone()
        assert other is not None
        freed = conn.execute(
            "SELECT * FROM hookyard_release_reservation(%s, NULL, %s)", (other["reservation_id"], DAY_1)
        ).fetchone()
        assert freed is not None
        assert freed["outcome"] == "released"
        conn.execute("SELECT * FROM hookyard_expire_reservations(%s, 10)", (DAY_2,))


def test_expiry_is_counted_by_enforcement_in_the_metric(database: str) -> None:
    from prometheus_client import REGISTRY  # noqa: PLC0415

    project_id = one(database, "SELECT id FROM projects WHERE slug = 'acme'")["id"]
    set_budget(database, "acme", "tokens", "100")
    before = REGISTRY.get_sample_value("hookyard_reservations_expired_total", {"enforcement": "hard"}) or 0
    for _ in range(3):
        assert (
            reserve_sql(database, project_id, "1", datetime.now(UTC), ttl_seconds=1)["outcome"] == "granted"
        )
    with psycopg.connect(database, autocommit=True) as conn:
        assert expire_reservations(conn, Clock(datetime.now(UTC) + timedelta(seconds=5)), batch=2) == 3
    after = REGISTRY.get_sample_value("hookyard_reservations_expired_total", {"enforcement": "hard"})
    assert after == before + 3


def test_the_sql_periods_are_the_contract_periods(database: str) -> None:
    rng = random.Random(13)  # noqa: S311 - reproducible sample times, not a secret
    moments = [DAY_1, DAY_2, DAY_2 - timedelta(microseconds=1), datetime(2032, 2, 29, 23, 59, tzinfo=UTC)]
    moments += [
        datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(2_000_000_000)) for _ in range(200)
    ]
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'America/St_Johns'")  # the session's zone must not matter
        for period in BudgetPeriod:
            for at in moments:
                found = conn.execute(
                    "SELECT * FROM hookyard_budget_period_bounds(%s, %s)", (period.value, at)
                ).fetchone()
                anchor = datetime(1970, 1, 1, tzinfo=UTC) if period is BudgetPeriod.TOTAL else None
                assert found == period_bounds(period, at, anchor=anchor), (period, at)


def test_a_change_of_period_applies_from_the_current_period_and_no_two_rows_overlap(database: str) -> None:
    project_id = one(database, "SELECT id FROM projects WHERE slug = 'acme'")["id"]
    acme = tenancy.parse_project("acme")

    def budget_for(at: datetime) -> int:
        with psycopg.connect(database, autocommit=True) as conn:
            found = conn.execute("SELECT hookyard_budget_for(%s, 'tokens', %s)", (project_id, at)).fetchone()
        assert found is not None
        assert found[0] is not None
        return int(found[0])

    def at(day: str) -> datetime:
        return datetime.fromisoformat(f"{day}T12:00:00+00:00")

    ops_budgets.set_budget(
        database,
        acme,
        "tokens",
        period=BudgetPeriod.DAILY,
        amount=Decimal(10),
        unit="tokens",
        at=at("2031-03-09"),
    )
    budget_for(at("2031-03-10"))
    ops_budgets.set_budget(database, acme, "tokens", period=BudgetPeriod.MONTHLY, at=at("2031-03-10"))
    assert budget_for(at("2031-03-20")) == budget_for(at("2031-03-10"))
    budget_for(at("2031-04-05"))
    ops_budgets.set_budget(database, acme, "tokens", period=BudgetPeriod.WEEKLY, at=at("2031-04-05"))
    budget_for(at("2031-04-08"))

    periods = rows(
        database,
        "SELECT budget_period::text AS period, period_start, period_end FROM resource_budgets "
        "ORDER BY period_start",
    )
    day = datetime.fromisoformat
    assert [(p["period"], p["period_start"], p["period_end"]) for p in periods] == [
        ("daily", day("2031-03-09T00:00:00+00:00"), day("2031-03-10T00:00:00+00:00")),
        ("monthly", day("2031-03-10T00:00:00+00:00"), day("2031-04-01T00:00:00+00:00")),  # clipped
        ("weekly", day("2031-04-01T00:00:00+00:00"), day("2031-04-07T00:00:00+00:00")),  # clipped
        ("weekly", day("2031-04-07T00:00:00+00:00"), day("2031-04-14T00:00:00+00:00")),
    ]
