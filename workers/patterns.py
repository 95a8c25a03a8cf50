"""The ``errors`` domain: every report stored once, and counted once into its pattern.

:class:`PatternStore` is a :class:`~workers.ledger.LedgerStore`, so a report's key
``("error", "<project id>:<event id>")`` is claimed in the ``event_keys`` ledger in the
transaction that writes it: however often a report is redelivered, and however many worker
processes run, it adds exactly one occurrence and one count.

In one transaction (a group commit of several messages):

1. claim the reports' keys; only the new ones go on;
2. group each new report (:func:`contracts.grouping.group`) and binary-COPY it into
   ``error_occurrences``;
3. add the reports up per pattern, then upsert each pattern once, in key order, as the last
   statement before the commit. A hot pattern that every report of the fleet hits is one row
   update per transaction, locked from its upsert to the commit only, so worker processes
   take turns on it for moments rather than queueing behind each other's whole batches.

The upsert carries SPEC's states: a ``resolved`` pattern that occurs again becomes
``unresolved`` (``regressed_at``, ``regression_count``); an ``ignored`` one stays ignored until its
limit (a time, or a number of further occurrences) has passed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg

from contracts.grouping import Grouping, Report, group, report_from_sentry_event, report_from_v1
from contracts.reports import ErrorReport, ReportOrigin, encode_reports
from contracts.topology import ERRORS
from hookyard import metrics
from schema import queries
from workers.ledger import Connection, Key, LedgerStore, StoreResult, resolve_project_names
from workers.store import RawJsonb, RawJsonbBinaryDumper, without_nul

_OCCURRENCE_TYPES = ["int8", "text", "timestamptz", "timestamptz", *(["text"] * 7), "jsonb"]


@dataclass
class _Pattern:
    """One pattern's share of a transaction: added up before its row is touched."""

    project_id: int
    grouping: Grouping
    sample_message: str | None
    level: str | None
    occurrences: int
    first_seen: datetime
    last_seen: datetime


def occurred_at(payload: dict[str, Any], received_at: datetime) -> datetime:
    """The report's own time (Sentry's float or RFC 3339 ``timestamp``), else when it was received."""
    value = payload.get("timestamp")
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    return received_at


