"""The ``hookyard`` command. Every failure is one line on stderr and a non-zero exit."""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from hookyard.config import Settings, available_cpus, load_settings, redact_url
from hookyard.errors import HookyardError
from ops import budgets_cli, checks_cli, meters_cli, patterns_cli, tenancy_cli

F = TypeVar("F", bound=Callable[..., Any])


def database_option(fn: F) -> F:
    return click.option(
        "--database-url",
        envvar="DATABASE_URL",
        show_envvar=True,
        default=None,
        help="PostgreSQL URL [default: postgresql://postgres@127.0.0.1:5432/hookyard]",
    )(fn)


def amqp_option(fn: F) -> F:
    return click.option(
        "--amqp-url",
        envvar="AMQP_URL",
        show_envvar=True,
        default=None,
        help="RabbitMQ URL, vhost included [default: amqp://guest:guest@127.0.0.1:5672/%2F]",
    )(fn)


def worker_processes_option(*names: str, help_text: str) -> Callable[[F], F]:
    """The worker fleet's process count: `worker` runs that many, `preflight` lists their metrics."""
    return click.option(
        *names,
        type=click.IntRange(1, 64),
        default=available_cpus(),
        show_default="one per CPU",
        envvar="HOOKYARD_WORKER_PROCESSES",
        show_envvar=True,
        help=help_text,
    )


def _settings(**overrides: Any) -> Settings:
    return load_settings(**overrides)


def _logging(settings: Settings) -> None:
    from hookyard.logging import configure_logging  # noqa: PLC0415 - keep --help fast

    configure_logging(settings.hookyard_log_level, settings.hookyard_log_format)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="hookyard")
def cli() -> None:
    """Hookyard: signed events in over HTTP, through RabbitMQ, into PostgreSQL exactly once."""


@cli.command()
@database_option
@click.option(
    "--partitions-ahead",
    type=click.IntRange(1, 24),
    envvar="HOOKYARD_PARTITIONS_AHEAD",
    show_envvar=True,
    default=None,
    help="Months of partitions created ahead [default: 3]",
)
def migrate(database_url: str | None, partitions_ahead: int | None) -> None:
    """Create the database if missing and apply pending migrations (idempotent)."""
    from schema.migrate import migrate as run_migrations  # noqa: PLC0415

    settings = _settings(database_url=database_url, hookyard_partitions_ahead=partitions_ahead)
    _logging(settings)
    applied = run_migrations(settings.database_url, partitions_ahead=settings.hookyard_partitions_ahead)
    click.echo(f"{len(applied)} migration(s) applied; database {settings.database_name} is up to date.")


