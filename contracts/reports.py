"""The ``errors`` queue message: error reports, as received, for the worker to group.

A report is the event exactly as its sender described it: a Sentry event payload (from an
envelope or ``/store/``) or a ``/v1/errors`` object. The producer only authenticates, identifies
and publishes it; normalizing and grouping (:mod:`contracts.grouping`) run in the worker, off
the web process's critical path, and on every report exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.events import SCHEMA_VERSION, encode_items
from contracts.topology import ERRORS


class ReportOrigin(StrEnum):
    SENTRY = "sentry"  # an envelope's `event` item, or the legacy /store/ body
    V1 = "v1"  # a /v1/errors object


class ErrorReport(BaseModel):
    """One error report. ``(project_id, event_id)`` is its identity: stored and counted once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: None only when the operator token named a project this web process does not know yet;
    #: the worker then finds it by ``project``, or creates it as ``discovered``.
    project_id: int | None = Field(default=None, ge=1)
    project: str | None = Field(default=None, max_length=129)
    event_id: str = Field(min_length=1, max_length=255)
    received_at: AwareDatetime
    origin: ReportOrigin
    #: The event as received (a JSON object).
    payload: dict[str, Any]


class ErrorReportBatch(BaseModel):
    """The body of one ``errors`` queue message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    reports: list[ErrorReport] = Field(min_length=1)


def encode_reports(reports: Sequence[ErrorReport], message_id: str | None = None) -> bytes:
    """The Dramatiq message for ``store_error_reports`` carrying ``reports``."""
    return encode_items(ERRORS, "reports", reports, message_id)