def _text(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    return value[:255] if isinstance(value, str) else None


class PatternStore(LedgerStore[ErrorReport]):
    """Stores error reports into occurrences and patterns; see the module docstring."""

    route = ERRORS

    def __init__(self, pool: Any) -> None:
        super().__init__(pool)
        self._outcomes = threading.local()

    def key_of(self, item: ErrorReport) -> Key:
        owner = item.project_id if item.project_id is not None else item.project
        return ("error", f"{owner}:{item.event_id}")

    def received_at(self, item: ErrorReport) -> datetime:
        return item.received_at

    def replay_body(self, item: ErrorReport) -> bytes:
        return encode_reports([item])

    def prepare(self, items: list[ErrorReport]) -> list[ErrorReport]:
        """Reports named by project (operator token) get its id, creating ``discovered`` projects."""
        names = sorted({str(r.project) for r in items if r.project_id is None and r.project})
        if not names:
            return items
        ids = resolve_project_names(self.pool, names)
        return [
            report.model_copy(update={"project_id": ids[report.project]})
            if report.project_id is None and report.project in ids
            else report
            for report in items
        ]

    def begin(self) -> None:
        self._outcomes.created = set()
        self._outcomes.regressed = set()

    def insert(self, conn: Connection, items: Sequence[ErrorReport]) -> list[Key]:
        fresh_keys = self.claim(conn, items)
        fresh = [item for item in items if self.key_of(item) in fresh_keys]
        if not fresh:
            return []
        patterns: dict[tuple[int, str], _Pattern] = {}
        cursor = conn.cursor()
        cursor.adapters.register_dumper(RawJsonb, RawJsonbBinaryDumper)
        with cursor.copy(queries()["copy_error_occurrences"]) as copy:
            copy.set_types(_OCCURRENCE_TYPES)
            for item in fresh:
                report = self._report(item)
                grouping = group(report)
                message = report.message or (report.exceptions[-1].value if report.exceptions else None)
                project_id = int(item.project_id) if item.project_id is not None else 0
                copy.write_row(
                    (
                        item.project_id, item.event_id, item.received_at,
                        occurred_at(item.payload, item.received_at), grouping.pattern_hash, report.level,
                        grouping.exception_type, message,
                        _text(item.payload, "release"), _text(item.payload, "environment"), item.origin.value,
                        RawJsonb(orjson.dumps(item.payload).decode()),
                    )
                )  # fmt: skip
                seen = patterns.get((project_id, grouping.pattern_hash))
                if seen is None:
                    patterns[(project_id, grouping.pattern_hash)] = _Pattern(
                        project_id, grouping, message, report.level, 1, item.received_at, item.received_at
                    )
                else:
                    seen.occurrences += 1
                    seen.first_seen = min(seen.first_seen, item.received_at)
                    seen.last_seen = max(seen.last_seen, item.received_at)
                    seen.level = report.level or seen.level
        self._upsert(conn, [patterns[key] for key in sorted(patterns)])
        return [self.key_of(item) for item in fresh]

    def rescue(
        self, conn: Connection, item: ErrorReport, refusal: psycopg.Error, result: StoreResult
    ) -> psycopg.Error | None:
        """A report jsonb cannot hold (a NUL in it) is stored with each NUL as U+FFFD."""
        if not isinstance(refusal, psycopg.errors.UntranslatableCharacter):
            return refusal
        cleaned = item.model_copy(update={"payload": without_nul(item.payload)})
        return self.savepoint(conn, cleaned, result, lambda c, report: self.insert(c, [report]))

    def committed(self) -> None:
        for project_id, _ in getattr(self._outcomes, "created", ()):
            metrics.ERROR_PATTERNS_NEW.labels(metrics.project_label(project_id)).inc()
        for project_id, _ in getattr(self._outcomes, "regressed", ()):
            metrics.ERROR_REGRESSIONS.labels(metrics.project_label(project_id)).inc()

    def observe(self, items: Sequence[ErrorReport], result: StoreResult, committed: datetime) -> None:
        stored = set(result.stored)
        for item in items:
            key = self.key_of(item)
            if key in stored:
                stored.discard(key)
                metrics.ERROR_OCCURRENCES.labels(metrics.project_label(item.project_id)).inc()
                metrics.FRESHNESS.observe((committed - item.received_at).total_seconds())

    @staticmethod
    def _report(item: ErrorReport) -> Report:
        if item.origin is ReportOrigin.V1:
            return report_from_v1(item.payload)
        return report_from_sentry_event(item.payload)

    def _upsert(self, conn: Connection, patterns: list[_Pattern]) -> None:
        rows = conn.execute(
            queries()["upsert_error_patterns"],
            {
                "project_id": [p.project_id for p in patterns],
                "pattern_hash": [p.grouping.pattern_hash for p in patterns],
                "grouping": [p.grouping.method for p in patterns],
                "components": [orjson.dumps(list(p.grouping.components)).decode() for p in patterns],
                "exception_type": [p.grouping.exception_type for p in patterns],
                "title": [p.grouping.title for p in patterns],
                "sample_message": [(p.sample_message or "")[:4096] or None for p in patterns],
                "level": [p.level for p in patterns],
                "severity": [p.grouping.severity for p in patterns],
                "occurrences": [p.occurrences for p in patterns],
                "first_seen": [p.first_seen for p in patterns],
                "last_seen": [p.last_seen for p in patterns],
            },
        ).fetchall()
        for project_id, pattern_hash, created, regressed in rows:  # a set: the fallback may upsert twice
            if created:
                self._outcomes.created.add((project_id, pattern_hash))
            if regressed:
                self._outcomes.regressed.add((project_id, pattern_hash))
