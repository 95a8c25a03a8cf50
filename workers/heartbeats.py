"""The ``heartbeats`` domain: pings, heartbeats and check-ins applied to their subjects, in order.

:class:`CheckStore` is a :class:`~workers.ledger.LedgerStore`: each report's key
``("check", "<project>:<report id>")`` is claimed in the ledger in the transaction that applies
it, so a redelivered report is applied once. In one transaction (a group commit):

1. claim the reports' keys; only the new ones go on;
2. make sure every subject has its ``runtime_status`` row, then lock those rows in key order
   (two workers with overlapping subjects wait for each other instead of deadlocking, and one
   that creates a subject never overwrites another's);
3. fold each subject's reports, oldest first, through :func:`contracts.checks.apply`, so a batch
   carrying many reports of one subject touches its row once, and a report older than what is
   applied never moves a status backwards;
4. write the rows, the status flips, the pings (with their output) and the metrics.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from contracts.checks import Flip, Report, Schedule, Signal, Status, Subject, apply
from contracts.heartbeats import CheckReport, Origin, encode_check_reports
from contracts.topology import HEARTBEATS
from hookyard import metrics
from schema import queries
from workers.errors import translate
from workers.ledger import Connection, Key, LedgerStore, StoreResult, resolve_project_names

_PING_TYPES = [
    "int8",
    "int8",
    "text",
    "text",
    "timestamptz",
    "timestamptz",
    "text",
    "int2",
    "text",
    "text",
    "text",
]
_METRIC_TYPES = ["int8", "text", "text", "float8", "text", "timestamptz", "int8", "text"]


def schedule_of(kind: str, period: timedelta | None, cron: str | None, tz: str, grace: timedelta) -> Schedule:
    """A check's row as a :class:`Schedule`."""
    if kind == "cron" and cron:
        return Schedule.from_cron(cron, tz, grace)
    return Schedule.simple(period or timedelta(days=1), grace)


def subject_of_row(row: dict[str, Any]) -> Subject:
    """A ``runtime_status`` row as a :class:`Subject`."""
    return Subject(
        status=Status(row["status"]),
        last_report_at=row["last_heartbeat_at"],
        running=row["running"],
        run_started_at=row["run_started_at"],
        run_id=row["run_id"],
        last_duration=row["last_duration"],
        due_at=row["due_at"],
        alarm_at=row["alarm_at"],
    )


@dataclass
class _Applied:
    """One subject after a batch: its new state, its flips, and what to record beside them."""

    row_id: int
    project_id: int
    check_id: int
    subject: str
    state: Subject
    flips: list[Flip] = field(default_factory=list)
    durations: list[tuple[datetime, timedelta]] = field(default_factory=list)
    resources: CheckReport | None = None


