"""Configuration, parsed in one place.

Nothing here runs at import time: the CLI calls :func:`load_settings` once and hands the result
down. Every field maps to one environment variable of SPEC.md (or a Hookyard extension prefixed
``HOOKYARD_``).
"""

from __future__ import annotations

import os
from typing import Annotated
from urllib.parse import unquote, urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from hookyard.errors import ConfigurationError

Secrets = Annotated[tuple[str, ...], NoDecode]


def _split_secrets(value: object) -> tuple[str, ...]:
    """Comma-separated values, so a secret rotates by listing old and new together."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list | tuple):
        return tuple(str(part).strip() for part in value if str(part).strip())
    raise TypeError("expected a comma-separated string")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a cpuset), not all the host has."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Settings(BaseSettings):
    """Everything a Hookyard process can be told from its environment."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore", frozen=True)

    database_url: str = "postgresql://postgres@127.0.0.1:5432/hookyard"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"

    github_webhook_secret: Secrets = ()
    slack_signing_secret: Secrets = ()
    linear_webhook_secret: Secrets = ()
    hookyard_ingest_token: Secrets = ()

    hookyard_max_body_bytes: int = Field(default=26_214_400, gt=0)
    # Request line plus headers, in bytes, before a 431; checked as they arrive (producers/edge.py).
    hookyard_max_header_bytes: int = Field(default=65_536, ge=1024, le=16_777_216)
    # Headers one request may carry before a 431.
    hookyard_max_headers: int = Field(default=100, ge=1, le=10_000)
    # Seconds from a request's first byte (a new connection's opening) to the end of its headers: else 408.
    hookyard_header_timeout: float = Field(default=10.0, gt=0, le=3600)
    # Seconds a body may go without a byte arriving before its 408.
    hookyard_body_idle_timeout: float = Field(default=10.0, gt=0, le=3600)
    # Seconds from the end of the headers to the end of the body, however steadily it comes: else 408.
    hookyard_body_timeout: float = Field(default=30.0, gt=0, le=3600)
    # Seconds an idle keep-alive connection stays open after its last response.
    hookyard_keepalive_timeout: float = Field(default=5.0, gt=0, le=3600)
    # Requests one connection may carry; the last response says Connection: close (0 = no limit).
    hookyard_keepalive_requests: int = Field(default=10_000, ge=0)
    # Open connections per web process; past it a new one is answered 503 and closed at once.
    hookyard_max_connections: int = Field(default=2048, ge=1, le=1_000_000)
    # How long a request waits for RabbitMQ's publisher confirm before answering 503.
    # Slack gives up after 3 s, so the default leaves it room to see our answer.
    hookyard_confirm_timeout: float = Field(default=2.0, gt=0, le=60)
    # Requests published together in one broker message while a confirm is pending.
    hookyard_publish_batch: int = Field(default=200, ge=1, le=10_000)
    # Broker messages published but not yet confirmed; requests arriving meanwhile join the next
    # batch. One is both the fastest and the lowest-latency setting measured on RabbitMQ 3.10:
    # its confirm latency grows with the messages outstanding (see the README's benchmarks).
    hookyard_publish_in_flight: int = Field(default=1, ge=1, le=1_000)
    # Months of partitions kept ahead of now by migrate and the scheduler.
    hookyard_partitions_ahead: int = Field(default=3, ge=1, le=24)
    # Months of events kept; older partitions are dropped by the scheduler. 0 keeps everything.
    hookyard_retention_months: int = Field(default=0, ge=0)
    hookyard_scheduler_interval: float = Field(default=60.0, gt=0)
    # Seconds between heartbeat sweeps: a subject moves to grace or down at most this late.
    hookyard_sweep_interval: float = Field(default=5.0, gt=0, le=15)
    # Seconds between refreshes of the materialized view project_resource_summary (CONCURRENTLY:
    # readers never wait), checked at each scheduler pass (workers/summary.py).
    hookyard_summary_refresh_interval: float = Field(default=60.0, gt=0)
    # Group commit: the most events one store transaction takes from the messages waiting, and how
    # many such transactions a worker process keeps open at once (see workers/group.py).
    hookyard_store_group_events: int = Field(default=1000, ge=1, le=100_000)
    hookyard_store_flushers: int = Field(default=1, ge=1, le=64)
    # Dead-letter breaker: an actor with this many dead letters within the window stops consuming
    # until `hookyard dlq breaker reset` (0 turns it off); see workers/breaker.py.
    hookyard_breaker_limit: int = Field(default=100, ge=0)
    hookyard_breaker_window: float = Field(default=60.0, gt=0)
    # Worker process i serves /metrics on this port + i; 0 turns the servers off.
    hookyard_worker_metrics_port: int = Field(default=9191, ge=0, le=65535)
    hookyard_scheduler_metrics_port: int = Field(default=9292, ge=0, le=65535)
    # Address the worker and scheduler metrics servers bind: 0.0.0.0 inside a container.
    hookyard_metrics_host: str = "127.0.0.1"
    # Base URL of `hookyard serve` as senders reach it, printed in DSNs and ping URLs by `keys create`;
    # unset, it is http://HOOKYARD_HOST:HOOKYARD_PORT (ops/tenancy.py).
    hookyard_public_url: str | None = None
    hookyard_log_format: str = Field(default="auto", pattern="^(auto|json|console)$")
    hookyard_log_level: str = Field(default="info", pattern="^(?i)(debug|info|warning|error)$")

    @field_validator(
        "github_webhook_secret",
        "slack_signing_secret",
        "linear_webhook_secret",
        "hookyard_ingest_token",
        mode="before",
    )
    @classmethod
    def _secrets(cls, value: object) -> tuple[str, ...]:
        return _split_secrets(value)

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"postgresql", "postgres"} or not parts.path.strip("/"):
            raise ValueError("must look like postgresql://user@host:port/dbname")
        return value

    @field_validator("amqp_url")
    @classmethod
    def _amqp_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in {"amqp", "amqps"}:
            raise ValueError("must look like amqp://user:pass@host:port/vhost")
        return value

    @field_validator("hookyard_public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if not value:  # `HOOKYARD_PUBLIC_URL=` in a compose file means unset
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http(s) URL with a host, e.g. https://hooks.example.com")
        _ = parts.port  # raises ValueError for a port that is not a number in 0-65535
        if parts.username is not None or parts.query or parts.fragment:
            raise ValueError("must hold no user, query or fragment: keys are put into it")
        return value.rstrip("/")

    @property
    def database_name(self) -> str:
        return unquote(urlsplit(self.database_url).path.lstrip("/"))

    @property
    def amqp_vhost(self) -> str:
        path = urlsplit(self.amqp_url).path
        return unquote(path[1:]) if len(path) > 1 else "/"


def load_settings(**overrides: object) -> Settings:
    """Read the environment (plus CLI overrides) or raise one readable :class:`ConfigurationError`."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "configuration"
        raise ConfigurationError(f"{name}: {first['msg']}") from None


def redact_url(url: str) -> str:
    """The URL without its password, for logs and banners."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