@cli.command()
@click.option("--host", envvar="HOOKYARD_HOST", show_envvar=True, default="127.0.0.1", show_default=True)
@click.option(
    "--port",
    envvar="HOOKYARD_PORT",
    show_envvar=True,
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
)
@click.option(
    "--max-header-bytes",
    envvar="HOOKYARD_MAX_HEADER_BYTES",
    show_envvar=True,
    type=int,
    default=None,
    help="Request line plus headers, in bytes, before a 431 [default: 65536]",
)
@click.option(
    "--max-headers",
    envvar="HOOKYARD_MAX_HEADERS",
    show_envvar=True,
    type=int,
    default=None,
    help="Headers per request before a 431 [default: 100]",
)
@click.option(
    "--header-timeout",
    envvar="HOOKYARD_HEADER_TIMEOUT",
    show_envvar=True,
    type=float,
    default=None,
    help="Seconds for a request line and headers to arrive, else 408 [default: 10]",
)
@click.option(
    "--body-idle-timeout",
    envvar="HOOKYARD_BODY_IDLE_TIMEOUT",
    show_envvar=True,
    type=float,
    default=None,
    help="Seconds a body may stop arriving, else 408 [default: 10]",
)
@click.option(
    "--body-timeout",
    envvar="HOOKYARD_BODY_TIMEOUT",
    show_envvar=True,
    type=float,
    default=None,
    help="Seconds from the headers to the end of the body, else 408 [default: 30]",
)
@click.option(
    "--keepalive-timeout",
    envvar="HOOKYARD_KEEPALIVE_TIMEOUT",
    show_envvar=True,
    type=float,
    default=None,
    help="Seconds an idle keep-alive connection stays open [default: 5]",
)
@click.option(
    "--keepalive-requests",
    envvar="HOOKYARD_KEEPALIVE_REQUESTS",
    show_envvar=True,
    type=int,
    default=None,
    help="Requests per connection, then Connection: close; 0 = no limit [default: 10000]",
)
@click.option(
    "--max-connections",
    envvar="HOOKYARD_MAX_CONNECTIONS",
    show_envvar=True,
    type=int,
    default=None,
    help="Open connections; past it a new one gets 503 and is closed [default: 2048]",
)
@database_option
@amqp_option
def serve(  # noqa: PLR0917 - click passes every option by name, ruff cannot tell
    host: str,
    port: int,
    max_header_bytes: int | None,
    max_headers: int | None,
    header_timeout: float | None,
    body_idle_timeout: float | None,
    body_timeout: float | None,
    keepalive_timeout: float | None,
    keepalive_requests: int | None,
    max_connections: int | None,
    database_url: str | None,
    amqp_url: str | None,
) -> None:
    """Run the ingestion HTTP server, with the edge limits of producers/edge.py."""
    import gc  # noqa: PLC0415

    import uvicorn  # noqa: PLC0415

    from producers.app import create_app  # noqa: PLC0415
    from producers.edge import EdgeLimits, edge_protocol, fit_to_descriptors  # noqa: PLC0415

    settings = _settings(
        database_url=database_url,
        amqp_url=amqp_url,
        hookyard_max_header_bytes=max_header_bytes,
        hookyard_max_headers=max_headers,
        hookyard_header_timeout=header_timeout,
        hookyard_body_idle_timeout=body_idle_timeout,
        hookyard_body_timeout=body_timeout,
        hookyard_keepalive_timeout=keepalive_timeout,
        hookyard_keepalive_requests=keepalive_requests,
        hookyard_max_connections=max_connections,
    )
    _logging(settings)
    limits = fit_to_descriptors(EdgeLimits.from_settings(settings))
    app = create_app(settings)
    # What import and set-up made lives as long as the process: out of the collector's sight, a
    # full collection (set off by connections that live for seconds, as slow clients' do) takes a
    # few milliseconds instead of tens.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=edge_protocol(limits),
        ws="none",  # no WebSocket route: an Upgrade header is an ordinary request
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )


@cli.command()
@worker_processes_option(
    "--processes", "-p", help_text="Worker processes (each has one RabbitMQ consumer and its own GIL)"
)
@click.option(
    "--threads",
    "-t",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    envvar="HOOKYARD_WORKER_THREADS",
    show_envvar=True,
    help="Threads per process",
)
@database_option
@amqp_option
def worker(processes: int, threads: int, database_url: str | None, amqp_url: str | None) -> None:
    """Run the Dramatiq worker fleet for every actor of the registry."""
    from workers.runner import run_fleet  # noqa: PLC0415

    settings = _settings(database_url=database_url, amqp_url=amqp_url)
    _logging(settings)
    sys.exit(run_fleet(settings, processes=processes, threads=threads))


@cli.command()
@click.option("--once", is_flag=True, help="Run one pass and exit")
@database_option
def scheduler(once: bool, database_url: str | None) -> None:
    """Run periodic jobs: partitions, retention, the heartbeat sweep, reservation expiry, summaries."""
    import psycopg  # noqa: PLC0415

    from workers.scheduler import run_once, run_scheduler  # noqa: PLC0415

    settings = _settings(database_url=database_url)
    _logging(settings)
    if once:
        with psycopg.connect(settings.database_url, autocommit=True, connect_timeout=5) as conn:
            run_once(conn, settings)
        click.echo("scheduler pass done")
        return
    sys.exit(run_scheduler(settings))


