"""Apply numbered SQL migrations, each in its own transaction, recorded in ``schema_migrations``.

Running twice changes nothing. An applied migration whose file changed since is an error, never
silently re-applied. Concurrent runs (several replicas starting at once) serialize on an
advisory lock.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from importlib import resources

import psycopg
import structlog
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from hookyard.errors import MigrationError, ServiceUnavailable

log = structlog.get_logger(__name__)

_FILENAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
# An arbitrary constant shared by every Hookyard process that migrates.
_LOCK_KEY = 0x486F6F6B  # "Hook"

#: Tables partitioned by month, with their partition key; the scheduler keeps these ahead.
#: Every one keeps its ledger keys in event_keys, which retention trims by the same months.
PARTITIONED_TABLES: tuple[tuple[str, str], ...] = (
    ("events", "received_at"),
    ("error_occurrences", "received_at"),
    ("check_pings", "received_at"),
    ("project_metrics", "recorded_at"),
    ("resource_usage", "recorded_at"),
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """Every ``NNNN_name.sql`` file under ``schema/migrations``, in version order."""
    found = []
    for entry in resources.files("schema").joinpath("migrations").iterdir():
        match = _FILENAME.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match["version"]), match["name"], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return found


def ensure_database(database_url: str) -> bool:
    """Create the database named in the URL when it does not exist. True when it was created."""
    params = conninfo_to_dict(database_url)
    dbname = str(params.get("dbname") or "")
    admin = make_conninfo(database_url, dbname="postgres")
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
            if exists:
                return False
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            except psycopg.errors.DuplicateDatabase:
                return False  # another migrator won the race
    except psycopg.OperationalError as exc:
        raise ServiceUnavailable("PostgreSQL", str(exc).strip().splitlines()[0]) from exc
    log.info("database_created", database=dbname)
    return True


def migrate(database_url: str, *, partitions_ahead: int = 3, today: date | None = None) -> list[Migration]:
    """Apply pending migrations and create partitions ahead; return the migrations applied now."""
    ensure_database(database_url)
    try:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
            try:
                applied = _apply_pending(conn)
                ensure_partitions(conn, months_ahead=partitions_ahead, today=today)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    except psycopg.OperationalError as exc:
        raise ServiceUnavailable("PostgreSQL", str(exc).strip().splitlines()[0]) from exc
    return applied


def _apply_pending(conn: psycopg.Connection[tuple[object, ...]]) -> list[Migration]:
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    integer     PRIMARY KEY,
            name       text        NOT NULL,
            checksum   text        NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    done = {
        int(str(version)): str(checksum)
        for version, checksum in conn.execute("SELECT version, checksum FROM schema_migrations")
    }
    applied = []
    for migration in load_migrations():
        if migration.version in done:
            if done[migration.version] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} changed after it was applied; "
                    "add a new migration instead of editing an applied one"
                )
            continue
        try:
            with conn.transaction():
                conn.execute(migration.sql)  # our own file: as literal as inline SQL
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError):
                raise
            first_line = str(exc).strip().splitlines()[0]
            label = f"{migration.version:04d}_{migration.name}"
            raise MigrationError(f"migration {label} failed: {first_line}") from exc
        log.info("migration_applied", version=migration.version, name=migration.name)
        applied.append(migration)
    return applied


def month_starts(today: date, months_before: int, months_ahead: int) -> list[date]:
    """First days of the months from ``months_before`` before today's month to ``months_ahead`` after."""
    first = today.replace(day=1)
    index = first.year * 12 + first.month - 1
    return [date((i) // 12, (i) % 12 + 1, 1) for i in range(index - months_before, index + months_ahead + 1)]


def ensure_partitions(
    conn: psycopg.Connection[tuple[object, ...]], *, months_ahead: int, today: date | None = None
) -> list[str]:
    """Create the monthly partitions of every partitioned table from last month to ``months_ahead``.

    Returns the names of the partitions created. Each partition is created in its own
    transaction so a long move out of a DEFAULT partition holds its lock for one month only.
    """
    from schema.queries import queries  # noqa: PLC0415 - keeps `hookyard migrate --help` import-light

    created = []
    for table, key in PARTITIONED_TABLES:
        for month in month_starts(today or date.today(), 1, months_ahead):
            with conn.transaction():
                row = conn.execute(
                    queries()["ensure_month_partition"], {"parent": table, "key_column": key, "month": month}
                ).fetchone()
            if row and row[0]:
                name = f"{table}_{month:%Y_%m}"
                log.info("partition_created", table=table, partition=name)
                created.append(name)
    return created
