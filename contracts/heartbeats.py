"""The ``heartbeats`` queue message: pings, instance heartbeats and Sentry check-ins.

Every report names a check of a project and a subject of it: ``''`` for a check's own pings (a
cron job), ``host:pid:port`` for one instance of a service sending ``/v1/heartbeats``. The worker
applies reports to ``runtime_status`` in the order of their own time (:mod:`contracts.checks`),
so a late or repeated report never moves a status backwards; ``(project, report_id)`` is a
report's identity in the ledger.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.events import SCHEMA_VERSION, encode_items
from contracts.topology import HEARTBEATS

#: A check's slug, as SPEC fixes it for ping URLs.
CHECK_SLUG = re.compile(r"^[a-z0-9_-]{1,100}$")
#: The most bytes of a ping's body kept (Healthchecks' limit, sent back as Ping-Body-Limit).
PING_BODY_LIMIT = 10_000


class Origin(StrEnum):
    PING = "ping"  # /ping/... (Healthchecks' URLs)
    HEARTBEAT = "heartbeat"  # /v1/heartbeats
    CHECK_IN = "check_in"  # a Sentry envelope's check_in item


class CheckReport(BaseModel):
    """One report about one subject of one check."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project_id: int | None = Field(default=None, ge=1)
    #: The project's name when the operator token named one this web process did not know.
    project: str | None = Field(default=None, max_length=129)
    #: The check's id when the web process knew it; else the worker finds or creates ``check``.
    check_id: int | None = Field(default=None, ge=1)
    check: str = Field(pattern=CHECK_SLUG.pattern)
    subject: str = Field(default="", max_length=512)
    report_id: str = Field(min_length=1, max_length=255)
    signal: Literal["start", "success", "fail", "log"]
    #: The report's own time (a ping's arrival, a heartbeat's ``sent_at``): the order reports apply in.
    at: AwareDatetime
    received_at: AwareDatetime
    origin: Origin
    rid: str | None = Field(default=None, max_length=255)
    exit_status: int | None = Field(default=None, ge=0, le=255)
    body: str | None = Field(default=None, max_length=PING_BODY_LIMIT)
    #: Instance heartbeats: the instance and its resources.
    host: str | None = Field(default=None, max_length=255)
    pid: int | None = None
    port: int | None = None
    service: str | None = Field(default=None, max_length=255)
    cpu_percent: float | None = None
    memory_mb: float | None = None
    metrics: dict[str, float] = Field(default_factory=dict)


class CheckReportBatch(BaseModel):
    """The body of one ``heartbeats`` queue message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    reports: list[CheckReport] = Field(min_length=1)


def encode_check_reports(reports: Sequence[CheckReport], message_id: str | None = None) -> bytes:
    """The Dramatiq message for ``apply_heartbeats`` carrying ``reports``."""
    return encode_items(HEARTBEATS, "reports", reports, message_id)
