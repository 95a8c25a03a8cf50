"""What ``hookyard preflight`` checks before the fleet starts, each problem as one line.

It logs in to RabbitMQ and PostgreSQL with the configured credentials (not just a TCP connect),
checks that the vhost and the database exist, and compares ``schema_migrations`` with the
migration files. A database not created yet, or with migrations pending, is a warning by default:
``make run`` runs ``hookyard migrate`` right after preflight. ``require_migrated`` makes them
failures, for deployments where migrating is another job's work.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import pika
import pika.exceptions
import psycopg

from schema.migrate import load_migrations

_POSTGRES_START = (
    "Start it: `docker compose up -d postgres`, or `pg_ctlcluster 15 main start` on a Debian host."
)
_RABBITMQ_START = (
    "Start it: `docker compose up -d rabbitmq`, or `rabbitmq-server -detached` on a host install."
)


@dataclass(frozen=True)
class Finding:
    """One problem: ``text`` says what is wrong and what to do. A fatal one fails preflight."""

    text: str
    fatal: bool = True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_rabbitmq(amqp_url: str, *, timeout: float = 5.0) -> list[Finding]:
    """Open and close one AMQP connection with the URL's user, password and vhost."""
    parameters = pika.URLParameters(amqp_url)
    # One attempt, bounded in time: preflight reports, it does not wait for a broker to appear.
    parameters.connection_attempts = 1
    parameters.socket_timeout = timeout
    parameters.stack_timeout = timeout
    parameters.blocked_connection_timeout = timeout
    where = f"{parameters.host}:{parameters.port}"
    user = getattr(parameters.credentials, "username", "")
    vhost = parameters.virtual_host
    try:
        pika.BlockingConnection(parameters).close()
    except (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError):
        return [
            Finding(
                f"RabbitMQ at {where} refused user {user!r} (ACCESS_REFUSED): the user or password in "
                "AMQP_URL is wrong. Fix AMQP_URL, or create the user: "
                f"`rabbitmqctl add_user {user} <password>`."
            )
        ]
    except pika.exceptions.ProbableAccessDeniedError:
        return [
            Finding(
                f"RabbitMQ vhost {vhost!r} does not exist or user {user!r} may not use it (NOT_ALLOWED). "
                f"Create it: `rabbitmqctl add_vhost {vhost}` and "
                f"`rabbitmqctl set_permissions -p {vhost} {user} '.*' '.*' '.*'`, or fix AMQP_URL."
            )
        ]
    except Exception as exc:  # noqa: BLE001 - refused, timed out, unresolvable: it did not answer as a broker
        reason = _unreachable_reason(exc, timeout)
        return [Finding(f"RabbitMQ is unreachable at {where} ({reason}). {_RABBITMQ_START}")]
    return []


def _unreachable_reason(exc: BaseException, timeout: float) -> str:
    """``Connection refused`` rather than pika's nested connection-workflow errors."""
    for cause in (exc, *(getattr(arg, "exception", arg) for arg in exc.args)):
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
    if "Timeout" in type(exc).__name__:  # pika's AMQPConnectorStackTimeout, raised as is
        return f"no AMQP handshake within {timeout:g} s"
    return _first_line(exc)


def check_postgres(database_url: str, *, require_migrated: bool = False, timeout: int = 5) -> list[Finding]:
    """Log in to the URL's database; say whether it exists and which migrations are pending."""
    parts = urlsplit(database_url)
    where = f"{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"
    user = unquote(parts.username or "")
    database = unquote(parts.path.lstrip("/"))
    try:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=timeout) as conn:
            return _check_migrations(conn, require_migrated=require_migrated)
    except psycopg.OperationalError as exc:
        detail = _server_message(exc)
        if detail is None:
            reason = _connect_failure(exc)
            return [Finding(f"PostgreSQL is unreachable at {where} ({reason}). {_POSTGRES_START}")]
        if f'database "{database}" does not exist' in detail:
            return [
                Finding(
                    f"database {database!r} does not exist yet: run `hookyard migrate`, which creates it.",
                    fatal=require_migrated,
                )
            ]
        return [
            Finding(
                f"PostgreSQL at {where} refused user {user!r} ({detail}): fix the user or password in "
                "DATABASE_URL, or create the role: "
                f'`psql -U postgres -c "CREATE ROLE {user or "<user>"} LOGIN CREATEDB '
                "PASSWORD '<password>'\"`."
            )
        ]


def _server_message(exc: psycopg.OperationalError) -> str | None:
    """The server's FATAL message when PostgreSQL answered and refused; None when it never answered.

    libpq gives a refused login no SQLSTATE, only its text: ``... failed: FATAL:  role "x" does not exist``.
    """
    text = str(exc)
    if "FATAL:" not in text:
        return None
    return text.split("FATAL:", 1)[1].strip().splitlines()[0]


def _connect_failure(exc: psycopg.OperationalError) -> str:
    """``Connection refused``, ``timeout expired``: the last clause of libpq's first line."""
    line = _first_line(exc)
    return line.rsplit("failed: ", 1)[-1].strip() or line


def _check_migrations(
    conn: psycopg.Connection[tuple[object, ...]], *, require_migrated: bool
) -> list[Finding]:
    try:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        applied: dict[int, str] = {}
        if exists and exists[0]:
            applied = {
                int(str(version)): str(checksum)
                for version, checksum in conn.execute("SELECT version, checksum FROM schema_migrations")
            }
    except psycopg.Error as exc:
        reason = _first_line(exc)
        return [Finding(f"could not read schema_migrations ({reason}): check the role's privileges.")]
    files = load_migrations()
    known = {migration.version for migration in files}
    findings = [
        Finding(
            f"migration {migration.version:04d}_{migration.name} changed after it was applied, so "
            "`hookyard migrate` will refuse it: restore the file and add a new migration instead."
        )
        for migration in files
        if migration.version in applied and applied[migration.version] != migration.checksum
    ]
    if pending := [migration for migration in files if migration.version not in applied]:
        findings.append(
            Finding(f"{len(pending)} migration(s) pending: run `hookyard migrate`", fatal=require_migrated)
        )
    if unknown := sorted(set(applied) - known):
        versions = ", ".join(f"{version:04d}" for version in unknown)
        findings.append(
            Finding(
                f"the database has migration(s) {versions} that this Hookyard does not have: "
                "it was migrated by a newer version; upgrade this one.",
                fatal=False,
            )
        )
    return findings