@cli.command()
@database_option
@amqp_option
@click.option(
    "--port",
    envvar="HOOKYARD_PORT",
    show_envvar=True,
    type=int,
    default=8000,
    show_default=True,
    help="The port `hookyard serve` listens on",
)
@worker_processes_option("--worker-processes", help_text="Worker processes, one metrics port each")
@click.option(
    "--require-migrated",
    is_flag=True,
    help="Fail, rather than warn, when the database is missing or has pending migrations",
)
def preflight(
    database_url: str | None, amqp_url: str | None, port: int, worker_processes: int, require_migrated: bool
) -> None:
    """Log in to RabbitMQ and PostgreSQL, check the vhost, database and migrations; print the URLs.

    Each problem is one line saying what to do; any failure exits 1. A database that does not exist
    yet or has migrations pending is only a warning, because `make run` runs `hookyard migrate`
    right after preflight; --require-migrated makes it a failure (a deploy that migrates elsewhere).
    """
    from ops.preflight import check_postgres, check_rabbitmq  # noqa: PLC0415

    settings = _settings(database_url=database_url, amqp_url=amqp_url)
    findings = [
        *check_rabbitmq(settings.amqp_url),
        *check_postgres(settings.database_url, require_migrated=require_migrated),
    ]
    if failures := [finding.text for finding in findings if finding.fatal]:
        for text in failures:
            click.echo(f"hookyard: {text}", err=True)
        sys.exit(1)
    for finding in findings:
        click.echo(f"WARNING: {finding.text}")
    development = [
        name
        for name, values in (
            ("GITHUB_WEBHOOK_SECRET", settings.github_webhook_secret),
            ("SLACK_SIGNING_SECRET", settings.slack_signing_secret),
            ("LINEAR_WEBHOOK_SECRET", settings.linear_webhook_secret),
            ("HOOKYARD_INGEST_TOKEN", settings.hookyard_ingest_token),
        )
        if any(value.startswith("dev-") for value in values)
    ]
    if development:
        click.echo(
            f"WARNING: development secrets in use for {', '.join(development)}; set real ones in production."
        )
    click.echo("\n".join(banner(settings, port=port, worker_processes=worker_processes)))


def banner(settings: Settings, *, port: int, worker_processes: int) -> list[str]:
    """The lines `make run` shows: where to send events and where each process serves its metrics.

    Worker process i serves on HOOKYARD_WORKER_METRICS_PORT + i (workers/runner.py), so every one
    of them is listed.
    """
    metrics_host = settings.hookyard_metrics_host
    # A wildcard bind address is reached through loopback on this machine.
    host = "127.0.0.1" if metrics_host in {"0.0.0.0", "::", ""} else metrics_host  # noqa: S104
    base = settings.hookyard_worker_metrics_port
    workers = [
        f"http://{host}:{base + index}/metrics  (worker process {index})" for index in range(worker_processes)
    ]
    scheduler_port = settings.hookyard_scheduler_metrics_port
    scheduler = f"http://{host}:{scheduler_port}/metrics"
    label = 19
    return [
        "Hookyard is starting:",
        f"  {'ingest':<{label}}http://127.0.0.1:{port}/webhooks/{{github,slack,linear}}  /v1/deployments",
        f"  {'web metrics':<{label}}http://127.0.0.1:{port}/metrics",
        f"  {'worker metrics':<{label}}{workers[0] if base else 'off (HOOKYARD_WORKER_METRICS_PORT=0)'}",
        *(f"  {'':<{label}}{line}" for line in workers[1:] if base),
        f"  {'scheduler metrics':<{label}}{scheduler if scheduler_port else 'off'}",
        f"  {'readiness':<{label}}http://127.0.0.1:{port}/readyz",
        f"  {'database':<{label}}{redact_url(settings.database_url)}",
        f"  {'broker':<{label}}{redact_url(settings.amqp_url)}",
        "Try it: in another terminal, `make demo`.",
    ]


