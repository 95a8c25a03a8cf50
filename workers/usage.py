"""The ``usage`` domain: every usage record stored once, and counted once into its budget.

:class:`UsageStore` is a :class:`~workers.ledger.LedgerStore`: a record's key
``("usage", "<project id>:<usage id>")`` is claimed in the ledger in the transaction that stores
the record and moves its budget's ``used_amount``, so a redelivered record never counts twice.
In one transaction (a group commit):

1. claim the records' keys; only the new ones go on;
2. price the new ones in CAD (``cost_cad`` given, or ``amount * unit_cost`` at the rate in force
   on the record's date), with decimals, never floats, and binary-COPY them into
   ``resource_usage``;
3. for each (project, resource type), in key order, take the budget's advisory lock *shared*
   (creating a budget takes it exclusively, so a record is either summed into a new budget's
   first ``used_amount`` or added by this transaction, never neither), find the budget row of each
   record's period (``hookyard_budget_for``, which opens an auto-reset budget's new period), and
   add each budget's share in one ``UPDATE``;
4. record every threshold a budget crossed, once per period (``budget_alerts`` is unique per
   budget row and threshold).

Usage is a fact: it is stored even when it passes a budget. A hard budget is guarded where work
asks first, by reservations (:mod:`producers.reservations`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson

from contracts.metering import UsageRecord, encode_usage
from contracts.topology import USAGE
from contracts.usage import cost_cad
from hookyard import metrics
from schema import queries
from workers.ledger import Connection, Key, LedgerStore, StoreResult, resolve_project_names
from workers.store import RawJsonb, RawJsonbBinaryDumper

_USAGE_TYPES = [
    "int8", "text", "text", "text", "numeric", "text", "numeric", "text", "numeric", "text", "timestamptz",
    "timestamptz", "date", "int8", "text", "jsonb",
]  # fmt: skip


def billing_period(at: datetime) -> date:
    """The month a record is billed in (seed 003's billing period): the first day of its UTC month."""
    utc = at.astimezone(UTC)
    return date(utc.year, utc.month, 1)


class UsageStore(LedgerStore[UsageRecord]):
    """Stores usage records and moves their budgets; see the module docstring."""

    route = USAGE

    def __init__(self, pool: Any) -> None:
        super().__init__(pool)
        self._crossed = threading.local()
        self._batch_rates: dict[tuple[str, date], Decimal] = {}

    def key_of(self, item: UsageRecord) -> Key:
        owner = item.project_id if item.project_id is not None else item.project
        return ("usage", f"{owner}:{item.usage_id}")

    def received_at(self, item: UsageRecord) -> datetime:
        return item.received_at

    def replay_body(self, item: UsageRecord) -> bytes:
        return encode_usage([item])

    def prepare(self, items: list[UsageRecord]) -> list[UsageRecord]:
        names = sorted({str(r.project) for r in items if r.project_id is None and r.project})
        if not names:
            return items
        ids = resolve_project_names(self.pool, names)
        return [
            r.model_copy(update={"project_id": ids[r.project]})
            if r.project_id is None and r.project in ids
            else r
            for r in items
        ]

    def begin(self) -> None:
        self._crossed.alerts = []

    def committed(self) -> None:
        for project_id, threshold in getattr(self._crossed, "alerts", ()):
            metrics.BUDGET_ALERTS.labels(metrics.project_label(project_id), str(threshold)).inc()

    def insert(self, conn: Connection, items: Sequence[UsageRecord]) -> list[Key]:
        fresh_keys = self.claim(conn, items)
        fresh = [item for item in items if self.key_of(item) in fresh_keys]
        if not fresh:
            return []
        self._batch_rates = self._rates(conn, fresh)
        cursor = conn.cursor()
        cursor.adapters.register_dumper(RawJsonb, RawJsonbBinaryDumper)
        with cursor.copy(queries()["copy_resource_usage"]) as copy:
            copy.set_types(_USAGE_TYPES)
            for item in fresh:
                copy.write_row(
                    (
                        item.project_id, item.usage_id, item.resource_type, item.resource_subtype,
                        item.amount, item.unit, item.unit_cost, item.currency,
                        self._cost(item),
                        item.machine, item.recorded_at, item.received_at, billing_period(item.recorded_at),
                        item.meter_id, item.origin.value, RawJsonb(orjson.dumps(item.metadata).decode()),
                    )
                )  # fmt: skip
        self._count_into_budgets(conn, fresh)
        return [self.key_of(item) for item in fresh]

    def observe(self, items: Sequence[UsageRecord], result: StoreResult, committed: datetime) -> None:
        stored = set(result.stored)
        for item in items:
            key = self.key_of(item)
            if key in stored:
                stored.discard(key)
                metrics.USAGE_RECORDS.labels(item.origin.value).inc()
                metrics.FRESHNESS.observe((committed - item.received_at).total_seconds())

    @staticmethod
    def _rates(conn: Connection, records: Sequence[UsageRecord]) -> dict[tuple[str, date], Decimal]:
        """The CAD rate in force on each (currency, date) the records need."""
        wanted = sorted(
            {(r.currency, r.recorded_at.date()) for r in records if r.currency != "CAD" and r.unit_cost}
        )
        if not wanted:
            return {}
        rows = conn.execute(
            queries()["usage_rates_on"],
            {"currency": [c for c, _ in wanted], "day": [d for _, d in wanted]},
        ).fetchall()
        return {(str(currency), day): Decimal(rate) for currency, day, rate in rows if rate is not None}

    def _count_into_budgets(self, conn: Connection, records: Sequence[UsageRecord]) -> None:
        """Add each record to its budget of its period, and record the thresholds crossed."""
        days = sorted(
            {(r.project_id or 0, r.resource_type, r.recorded_at.astimezone(UTC).date()) for r in records}
        )
        pairs = sorted({(project_id, resource_type) for project_id, resource_type, _ in days})
        conn.execute(
            queries()["usage_budget_locks"],
            {"project_id": [p for p, _ in pairs], "resource_type": [r for _, r in pairs]},
        )
        found = conn.execute(
            queries()["usage_budgets_for_days"],
            {
                "project_id": [k[0] for k in days],
                "resource_type": [k[1] for k in days],
                "day": [k[2] for k in days],
            },
        ).fetchall()
        budget_of = {key: row[0] for key, row in zip(days, found, strict=True) if row[0] is not None}
        counted = [
            (budget_of[key], record)
            for record in records
            if (
                key := (
                    record.project_id or 0,
                    record.resource_type,
                    record.recorded_at.astimezone(UTC).date(),
                )
            )
            in budget_of
        ]
        if not counted:
            return
        moved = conn.execute(
            queries()["usage_add_to_budgets"],
            {
                "budget_id": [budget_id for budget_id, _ in counted],
                "unit": [record.unit for _, record in counted],
                "amount": [record.amount for _, record in counted],
                "cost_cad": [self._cost(record) for _, record in counted],
            },
        ).fetchall()
        if not moved:
            return
        project_of = {int(budget_id): int(project_id) for budget_id, project_id, _, _ in moved}
        crossed = conn.execute(
            queries()["usage_record_budget_alerts"],
            {
                "budget_id": [row[0] for row in moved],
                "before": [row[2] for row in moved],
                "after": [row[3] for row in moved],
            },
        ).fetchall()
        self._crossed.alerts.extend(
            (project_of[int(budget_id)], threshold) for budget_id, threshold in crossed
        )

    def _cost(self, record: UsageRecord) -> Decimal | None:
        """The record's cost in CAD as stored (computed again: cheap, and the same function)."""
        rate = (
            Decimal(1)
            if record.currency == "CAD"
            else self._batch_rates.get((record.currency, record.recorded_at.date()))
        )
        return cost_cad(record.amount, record.unit_cost, record.currency, rate, record.cost_cad)