class CheckStore(LedgerStore[CheckReport]):
    """Applies check reports to ``runtime_status``; see the module docstring."""

    route = HEARTBEATS

    def __init__(self, pool: Any) -> None:
        super().__init__(pool)
        self._flips = threading.local()

    def key_of(self, item: CheckReport) -> Key:
        owner = item.project_id if item.project_id is not None else item.project
        return ("check", f"{owner}:{item.report_id}")

    def received_at(self, item: CheckReport) -> datetime:
        return item.received_at

    def replay_body(self, item: CheckReport) -> bytes:
        return encode_check_reports([item])

    def prepare(self, items: list[CheckReport]) -> list[CheckReport]:
        """Reports get their project's id and their check's id, creating ``discovered`` projects
        and checks first seen through a heartbeat or a check-in (SPEC's defaults)."""
        names = sorted({str(r.project) for r in items if r.project_id is None and r.project})
        if names:
            ids = resolve_project_names(self.pool, names)
            items = [
                r.model_copy(update={"project_id": ids[r.project]})
                if r.project_id is None and r.project in ids
                else r
                for r in items
            ]
        wanted = sorted(
            {(r.project_id, r.check) for r in items if r.check_id is None and r.project_id is not None}
        )
        if not wanted:
            return items
        checks = self._resolve_checks(wanted)
        return [
            r.model_copy(update={"check_id": checks[(r.project_id, r.check)]})
            if r.check_id is None and (r.project_id, r.check) in checks
            else r
            for r in items
        ]

    def begin(self) -> None:
        self._flips.pending = []

    def committed(self) -> None:
        for flip in getattr(self._flips, "pending", ()):
            metrics.STATUS_FLIPS.labels(flip.from_status.value, flip.to_status.value).inc()

    def insert(self, conn: Connection, items: Sequence[CheckReport]) -> list[Key]:
        fresh_keys = self.claim(conn, items)
        fresh = [item for item in items if self.key_of(item) in fresh_keys]
        if not fresh:
            return []
        by_subject: dict[tuple[int, str], list[CheckReport]] = defaultdict(list)
        for item in fresh:
            if item.check_id is None or item.project_id is None:
                raise psycopg.errors.NotNullViolation(f"report {item.report_id} names no known check")
            by_subject[(item.check_id, item.subject)].append(item)
        subjects = sorted(by_subject)
        first = {key: reports[0] for key, reports in by_subject.items()}
        conn.execute(
            queries()["heartbeats_ensure_subjects"],
            {
                "project_id": [first[key].project_id for key in subjects],
                "check_id": [key[0] for key in subjects],
                "subject": [key[1] for key in subjects],
                "host": [first[key].host for key in subjects],
                "pid": [first[key].pid for key in subjects],
                "port": [first[key].port for key in subjects],
                "process_name": [first[key].service for key in subjects],
            },
        )
        cursor = conn.cursor(row_factory=psycopg.rows.dict_row)
        rows = cursor.execute(
            queries()["heartbeats_lock_subjects"],
            {"check_id": [key[0] for key in subjects], "subject": [key[1] for key in subjects]},
        ).fetchall()
        checks = {
            row["id"]: row
            for row in cursor.execute(
                queries()["heartbeats_checks"], {"ids": sorted({key[0] for key in subjects})}
            ).fetchall()
        }
        applied = []
        resumed: set[int] = set()
        for row in rows:
            check = checks[row["check_id"]]
            schedule = schedule_of(
                check["kind"], check["period"], check["schedule"], check["tz"], check["grace"]
            )
            result = _Applied(
                row["id"], row["project_id"], row["check_id"], row["subject"], subject_of_row(row)
            )
            paused = bool(check["paused"])
            for report in sorted(
                by_subject[(row["check_id"], row["subject"])], key=lambda r: (r.at, r.report_id)
            ):
                before = result.state
                signal = Signal(report.signal)
                result.state, flips = apply(
                    before, Report(signal, report.at, report.rid), schedule, paused=paused
                )
                result.flips.extend(flips)
                changed = result.state is not before  # apply returns the same object when nothing changed
                if (
                    paused
                    and changed
                    and signal is not Signal.LOG
                    and result.state.status is not Status.PAUSED
                ):
                    resumed.add(row["check_id"])  # a ping resumes a paused check, as in Healthchecks
                    paused = False
                if (
                    changed
                    and signal in (Signal.SUCCESS, Signal.FAIL)
                    and result.state.last_duration is not None
                ):
                    result.durations.append((report.at, result.state.last_duration))
                if report.origin is Origin.HEARTBEAT and (
                    result.resources is None or report.at >= result.resources.at
                ):
                    result.resources = report
            applied.append(result)
        self._write(conn, applied, resumed, fresh, checks)
        return [self.key_of(item) for item in fresh]

    def observe(self, items: Sequence[CheckReport], result: StoreResult, committed: datetime) -> None:
        stored = set(result.stored)
        for item in items:
            key = self.key_of(item)
            if key in stored:
                stored.discard(key)
                metrics.CHECK_REPORTS.labels(item.origin.value).inc()
                metrics.FRESHNESS.observe((committed - item.received_at).total_seconds())

    def _write(
        self,
        conn: Connection,
        applied: list[_Applied],
        resumed: set[int],
        fresh: Sequence[CheckReport],
        checks: dict[int, dict[str, Any]],
    ) -> None:
        conn.execute(
            queries()["heartbeats_update_subjects"],
            {
                "id": [a.row_id for a in applied],
                "status": [a.state.status.value for a in applied],
                "running": [a.state.running for a in applied],
                "run_started_at": [a.state.run_started_at for a in applied],
                "run_id": [a.state.run_id for a in applied],
                "last_heartbeat_at": [a.state.last_report_at for a in applied],
                "last_duration": [a.state.last_duration for a in applied],
                "due_at": [a.state.due_at for a in applied],
                "alarm_at": [a.state.alarm_at for a in applied],
                "cpu_usage": [a.resources.cpu_percent if a.resources else None for a in applied],
                "memory_usage": [
                    int(a.resources.memory_mb * 1024 * 1024)
                    if a.resources and a.resources.memory_mb is not None
                    else None
                    for a in applied
                ],
            },
        )
        if resumed:
            conn.execute(queries()["heartbeats_resume_checks"], {"ids": sorted(resumed)})
        flips = [(a, flip) for a in applied for flip in a.flips]
        if flips:
            conn.execute(
                queries()["insert_status_flips"],
                {
                    "project_id": [a.project_id for a, _ in flips],
                    "check_id": [a.check_id for a, _ in flips],
                    "subject": [a.subject for a, _ in flips],
                    "from_status": [flip.from_status.value for _, flip in flips],
                    "to_status": [flip.to_status.value for _, flip in flips],
                    "at": [flip.at for _, flip in flips],
                    "cause": [flip.cause for _, flip in flips],
                },
            )
            self._flips.pending.extend(flip for _, flip in flips)
        pings = [item for item in fresh if item.origin is not Origin.HEARTBEAT]
        if pings:
            with conn.cursor().copy(queries()["copy_check_pings"]) as copy:
                copy.set_types(_PING_TYPES)
                for item in pings:
                    copy.write_row(
                        (
                            item.project_id, item.check_id, item.subject, item.report_id, item.received_at,
                            item.at, item.signal, item.exit_status, item.rid, item.body, item.origin.value,
                        )
                    )  # fmt: skip
        metric_rows = self._metric_rows(applied, fresh, checks)
        if metric_rows:
            with conn.cursor().copy(queries()["copy_project_metrics"]) as copy:
                copy.set_types(_METRIC_TYPES)
                for metric_row in metric_rows:
                    copy.write_row(metric_row)

    @staticmethod
    def _metric_rows(
        applied: list[_Applied], fresh: Sequence[CheckReport], checks: dict[int, dict[str, Any]]
    ) -> list[tuple[Any, ...]]:
        """CPU, memory and ``metrics`` of every heartbeat; the duration of every run that ended."""
        rows: list[tuple[Any, ...]] = []
        for item in fresh:
            if item.origin is not Origin.HEARTBEAT:
                continue
            common = (item.at, item.check_id, item.subject)
            if item.cpu_percent is not None:
                rows.append((item.project_id, "resource", "cpu_percent", item.cpu_percent, "%", *common))
            if item.memory_mb is not None:
                rows.append((item.project_id, "resource", "memory", item.memory_mb, "MB", *common))
            for name, value in item.metrics.items():
                rows.append((item.project_id, "custom", name[:255], value, None, *common))
        for a in applied:
            slug = checks[a.check_id]["slug"]
            for at, duration in a.durations:
                rows.append(
                    (a.project_id, "duration", slug, duration.total_seconds(), "s", at, a.check_id, a.subject)
                )
        return rows

    def _resolve_checks(self, wanted: Sequence[tuple[int | None, str]]) -> dict[tuple[int | None, str], int]:
        """Ids of checks by (project id, slug), creating missing ones with SPEC's defaults."""
        params = {"project_id": [p for p, _ in wanted], "slug": [s for _, s in wanted]}
        try:
            with self.pool.connection() as conn:
                rows = conn.execute(queries()["heartbeats_resolve_checks"], params).fetchall()
                conn.commit()
                found = {(int(project_id), str(slug)): int(check_id) for project_id, slug, check_id in rows}
                if len(found) < len(wanted):  # created by another worker meanwhile: ask once more
                    rows = conn.execute(queries()["heartbeats_resolve_checks"], params).fetchall()
                    conn.commit()
                    found = {
                        (int(project_id), str(slug)): int(check_id) for project_id, slug, check_id in rows
                    }
        except Exception as exc:
            raise translate(exc) from exc
        return dict(found.items())