@cli.command()
@click.option(
    "--url",
    default="http://127.0.0.1:8000",
    show_default=True,
    envvar="HOOKYARD_URL",
    show_envvar=True,
    help="The running server",
)
@click.option("--wait", type=float, default=15.0, show_default=True, help="Seconds to wait for the rows")
@database_option
def demo(url: str, wait: float, database_url: str | None) -> None:
    """Post signed sample deliveries of every source and show where each was stored."""
    import httpx  # noqa: PLC0415
    import psycopg  # noqa: PLC0415

    from ops.samples import signed_requests  # noqa: PLC0415
    from schema import queries  # noqa: PLC0415

    settings = _settings(database_url=database_url)
    secrets = {
        "GITHUB_WEBHOOK_SECRET": settings.github_webhook_secret,
        "SLACK_SIGNING_SECRET": settings.slack_signing_secret,
        "LINEAR_WEBHOOK_SECRET": settings.linear_webhook_secret,
        "HOOKYARD_INGEST_TOKEN": settings.hookyard_ingest_token,
    }
    if missing := [name for name, value in secrets.items() if not value]:
        raise HookyardError(
            f"set {', '.join(missing)} (as the server has them) so the demo can sign its deliveries"
        )
    requests = signed_requests(
        github_secret=settings.github_webhook_secret[0],
        slack_secret=settings.slack_signing_secret[0],
        linear_secret=settings.linear_webhook_secret[0],
        ingest_token=settings.hookyard_ingest_token[0],
    )
    accepted = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for source, delivery_id, (path, headers, body) in requests:
            try:
                response = client.post(path, headers=headers, content=body)
            except httpx.HTTPError as exc:
                raise HookyardError(f"could not reach {url}: {exc}; is `make run` running?") from exc
            click.echo(f"POST {path:<20} {response.status_code} {response.text}")
            if response.status_code == 202:
                accepted.append((source, delivery_id))
    deadline = time.monotonic() + wait
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        for source, delivery_id in accepted:
            row = None
            while row is None and time.monotonic() < deadline:
                row = conn.execute(
                    queries()["find_event"], {"source": source, "delivery_id": delivery_id}
                ).fetchone()
                if row is None:
                    time.sleep(0.2)
            where = f"stored in {row[6]} (event_type={row[2]}, action={row[3]})" if row else "not stored yet"
            click.echo(f"{source:<10} {delivery_id:<48} {where}")


@cli.group()
def dlq() -> None:
    """Dead letters: list, show, replay, purge."""


def filter_options(fn: F) -> F:
    for decorator in reversed(
        [
            click.option("--queue", help="Only letters of this queue"),
            click.option("--actor", help="Only letters of this actor"),
            click.option("--reason", help="Only this reason code (unstorable_event, retries_exhausted...)"),
            click.option(
                "--older-than", help="Only letters that failed at least this long ago (30m, 2h, 7d)"
            ),
            click.option("--newer-than", help="Only letters that failed at most this long ago"),
            click.option("--id", "ids", type=int, multiple=True, help="Only these ids (repeatable)"),
            database_option,
        ]
    ):
        fn = decorator(fn)
    return fn


def _filters(
    *,
    queue: str | None,
    actor: str | None,
    reason: str | None,
    older_than: str | None,
    newer_than: str | None,
    ids: tuple[int, ...],
    **extra: Any,
) -> Any:
    from ops.dlq import Filters, parse_age  # noqa: PLC0415

    return Filters(
        queue=queue,
        actor=actor,
        reason=reason,
        ids=ids,
        older_than=parse_age(older_than) if older_than else None,
        newer_than=parse_age(newer_than) if newer_than else None,
        **extra,
    )


