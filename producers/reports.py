"""``POST /v1/errors``: error reports from a service, with the operator token or a project key.

Each object becomes one report of the ``errors`` queue, identified by its ``id`` within its
project; grouping happens in the worker (:mod:`workers.patterns`). A request is accepted or
refused whole, like every ``/v1`` endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from contracts.ingest import ErrorIn
from contracts.reports import ErrorReport, ReportOrigin
from producers.deliveries import Verified
from producers.deployments import owned_objects
from producers.keys import KeyRegistry, Principal


def verify(
    headers: Mapping[str, str],
    raw: bytes,
    principal: Principal,
    received_at: datetime,
    registry: KeyRegistry | None = None,
) -> Verified:
    """Validate an authenticated ``/v1/errors`` request; every object becomes one report."""
    return Verified(
        events=[
            ErrorReport(
                project_id=one.project_id,
                project=one.project,
                event_id=one.body.id,
                received_at=received_at,
                origin=ReportOrigin.V1,
                payload=one.item,
            )
            for one in owned_objects(headers, raw, ErrorIn, principal, registry, project_required=True)
        ]
    )
