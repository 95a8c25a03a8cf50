"""``POST /v1/errors``: error reports from a service, with the operator token or a project key.

Each object becomes one report of the ``errors`` queue, identified by its ``id`` within its
project; grouping happens in the worker (:mod:`workers.patterns`). A request is accepted or
refused whole, like every ``/v1`` endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pydantic import ValidationError

from contracts.ingest import ErrorIn
from contracts.reports import ErrorReport, ReportOrigin
from producers.deliveries import Verified
from producers.deployments import parse_items, validation_error
from producers.errors import IngestError
from producers.keys import KeyRegistry, Principal, project_of


def verify(
    headers: Mapping[str, str],
    raw: bytes,
    principal: Principal,
    received_at: datetime,
    registry: KeyRegistry | None = None,
) -> Verified:
    """Validate an authenticated ``/v1/errors`` request; every object becomes one report."""
    items, is_array = parse_items(headers, raw)
    failures: list[tuple[int | None, ValidationError]] = []
    reports = []
    for index, item in enumerate(items):
        try:
            error = ErrorIn.model_validate(item)
        except ValidationError as exc:
            failures.append((index if is_array else None, exc))
            continue
        project_id, project = project_of(principal, error.project, registry)
        if project is None:  # the operator token must say whose report it is
            raise IngestError(
                422,
                "validation_failed",
                "project is required with the operator token.",
                errors=[
                    {"field": f"[{index}].project" if is_array else "project", "message": "Field required"}
                ],
            )
        reports.append(
            ErrorReport(
                project_id=project_id,
                project=project,
                event_id=error.id,
                received_at=received_at,
                origin=ReportOrigin.V1,
                payload=item,
            )
        )
    if failures:
        raise validation_error(failures)
    return Verified(events=reports)