@dlq.command("list")
@filter_options
@click.option("--all", "include_replayed", is_flag=True, help="Include letters already replayed")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line")
def dlq_list(
    database_url: str | None, include_replayed: bool, limit: int, as_json: bool, **filters: Any
) -> None:
    """List dead letters, oldest first."""
    from ops import dlq as ops_dlq  # noqa: PLC0415

    settings = _settings(database_url=database_url)
    rows = ops_dlq.select(
        settings.database_url, _filters(**filters, include_replayed=include_replayed, limit=limit)
    )
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, default=str))
        return
    if not rows:
        click.echo("no dead letters match")
        return
    click.echo(f"{'id':>6}  {'failed_at':<19}  {'queue':<12} {'reason':<26} {'tries':>5}  what")
    for row in rows:
        what = (
            f"{row['source']}:{row['delivery_id']}" if row["delivery_id"] else f"message {row['message_id']}"
        )
        replayed = "  (replayed)" if row["replayed_at"] else ""
        click.echo(
            f"{row['id']:>6}  {row['failed_at']:%Y-%m-%d %H:%M:%S}  {row['queue']:<12} {row['reason']:<26} "
            f"{row['attempts']:>5}  {what}{replayed}"
        )


@dlq.command("show")
@click.argument("letter_id", type=int)
@database_option
def dlq_show(letter_id: int, database_url: str | None) -> None:
    """Print one dead letter with its message body."""
    from ops import dlq as ops_dlq  # noqa: PLC0415

    settings = _settings(database_url=database_url)
    row = ops_dlq.show(settings.database_url, letter_id)
    if row is None:
        raise HookyardError(f"no dead letter with id {letter_id}")
    body = bytes(row.pop("body"))
    for key, value in row.items():
        click.echo(f"{key:>13}: {value}")
    try:
        click.echo("         body:\n" + json.dumps(json.loads(body), indent=2))
    except ValueError:
        click.echo(f"         body: {body!r}")


@dlq.command("replay")
@filter_options
@amqp_option
@click.option("--dry-run", is_flag=True, help="Only say how many letters would go back")
def dlq_replay(database_url: str | None, amqp_url: str | None, dry_run: bool, **filters: Any) -> None:
    """Put the chosen letters back on their queues, each at most once."""
    from ops import dlq as ops_dlq  # noqa: PLC0415

    settings = _settings(database_url=database_url, amqp_url=amqp_url)
    rows = ops_dlq.select(settings.database_url, _filters(**filters, limit=1_000_000))
    if dry_run:
        click.echo(f"{len(rows)} dead letter(s) would be replayed")
        return

    def progress(done: int, total: int) -> None:
        click.echo(f"replayed {done}/{total}", err=True)

    count = ops_dlq.replay(settings.database_url, settings.amqp_url, [row["id"] for row in rows], progress)
    click.echo(f"{count} dead letter(s) replayed")


@dlq.command("purge")
@filter_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation")
@click.option("--all", "include_replayed", is_flag=True, help="Include letters already replayed")
def dlq_purge(database_url: str | None, yes: bool, include_replayed: bool, **filters: Any) -> None:
    """Delete the chosen letters after a confirmation."""
    from ops import dlq as ops_dlq  # noqa: PLC0415

    settings = _settings(database_url=database_url)
    rows = ops_dlq.select(
        settings.database_url, _filters(**filters, include_replayed=include_replayed, limit=1_000_000)
    )
    if not rows:
        click.echo("no dead letters match")
        return
    if not yes and not click.confirm(f"Purge {len(rows)} dead letter(s)?", default=False):
        raise HookyardError("purge cancelled; nothing was deleted")
    click.echo(f"{ops_dlq.purge(settings.database_url, [row['id'] for row in rows])} dead letter(s) purged")


@dlq.group("breaker")
def dlq_breaker() -> None:
    """The dead-letter circuit breaker: which actors it holds, and resuming them."""


@dlq_breaker.command("status")
@click.argument("actor", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON document")
@database_option
def dlq_breaker_status(actor: str | None, as_json: bool, database_url: str | None) -> None:
    """Show each actor's breaker: open (its messages wait in the queue) or closed."""
    from ops import dlq as ops_dlq  # noqa: PLC0415

    settings = _settings(database_url=database_url)
    rows = ops_dlq.breaker_status(settings.database_url, actor)
    if as_json:
        click.echo(json.dumps(rows, default=str))
        return
    if not rows:
        click.echo("no breaker has ever opened; every actor consumes")
        return
    for row in rows:
        since = ""
        if row["state"] == "open":
            since = f" since {row['opened_at']:%Y-%m-%d %H:%M:%S%z}: {row['detail']}"
        click.echo(f"{row['actor']:<24} {row['state']:<6} trips={row['trips']}{since}")


@dlq_breaker.command("reset")
@click.argument("actor", required=False)
@database_option
def dlq_breaker_reset(actor: str | None, database_url: str | None) -> None:
    """Close the breaker of ACTOR (or every open one): its workers consume again within seconds."""
    from ops import dlq as ops_dlq  # noqa: PLC0415

    settings = _settings(database_url=database_url)
    closed = ops_dlq.breaker_reset(settings.database_url, actor)
    if not closed:
        raise HookyardError(f"no open breaker{' for ' + actor if actor else ''}; nothing to reset")
    click.echo(f"breaker closed for {', '.join(closed)}; dead letters before now no longer count")


_DOMAINS = ("keys", "errors", "heartbeats", "usage", "usage-summary", "reservations")  # run once each
_SCENARIOS = ("e2e", "ingest", "drain", "latency", "soak", "naive", "edge", *_DOMAINS)
_STEADY = ("latency", "soak", "edge")  # the targets name a size for these: small unless --size says otherwise


@cli.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Choice([*_SCENARIOS, "all"]))
@click.option(
    "--size",
    "sizes",
    multiple=True,
    type=click.Choice(["small", "medium", "large", "all"]),
    default=("all",),
    show_default=True,
    help="Body size (repeatable)",
)
@click.option("--duration", type=click.FloatRange(1), default=60.0, show_default=True, help="Seconds of load")
@click.option("--connections", type=click.IntRange(1), default=256, show_default=True, help="wrk connections")
@click.option("--worker-threads", type=click.IntRange(1), default=8, show_default=True)
@click.option(
    "--worker-processes", type=click.IntRange(1), default=available_cpus(), show_default="one per CPU"
)
@click.option(
    "--rate",
    type=click.FloatRange(1),
    default=2000.0,
    show_default=True,
    help="Requests/s of the latency scenario",
)
@click.option("--soak-duration", type=click.FloatRange(130), default=600.0, show_default=True)
@click.option("--soak-rate", type=click.FloatRange(1), default=1000.0, show_default=True)
@click.option("--drain-events", type=click.IntRange(1), default=200_000, show_default=True)
@click.option(
    "--heartbeat-duration",
    type=click.FloatRange(1),
    default=60.0,
    show_default=True,
    help="Seconds of the heartbeats scenario's steady phase (10,000 instances every 10 s, the sweep on)",
)
@click.option(
    "--heartbeat-check-period",
    type=click.FloatRange(1),
    default=10.0,
    show_default=True,
    help="Period of the instances' check in that phase (they report every 10 s)",
)
@click.option(
    "--variant",
    "variants",
    multiple=True,
    help="Run only this variant of keys/errors/heartbeats/usage (repeatable): token, keys; distinct, "
    "hot, naive; steady, sweep, peak, naive; batch, naive; spread, hot [default: all]",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Append the JSON lines here [default: bench/results/<UTC date>.jsonl]",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8077,
    show_default=True,
    help="Port of the bench's own web process",
)
@database_option
@amqp_option
def bench(  # noqa: PLR0917 - click passes every option by name, ruff cannot tell
    scenarios: tuple[str, ...],
    sizes: tuple[str, ...],
    duration: float,
    connections: int,
    worker_threads: int,
    worker_processes: int,
    rate: float,
    soak_duration: float,
    soak_rate: float,
    drain_events: int,
    heartbeat_duration: float,
    heartbeat_check_period: float,
    variants: tuple[str, ...],
    out: Path | None,
    port: int,
    database_url: str | None,
    amqp_url: str | None,
) -> None:
    """Measure the fleet: one JSON line per scenario and size, on its own database and vhost.

    Scenarios: e2e (HTTP to committed rows), ingest (HTTP to broker), drain (pre-filled queue vs
    a bare COPY), latency (steady rate: 202 latency and freshness), soak (RSS over time), naive
    (one synchronous confirm per request, one INSERT per message), keys (/v1/deployments under
    10,000 project keys vs the operator token), errors (Sentry envelopes: distinct patterns, one
    hot pattern, naive), heartbeats (10,000 instances with the sweep, a 100,000-subject sweep,
    peak vs naive), usage (CloudEvents batches of 100 with two meters vs naive), usage-summary
    (GET /v1/usage/summary over 10 million records), reservations (reserve + commit pairs at
    1,000/s). These write one line per variant.
    """
    import shlex  # noqa: PLC0415
    import tempfile  # noqa: PLC0415
    from datetime import UTC, datetime  # noqa: PLC0415

    from ops.bench.domains import DOMAIN_SCENARIOS  # noqa: PLC0415
    from ops.bench.scenarios import SCENARIOS, Options, body_bytes, machine, source_state  # noqa: PLC0415

    settings = _settings(database_url=database_url, amqp_url=amqp_url)
    _logging(settings)  # to stderr: stdout carries only the JSON lines
    chosen = _SCENARIOS if "all" in scenarios else scenarios
    every_size = ("small", "medium", "large") if "all" in sizes else sizes
    out = out or Path("bench/results") / f"{datetime.now(UTC):%Y-%m-%d}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["hookyard", *sys.argv[1:]])
    with tempfile.TemporaryDirectory(prefix="hookyard-bench-") as directory:
        options = Options(
            database_url=settings.database_url, amqp_url=settings.amqp_url, directory=Path(directory),
            port=port, duration=duration, connections=connections, worker_threads=worker_threads,
            worker_processes=worker_processes, rate=rate,
            soak_duration=soak_duration, soak_rate=soak_rate, drain_events=drain_events,
            heartbeat_duration=heartbeat_duration, heartbeat_check_period=heartbeat_check_period,
            variants=variants,
        )  # fmt: skip
        for scenario in chosen:
            if scenario in _DOMAINS:
                started = datetime.now(UTC).isoformat(timespec="seconds")
                results = DOMAIN_SCENARIOS[scenario]("-", options, lambda line: click.echo(line, err=True))
                lines = [{"scenario": scenario, "started_at": started, **result} for result in results]
            else:
                lines = []
                for size in ("small",) if scenario in _STEADY and "all" in sizes else every_size:
                    started = datetime.now(UTC).isoformat(timespec="seconds")
                    result = SCENARIOS[scenario](size, options, lambda line: click.echo(line, err=True))
                    lines.append(
                        {"scenario": scenario, "size": size, "body_bytes": body_bytes(size), **result,
                         "started_at": started}
                    )  # fmt: skip
            for line in lines:
                text = json.dumps(
                    {**line, "command": command, "machine": machine(), "source": source_state()}
                )
                click.echo(text)
                with out.open("a") as handle:
                    handle.write(text + "\n")


@cli.command("bench-report")
@click.argument("results", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def bench_report(results: Path) -> None:
    """Print a results file of `hookyard bench` as Markdown, each target judged met or not."""
    from ops.bench.report import load, markdown  # noqa: PLC0415

    click.echo(markdown(load(results)))


# The settings each command reads with no flag of its own, by Settings field. A flag's variable is
# shown by its option (show_envvar); names and defaults come from hookyard.config.Settings.
_SECRETS = ("github_webhook_secret", "slack_signing_secret", "linear_webhook_secret", "hookyard_ingest_token")
_LOGGING = ("hookyard_log_level", "hookyard_log_format")
ENVIRONMENT: dict[tuple[str, ...], tuple[str, ...]] = {
    ("migrate",): _LOGGING,
    ("serve",): (
        *_SECRETS,
        "hookyard_max_body_bytes",
        "hookyard_confirm_timeout",
        "hookyard_publish_batch",
        "hookyard_publish_in_flight",
        *_LOGGING,
    ),
    ("worker",): (
        "hookyard_store_group_events",
        "hookyard_store_flushers",
        "hookyard_breaker_limit",
        "hookyard_breaker_window",
        "hookyard_worker_metrics_port",
        "hookyard_metrics_host",
        *_LOGGING,
    ),
    ("scheduler",): (
        "hookyard_partitions_ahead",
        "hookyard_retention_months",
        "hookyard_scheduler_interval",
        "hookyard_sweep_interval",
        "hookyard_summary_refresh_interval",
        "hookyard_scheduler_metrics_port",
        "hookyard_metrics_host",
        *_LOGGING,
    ),
    ("preflight",): (
        *_SECRETS,
        "hookyard_worker_metrics_port",
        "hookyard_scheduler_metrics_port",
        "hookyard_metrics_host",
    ),
    ("demo",): _SECRETS,
    ("bench",): _LOGGING,
}


def environment_epilog(command: click.Command, fields: tuple[str, ...]) -> str:
    """The "Environment" section of ``command``'s --help: each variable it reads without a flag.

    A variable that one of the command's options already shows is left out.
    """
    shown = {str(param.envvar) for param in command.params if param.envvar}
    rows = []
    for field in fields:
        variable = field.upper()  # Settings reads each field from its upper-cased name, no prefix
        if variable in shown:
            continue
        default = Settings.model_fields[field].default
        rows.append((variable, ",".join(default) or "unset" if isinstance(default, tuple) else str(default)))
    if not rows:
        return ""
    width = max(len(variable) for variable, _ in rows)
    lines = [f"  {variable:<{width}}  [default: {default}]" for variable, default in rows]
    # \b keeps click from rewrapping the table into one paragraph.
    return "\b\nEnvironment (besides the variables of the options above):\n" + "\n".join(lines)


def _document_environment() -> None:
    for path, fields in ENVIRONMENT.items():
        command: click.Command = cli
        for name in path:
            assert isinstance(command, click.Group)
            command = command.commands[name]
        command.epilog = environment_epilog(command, fields)


_document_environment()


def main() -> None:
    """Entry point: one line and a non-zero exit for every error, never a traceback."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("hookyard: aborted", err=True)
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else cli.get_help(click.Context(cli)), err=True)
        sys.exit(2)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "hookyard"
        click.echo(f"{command}: {exc.format_message()} (see --help)", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"hookyard: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except HookyardError as exc:
        click.echo(f"hookyard: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


functools.update_wrapper(main, cli)  # `hookyard --help` and the entry point describe the same thing

cli.add_command(tenancy_cli.orgs)
cli.add_command(tenancy_cli.projects)
cli.add_command(tenancy_cli.keys)
cli.add_command(patterns_cli.errors)
cli.add_command(checks_cli.checks)
cli.add_command(budgets_cli.budgets)
cli.add_command(meters_cli.meters)
cli.add_command(meters_cli.rates)
